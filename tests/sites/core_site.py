"""The core test website for the archival crawler's fidelity tests.

Served on raw sockets (``tests/sites/_wire.py``) so tests know the exact bytes on the wire:
``site.expected(url)`` returns what the server sends for a GET of ``url``. Everything is
generated in code and deterministic (no ``Date`` header; gzip with mtime 0; seeded binaries).

Two origins: the main host (``base_url``) and a second host (``second_base_url``) that holds
cross-host page requisites (a web font and an image). The second host binds 127.0.0.2; where that
address cannot be bound it falls back to ``localhost`` (same IP as the main host, another name
and port, so still a different origin).

Run ``python -m tests.sites.core_site [--host H] [--port N]`` to serve it by hand.
"""

from __future__ import annotations

import argparse
import random
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urldefrag, urljoin, urlsplit

from tests.sites._wire import (
    ReceivedRequest,
    RequestLog,
    WireResponse,
    WireServer,
    decode,
    make_response,
)

ExpectedResponse = WireResponse  # public name used by the tests

SECTIONS = ("a", "b", "c")
PAGES_PER_SECTION = 5
DEEP_PAGES = 2
BIG_SIZE = 2 * 1024 * 1024
VIDEO_SIZE = 1536 * 1024
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
SERVER = (b"Server", b"socialark-core-site/1")


# --------------------------------------------------------------------------- media generators


def blob(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, like real media)."""
    return random.Random(seed).randbytes(size)


def png(width: int, height: int, seed: int) -> bytes:
    """A valid RGB PNG with a deterministic gradient."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(width)
            for v in ((x * 7 + seed) % 256, (y * 5 + seed) % 256, (x ^ y) % 256)
        )
        for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def gif(width: int, height: int) -> bytes:
    """A valid 4-colour GIF89a. LZW data uses 3-bit codes with a clear code every two pixels so
    the code table never grows: valid for every decoder, no real compression needed."""
    palette = b"\x00\x00\x00\xff\xff\xff\xcc\x33\x33\x33\x66\xcc"
    clear, end = 4, 5
    codes: list[int] = []
    pixels = [(x // 4 + y // 4) % 4 for y in range(height) for x in range(width)]
    for i in range(0, len(pixels), 2):
        codes.append(clear)
        codes.extend(pixels[i : i + 2])
    codes.append(end)
    acc = nbits = 0
    data = bytearray()
    for code in codes:
        acc |= code << nbits
        nbits += 3
        while nbits >= 8:
            data.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        data.append(acc & 0xFF)
    blocks = b"".join(
        bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)
    )
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0xF1, 0, 0)  # global colour table, 4 entries
        + palette
        + b","  # image descriptor: position, size, no local colour table
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02"  # LZW minimum code size
        + blocks
        + b"\x00;"
    )


def ico(png_bytes: bytes) -> bytes:
    """A .ico file holding one 16x16 PNG image."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png_bytes), 6 + 16)
    return header + entry + png_bytes


def pdf(text: str) -> bytes:
    """A minimal valid one-page PDF with a correct xref table."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n\r\n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# --------------------------------------------------------------------------- HTML


def html(title: str, body: str, *, charset: str = "utf-8", head: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f'<meta charset="{charset}">\n<title>{title}</title>\n'
        '<link rel="stylesheet" href="/static/site.css">\n'
        f"{head}</head>\n<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    )


def filler(seed: int, paragraphs: int = 3) -> str:
    words = (
        "archive",
        "record",
        "capture",
        "replay",
        "crawl",
        "index",
        "platform",
        "post",
        "thread",
        "mirror",
        "bytes",
        "wire",
        "header",
        "payload",
        "digest",
        "frontier",
    )
    rnd = random.Random(seed)
    return "\n".join(
        "<p>" + " ".join(rnd.choice(words) for _ in range(60)) + ".</p>" for _ in range(paragraphs)
    )


def links(hrefs: list[tuple[str, str]]) -> str:
    return "<ul>\n" + "\n".join(f'<li><a href="{h}">{t}</a></li>' for h, t in hrefs) + "\n</ul>"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def extract_links(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.hrefs


# --------------------------------------------------------------------------- the site


class CoreSite:
    """Main host + second host; see the module docstring. Usable as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        second_host: str = "127.0.0.2",
        port: int = 0,
        second_port: int = 0,
    ) -> None:
        self._log = RequestLog()
        self._cache: dict[tuple[str, str], WireResponse] = {}
        self._cache_lock = threading.Lock()
        self._main = WireServer((host, port), self._handler("main"), self._log)
        try:
            self._second = WireServer(
                (second_host, second_port), self._handler("second"), self._log
            )
            self.second_host = second_host
        except OSError:  # 127.0.0.2 not bindable (e.g. some BSD/macOS setups): another name
            self._second = WireServer(
                ("localhost", second_port), self._handler("second"), self._log
            )
            self.second_host = "localhost"
        self.host = host
        self.base_url = f"http://{host}:{self._main.port}/"
        self.second_base_url = f"http://{self.second_host}:{self._second.port}/"
        self._static = self._build_main()
        self._static_second = self._build_second()
        self._html_pages: set[str] | None = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> CoreSite:
        self._main.start()
        self._second.start()
        return self

    def stop(self) -> None:
        self._main.stop()
        self._second.stop()

    def __enter__(self) -> CoreSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # public queries -------------------------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedRequest]:
        """Snapshot of every request received so far, in arrival order (both hosts)."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def expected(self, url: str) -> ExpectedResponse:
        """What the server sends for a GET of ``url`` (fragment ignored)."""
        parts = urlsplit(urldefrag(url)[0])
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.netloc == urlsplit(self.base_url).netloc:
            return self._route("main", target)
        if parts.netloc == urlsplit(self.second_base_url).netloc:
            return self._route("second", target)
        raise ValueError(f"{url} is not served by this site")

    def is_trap(self, url: str) -> bool:
        """True for URLs in the infinite link traps (calendar, /trap/..., session ids)."""
        path = urlsplit(url).path
        return path in ("/calendar", "/session") or path.startswith("/trap/")

    def is_disallowed(self, url: str) -> bool:
        """True when robots.txt disallows ``url`` for every user agent."""
        return urlsplit(url).path.startswith("/private/")

    @property
    def html_pages(self) -> set[str]:
        """Absolute URLs of the 200 text/html pages on the main host reachable from "/" by
        ``<a href>`` links (redirects followed), without robots-disallowed pages and traps."""
        if self._html_pages is None:
            self._html_pages = set(self._crawl())
        return set(self._html_pages)

    @property
    def requisite_urls(self) -> set[str]:
        """Page requisites (images, CSS, JS, font, video, icon) of the pages, both hosts."""
        main = [
            "static/site.css",
            "static/app.js",
            "img/logo.png",
            "img/anim.gif",
            "img/photo-1x.png",
            "img/photo-2x.png",
            "img/bg.png",
            "favicon.ico",
            "media/clip.mp4",
            "media/clip.webm",
        ]
        second = ["fonts/site.woff2", "img/remote.png"]
        return {self.base_url + p for p in main} | {self.second_base_url + p for p in second}

    # routing --------------------------------------------------------------------------------
    def _handler(self, which: str) -> Callable[[str, str], WireResponse]:
        return lambda method, target: self._route(which, target)

    def _route(self, which: str, target: str) -> WireResponse:
        key = (which, target)
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
        static = self._static if which == "main" else self._static_second
        maker = static.get(target)
        if maker is not None:
            response = maker()
            with self._cache_lock:
                self._cache[key] = response
            return response
        if which == "main":
            dynamic = self._dynamic(target)
            if dynamic is not None:
                return dynamic
        return not_found(target)

    def _crawl(self) -> Iterator[str]:
        origin = urlsplit(self.base_url).netloc
        seen: set[str] = set()
        queue = [self.base_url]
        while queue:
            url = queue.pop(0)
            if url in seen or urlsplit(url).netloc != origin:
                continue
            seen.add(url)
            if self.is_trap(url) or self.is_disallowed(url):
                continue
            resp = self.expected(url)
            location = header(resp, b"Location")
            if 300 <= resp.status < 400 and location:
                queue.append(urljoin(url, location.decode("latin-1")))
                continue
            ctype = (header(resp, b"Content-Type") or b"").decode("latin-1")
            if resp.status != 200 or not ctype.startswith("text/html"):
                continue
            yield url
            charset = ctype.partition("charset=")[2] or "utf-8"
            text = decode(resp.entity_body, resp.content_encoding).decode(charset)
            queue.extend(urldefrag(urljoin(url, h))[0] for h in extract_links(text))

    # content: main host ---------------------------------------------------------------------
    def _build_main(self) -> dict[str, Callable[[], WireResponse]]:
        r: dict[str, Callable[[], WireResponse]] = {}
        r["/"] = lambda: ok_html(self._index())
        r["/robots.txt"] = lambda: ok(ROBOTS, b"text/plain")
        r["/about.html"] = lambda: ok_html(
            html("About", '<h2 id="team">Team</h2>' + filler(1) + links([("/", "home")]))
        )
        r["/section/"] = lambda: ok_html(
            html("Sections", links([(f"{s}/", s) for s in SECTIONS]) + links([("../", "home")]))
        )
        for s in SECTIONS:
            self._add_section(r, s)
        for page in (1, 2):
            r[f"/search?q=archive&page={page}"] = self._search(page)
        self._add_requisites(r)
        self._add_encodings(r)
        self._add_headers_and_redirects(r)
        r["/dup/a.html"] = r["/dup/b.html"] = lambda: ok_html(
            html("Duplicate", filler(42, 6) + links([("/", "home")]))
        )
        r["/private/secret.html"] = lambda: ok_html(html("Secret", "<p>robots says no</p>"))
        r["/missing"] = lambda: make_response(
            404,
            "Not Found",
            html("Not found", "<p>This page is missing.</p>").encode(),
            [SERVER, TEXT_HTML],
        )
        r["/error"] = lambda: make_response(
            500,
            "Internal Server Error",
            html("Server error", "<p>Always broken.</p>").encode(),
            [SERVER, TEXT_HTML],
        )
        r["/docs/report.pdf"] = lambda: ok(pdf("socialark core site report"), b"application/pdf")
        r["/media/big.bin"] = r["/media/copy-of-big.bin"] = lambda: ok(
            blob(2, BIG_SIZE), b"application/octet-stream"
        )
        return r

    def _index(self) -> str:
        sections = [(f"/section/{s}/", f"section {s}") for s in SECTIONS]
        misc = [
            ("about.html#team", "about (fragment)"),
            (f"{self.base_url}section/", "sections (absolute)"),
            ("/search?q=archive&amp;page=2", "search page 2"),
            ("/media/gallery.html", "gallery"),
            ("/docs/report.pdf", "report (PDF)"),
            ("/media/big.bin", "big binary"),
            ("/media/copy-of-big.bin", "copy of big binary"),
            ("/dup/a.html", "dup a"),
            ("/dup/b.html", "dup b"),
            ("/private/secret.html", "private"),
            ("/missing", "missing (404)"),
            ("/error", "error (500)"),
            ("/redirect/start", "redirect chain"),
            ("/headers/cookies", "cookies"),
            ("/headers/reason", "reason phrase"),
            ("/http10", "HTTP/1.0"),
            ("/calendar?month=2024-01", "calendar"),
            ("/trap/", "trap"),
            ("/session?sid=1", "session"),
        ]
        enc = [(f"/enc/{n}.html", n) for n in ENCODED_PAGES]
        head = '<link rel="icon" href="/favicon.ico">\n'
        return html("Core site", links(sections + misc + enc) + filler(0, 2), head=head)

    def _add_section(self, r: dict[str, Callable[[], WireResponse]], s: str) -> None:
        nxt = SECTIONS[(SECTIONS.index(s) + 1) % len(SECTIONS)]
        pages = [(f"page-{k}.html", f"page {k}") for k in range(1, PAGES_PER_SECTION + 1)]
        r[f"/section/{s}/"] = lambda: ok_html(
            html(f"Section {s}", links([*pages, ("deep/", "deeper"), ("../", "all sections")]))
        )
        for k in range(1, PAGES_PER_SECTION + 1):
            hrefs = [
                ("../", "sections"),
                (f"../{nxt}/page-{k}.html", f"{nxt} {k}"),
                (f"{self.base_url}section/{s}/", "section (absolute)"),
                (f"deep/page-{1 + k % DEEP_PAGES}.html", "deep page"),
            ]
            if k < PAGES_PER_SECTION:
                hrefs.insert(0, (f"page-{k + 1}.html", "next"))
            img = '<img src="/img/logo.png" alt="logo">' if k == 1 else ""
            body = img + filler(ord(s) * 100 + k) + links(hrefs)
            r[f"/section/{s}/page-{k}.html"] = _const(ok_html(html(f"{s} page {k}", body)))
        deep = [(f"page-{k}.html", f"deep {k}") for k in range(1, DEEP_PAGES + 1)]
        r[f"/section/{s}/deep/"] = lambda: ok_html(
            html(f"{s} deep", links([*deep, ("../page-1.html", "up"), ("../../", "sections")]))
        )
        for k in range(1, DEEP_PAGES + 1):
            body = filler(ord(s) * 1000 + k) + links([("../", "deep index"), ("../../../", "home")])
            r[f"/section/{s}/deep/page-{k}.html"] = _const(ok_html(html(f"{s} deep {k}", body)))

    def _search(self, page: int) -> Callable[[], WireResponse]:
        other = 2 if page == 1 else 1
        body = f"<p>Results page {page} for archive</p>" + links(
            [(f"?q=archive&amp;page={other}", f"page {other}"), ("/", "home")]
        )
        return lambda: ok_html(html(f"Search page {page}", body))

    def _add_requisites(self, r: dict[str, Callable[[], WireResponse]]) -> None:
        second = self.second_base_url
        css = (
            '@font-face { font-family: "Ark"; '
            f'src: url("{second}fonts/site.woff2") format("woff2"); }}\n'
            'body { font-family: "Ark", sans-serif; background: #fff url(../img/bg.png) repeat-x; }\n'
        )
        r["/static/site.css"] = lambda: ok(css.encode(), b"text/css; charset=utf-8")
        r["/static/app.js"] = lambda: ok(
            b'document.documentElement.dataset.ready = "1";\n', b"text/javascript; charset=utf-8"
        )
        r["/img/logo.png"] = lambda: ok(png(64, 64, 1), b"image/png")
        r["/img/photo-1x.png"] = lambda: ok(png(100, 80, 2), b"image/png")
        r["/img/photo-2x.png"] = lambda: ok(png(200, 160, 3), b"image/png")
        r["/img/bg.png"] = lambda: ok(png(8, 32, 4), b"image/png")
        r["/img/anim.gif"] = lambda: ok(gif(16, 16), b"image/gif")
        r["/favicon.ico"] = lambda: ok(ico(png(16, 16, 5)), b"image/x-icon")
        r["/media/clip.mp4"] = lambda: ok(
            b"\x00\x00\x00\x18ftypmp42" + blob(3, VIDEO_SIZE - 12), b"video/mp4"
        )
        r["/media/clip.webm"] = lambda: ok(
            b"\x1aE\xdf\xa3" + blob(4, VIDEO_SIZE - 4), b"video/webm"
        )
        gallery = (
            '<img src="/img/logo.png" alt="logo" width="64" height="64">\n'
            '<img src="/img/anim.gif" alt="gif">\n'
            '<img src="/img/photo-1x.png" srcset="/img/photo-1x.png 1x, /img/photo-2x.png 2x"'
            ' alt="photo">\n'
            f'<img src="{second}img/remote.png" alt="remote">\n'
            '<video src="/media/clip.mp4" controls></video>\n'
            '<video controls><source src="/media/clip.webm" type="video/webm"></video>\n'
            '<script src="/static/app.js"></script>\n'
            + links([("/docs/report.pdf", "report"), ("/", "home")])
        )
        r["/media/gallery.html"] = lambda: ok_html(
            html("Gallery", gallery, head='<link rel="icon" href="/favicon.ico">\n')
        )

    def _add_encodings(self, r: dict[str, Callable[[], WireResponse]]) -> None:
        def page(name: str, paras: int = 4) -> bytes:
            return html(
                f"Encoded: {name}", filler(len(name) * 7, paras) + links([("/", "home")])
            ).encode()

        r["/enc/gzip.html"] = lambda: make_response(
            200, "OK", page("gzip"), [SERVER, TEXT_HTML], encoding="gzip"
        )
        r["/enc/deflate.html"] = lambda: make_response(
            200, "OK", page("deflate"), [SERVER, TEXT_HTML], encoding="deflate"
        )
        r["/enc/br.html"] = lambda: make_response(
            200, "OK", page("br"), [SERVER, TEXT_HTML], encoding="br"
        )
        r["/enc/chunked.html"] = lambda: make_response(
            200,
            "OK",
            page("chunked", 8),
            [SERVER, TEXT_HTML],
            chunk_size=700,
            chunk_ext=b';note="ext"',
        )
        r["/enc/chunked-gzip.html"] = lambda: make_response(
            200,
            "OK",
            page("chunked-gzip", 30),
            [SERVER, TEXT_HTML],
            encoding="gzip",
            chunk_size=256,
        )
        latin = html(
            "Latin-1: café crème brûlée",
            "<p>naïve façade, señor, Ærø, ß.</p>" + links([("/", "home")]),
            charset="iso-8859-1",
        )
        r["/enc/latin1.html"] = lambda: ok(
            latin.encode("iso-8859-1"), b"text/html; charset=iso-8859-1"
        )
        sjis = html(
            "日本語のページ",
            "<p>ウェブアーカイブは消えゆくものを保存します。</p>" + links([("/", "ホーム")]),
            charset="Shift_JIS",
        )
        r["/enc/sjis.html"] = lambda: ok(sjis.encode("shift_jis"), b"text/html; charset=Shift_JIS")

    def _add_headers_and_redirects(self, r: dict[str, Callable[[], WireResponse]]) -> None:
        home = links([("/", "home")])
        cookie_headers = [
            SERVER,
            TEXT_HTML,
            (b"Set-Cookie", b"a=1; Path=/"),
            (b"X-Trace", b"trace-0001"),
            (b"Set-Cookie", b"b=2; Path=/; HttpOnly"),
            (b"Set-Cookie", b"c=3; Path=/headers; Max-Age=3600"),
            (b"x-lower-case", b"lower"),
            (b"X-UPPER-CASE", b"UPPER"),
            (b"ETag", b'"core-cookies-v1"'),
            (b"X-Latin1", b"caf\xe9"),
        ]
        r["/headers/cookies"] = lambda: make_response(
            200, "OK", html("Cookies", "<p>three cookies</p>" + home).encode(), cookie_headers
        )
        r["/headers/reason"] = lambda: make_response(
            200,
            "Okay Then",
            html("Reason", "<p>custom reason phrase</p>" + home).encode(),
            [SERVER, TEXT_HTML],
        )
        r["/http10"] = lambda: make_response(
            200,
            "OK",
            html("HTTP/1.0", "<p>old protocol</p>" + home).encode(),
            [SERVER, TEXT_HTML],
            version=b"HTTP/1.0",
            close=True,
        )
        chain = [
            ("/redirect/start", 301, "Moved Permanently", f"{self.base_url}redirect/step2"),
            ("/redirect/step2", 302, "Found", "step3"),
            ("/redirect/step3", 307, "Temporary Redirect", "/redirect/final"),
        ]
        for path, code, reason, location in chain:
            r[path] = _const(redirect(code, reason, location))
        r["/redirect/final"] = lambda: ok_html(html("Redirect final", "<p>arrived</p>" + home))

    # content: traps and other dynamic URLs ---------------------------------------------------
    def _dynamic(self, target: str) -> WireResponse | None:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        if parts.path == "/calendar":
            month = query.get("month", [""])[0]
            m = re.fullmatch(r"(\d{4})-(\d{2})", month)
            if not m or not 1 <= int(m[2]) <= 12:
                return None
            y, mo = int(m[1]), int(m[2])
            nxt = f"{y + mo // 12:04d}-{mo % 12 + 1:02d}"
            return ok_html(html(f"Calendar {month}", links([(f"/calendar?month={nxt}", "next")])))
        if re.fullmatch(r"/trap/(x/)*", parts.path):
            depth = parts.path.count("x/")
            return ok_html(html(f"Trap depth {depth}", links([("x/", "deeper")])))
        if parts.path == "/session":
            sid = query.get("sid", [""])[0]
            if not sid.isdigit():
                return None
            n = int(sid)
            trail = ".".join(str(i) for i in range(1, n + 1))
            return ok_html(
                html(
                    f"Session {n}", links([(f"/session?sid={n + 1}&amp;trail={trail}", "continue")])
                )
            )
        return None

    # content: second host -------------------------------------------------------------------
    def _build_second(self) -> dict[str, Callable[[], WireResponse]]:
        cors = (b"Access-Control-Allow-Origin", b"*")
        return {
            "/": lambda: ok_html(html("Second host", "<p>cross-host requisites live here</p>")),
            "/robots.txt": lambda: ok(b"User-agent: *\nDisallow:\n", b"text/plain"),
            "/fonts/site.woff2": lambda: ok(b"wOF2" + blob(5, 4096), b"font/woff2", [cors]),
            "/img/remote.png": lambda: ok(png(48, 48, 6), b"image/png", [cors]),
        }


ENCODED_PAGES = ("gzip", "deflate", "br", "chunked", "chunked-gzip", "latin1", "sjis")
TEXT_HTML = (b"Content-Type", b"text/html; charset=utf-8")


def _const(response: WireResponse) -> Callable[[], WireResponse]:
    return lambda: response


def ok(body: bytes, ctype: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> WireResponse:
    return make_response(200, "OK", body, [SERVER, (b"Content-Type", ctype), *(extra or [])])


def ok_html(page: str) -> WireResponse:
    return make_response(200, "OK", page.encode("utf-8"), [SERVER, TEXT_HTML])


def redirect(code: int, reason: str, location: str) -> WireResponse:
    body = html(reason, f'<p>See <a href="{location}">{location}</a></p>').encode()
    return make_response(code, reason, body, [SERVER, (b"Location", location.encode()), TEXT_HTML])


def not_found(target: str) -> WireResponse:
    body = html("Not found", "<p>No such page.</p>").encode()
    return make_response(404, "Not Found", body, [SERVER, TEXT_HTML])


def header(response: WireResponse, name: bytes) -> bytes | None:
    """First value of ``name`` (case-insensitive) in a response's headers."""
    return next((v for k, v in response.headers if k.lower() == name.lower()), None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the socialark core test site.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--second-host", default="127.0.0.2")
    parser.add_argument("--second-port", type=int, default=0)
    args = parser.parse_args(argv)
    site = CoreSite(args.host, args.second_host, args.port, args.second_port).start()
    try:
        print(f"core site:   {site.base_url}", flush=True)
        print(f"second host: {site.second_base_url}", flush=True)
        print(f"{len(site.html_pages)} HTML pages; Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()


if __name__ == "__main__":
    main()
