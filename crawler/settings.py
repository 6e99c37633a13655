"""Scrapy settings for socialark: archival defaults plus the ``ARCHIVE_*`` namespace.

Every ``ARCHIVE_*`` setting is documented in ``docs/settings.md`` (a test checks it). The CLI
sets most of them from its options; ``-s KEY=VALUE`` on ``socialark crawl`` overrides any.
"""

from crawler import __version__

BOT_NAME = "socialark"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# --- archival capture -------------------------------------------------------------------------
ARCHIVE_COLLECTION = "default"
ARCHIVE_CRAWL_ID = ""
ARCHIVE_CRAWL_STARTED = ""
ARCHIVE_DATA_DIR = "./archive"
ARCHIVE_DEDUP_ENABLED = True
ARCHIVE_DEDUP_MIN_SIZE = 1
ARCHIVE_DIGEST_ALGORITHM = "sha256"
ARCHIVE_KEEP_REQUEST_SECRETS = False
ARCHIVE_MAX_RECORD_SIZE = 20_000_000_000
ARCHIVE_MEDIA_GZIP_LEVEL = 0
ARCHIVE_PROGRESS = "auto"
ARCHIVE_PROGRESS_INTERVAL = 2.0
ARCHIVE_SIGN_KEY = ""
ARCHIVE_SPOOL_TEXT_MAX = 64 * 1024 * 1024
ARCHIVE_SPOOL_THRESHOLD = 8 * 1024 * 1024
ARCHIVE_SPOOL_WRITERS = 2
ARCHIVE_TSA_URL = ""
ARCHIVE_WARC_ENABLED = True
ARCHIVE_WARC_GZIP_LEVEL = 6
ARCHIVE_WARC_MAX_SIZE = 1_000_000_000
ARCHIVE_WARC_PREFIX = "socialark"

# --- limits (pages and time use CLOSESPIDER_PAGECOUNT / CLOSESPIDER_TIMEOUT) -------------------
ARCHIVE_MAX_BYTES = 0

# --- politeness ---------------------------------------------------------------------------
USER_AGENT = f"socialark/{__version__} (+https://github.com/socialark/socialark; web archiving)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_DELAY = 0.25
AUTOTHROTTLE_ENABLED = False
RETRY_TIMES = 2
DOWNLOAD_TIMEOUT = 60
# Scrapy starts CONCURRENT_ITEMS asyncio tasks for every response whose callback output is
# async (ours is, through the spider middlewares): 100 by default, ~10% of a crawl's CPU. The
# item pipeline is synchronous, so more than a few gain nothing.
CONCURRENT_ITEMS = 8
# Media can be large: warn at 256 MB. Bodies past ARCHIVE_SPOOL_THRESHOLD are spooled to disk;
# the wire-recording handler never refuses a body for DOWNLOAD_MAXSIZE (ARCHIVE_MAX_RECORD_SIZE
# truncates instead); DOWNLOAD_MAXSIZE still bounds what HttpCompressionMiddleware decompresses.
DOWNLOAD_WARNSIZE = 256 * 1024 * 1024
# A gzip/brotli bomb must not take memory: decoded bodies (for callbacks; the WARC keeps the
# wire bytes) stop at 64 MiB, the size up to which spooled text is read back for parsing.
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
# Bytes of bodies buffered in memory across every in-flight download (crawler/capture/spooling.py)
ARCHIVE_MEMORY_BUDGET = 256 * 1024 * 1024

# Never archive from a cache: cache hits bypass the downloader (and response_downloaded).
HTTPCACHE_ENABLED = False
COOKIES_ENABLED = True
# --cookies FILE: a Netscape cookies.txt for Scrapy's jars and every browser context.
ARCHIVE_COOKIES_FILE = ""
# --profile NAME: a saved browser login (Playwright storage state), same use as the cookies.
ARCHIVE_BROWSER_PROFILE = ""
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# Wire-recording HTTP handler; requests marked meta["archive_browser"] are rendered in Chromium
# (no browser starts unless one is asked for).
DOWNLOAD_HANDLERS = {
    "http": "crawler.browser.handler.BrowserDownloadHandler",
    "https": "crawler.browser.handler.BrowserDownloadHandler",
}

# --- browser capture (crawler/browser/) -------------------------------------------------------
ARCHIVE_BROWSER_ENABLED = False
ARCHIVE_BROWSER_BEHAVIOR_SCRIPTS: list[str] = []
ARCHIVE_BROWSER_CONCURRENCY = 2
ARCHIVE_BROWSER_EXECUTABLE = ""
ARCHIVE_BROWSER_HEADLESS = True
ARCHIVE_BROWSER_IDLE_TIME = 0.5
ARCHIVE_BROWSER_LOAD_MORE: list[str] = []
ARCHIVE_BROWSER_PAGE_TIMEOUT = 60.0
ARCHIVE_BROWSER_RECYCLE_PAGES = 50
ARCHIVE_BROWSER_RETRIES = 1
ARCHIVE_BROWSER_SCREENSHOT = True
ARCHIVE_BROWSER_SCROLL_LIMIT = 20
ARCHIVE_BROWSER_USER_AGENT = ""
ARCHIVE_BROWSER_EXTRACT: list[str] = []
ARCHIVE_BROWSER_BODY_TIMEOUT = 15.0

EXTENSIONS = {
    "crawler.extensions.warc.WarcCaptureExtension": 0,
    "crawler.extensions.limits.ArchiveLimitsExtension": 10,
    "crawler.extensions.progress.ProgressExtension": 20,
    "crawler.extensions.mirror.MirrorExtension": 30,
    "crawler.extensions.pauses.PauseReportExtension": 40,
    "crawler.distributed.shared_pauses.SharedPausesExtension": 45,  # --redis crawls only
    "crawler.extensions.stop.PromptStopExtension": 50,
}

# Ctrl-C / SIGTERM: held and in-flight requests are cancelled (they stay queued for --resume) and
# the process exits with code 3 at the latest this many seconds after the first signal.
ARCHIVE_STOP_TIMEOUT = 4.0

SPIDER_MIDDLEWARES = {
    "crawler.middlewares.frontier.FrontierMiddleware": 950,
}
HTTPERROR_ALLOW_ALL = True  # error pages are archived and handed to callbacks, not dropped
STATS_DUMP = False  # the CLI prints a summary; full stats are kept in the crawls table
REMOTE_CONTROL_ENABLED = False  # no control HTTP port on archival crawls

ITEM_PIPELINES = {
    "crawler.pipelines.index.IndexPipeline": 800,
}

# Rate limits and server errors (crawler/middlewares/ratelimit.py) replace Scrapy's HTTP-code
# retries; RetryMiddleware still retries connection errors and timeouts.
ARCHIVE_RATELIMIT_ENABLED = True
ARCHIVE_RATELIMIT_BACKOFF = 1.0
ARCHIVE_RATELIMIT_MARGIN = 0.1
ARCHIVE_RATELIMIT_MAX_ATTEMPTS = 10
ARCHIVE_RATELIMIT_MAX_BACKOFF = 60.0
ARCHIVE_RATELIMIT_MAX_HELD = 1000
ARCHIVE_RATELIMIT_MAX_WAIT = 3600.0
ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS = 8
RETRY_HTTP_CODES = [408]

# The rate-limit gate is applied where a request leaves its slot queue for the wire
# (crawler/downloader.py); the middleware reads answers and decides retries.
DOWNLOADER = "crawler.downloader.ArchiveDownloader"

DOWNLOADER_MIDDLEWARES = {
    # Above every built-in: its process_response runs first and drops responses the archive
    # could not record, so they stay queued (crawler/write_failure.py).
    "crawler.middlewares.archive_guard.ArchiveGuardMiddleware": 990,
    # After RetryMiddleware (550) in process_response order: sees 429/5xx first, pauses the host.
    "crawler.middlewares.ratelimit.RateLimitMiddleware": 600,
    # Scrapy's cookie middleware, its jars seeded from --cookies (ARCHIVE_COOKIES_FILE).
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "crawler.middlewares.cookies.FileCookiesMiddleware": 700,
    # Capture-quality gate (crawler/quality.py): login walls, challenges, soft 404s are not
    # captures. After HttpCompressionMiddleware (590) in process_response order.
    "crawler.middlewares.quality.QualityGateMiddleware": 575,
    # Scrapy's robots.txt middleware, fixed: requests waiting for a host's robots.txt all obey
    # it (crawler/middlewares/robots.py). Same place (100).
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.robots.ArchiveRobotsTxtMiddleware": 100,
}

# --- capture-quality gate (crawler/quality.py, docs/quality.md) --------------------------------
ARCHIVE_QUALITY_ENABLED = True
ARCHIVE_QUALITY_PAUSE = 30.0
ARCHIVE_QUALITY_RETRIES = 2
ARCHIVE_QUALITY_RULES = ""
