"""The capture-quality gate: a login wall, challenge, 200-served error page or soft 404 is never
counted as a capture.

Every HTML answer (wire or rendered) goes through ``crawler.quality.judge``. A flagged answer
stays in the WARC (it was recorded before any middleware) and gets a ``quality_flags`` row in
the index; the host is paused for ``ARCHIVE_QUALITY_PAUSE`` seconds (the send-time gate of
``crawler.gates``) and the URL asked for is tried again, up to ``ARCHIVE_QUALITY_RETRIES``
times. One that stays blocked is dropped before its callback (nothing is parsed from a wall),
counted as ``quality/blocked/<kind>``, listed in ``quality/targets`` (summary, ``status``) and
makes the crawl exit 1 with what to do (``crawler.quality.MESSAGES``).

Priority 575: after HttpCompressionMiddleware (590) in ``process_response`` order, so bodies
are decoded, and it sees the answer at the end of a redirect chain (``redirect_urls``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response

from crawler.downloader import slot_key
from crawler.gates import gates_for
from crawler.quality import RETRIED_KINDS, QualityRulesError, Rule, Verdict, judge, load_rules

logger = logging.getLogger("socialark.quality")

ATTEMPT_KEY = "quality_attempt"
MAX_LISTED = 100
_REDIRECT_KEYS = ("redirect_urls", "redirect_reasons", "redirect_times", "redirect_ttl")


class QualityGateMiddleware:
    def __init__(self, crawler: Crawler, rules: tuple[Rule, ...], retries: int,
                 pause: float) -> None:
        self.crawler = crawler
        self.rules = rules
        self.retries = retries
        self.pause = pause
        s = crawler.settings
        self.crawl_id = s.get("ARCHIVE_CRAWL_ID") or ""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> QualityGateMiddleware:
        s = crawler.settings
        if not s.getbool("ARCHIVE_QUALITY_ENABLED", True):
            raise NotConfigured("ARCHIVE_QUALITY_ENABLED is False")
        try:
            rules = load_rules(s.get("ARCHIVE_QUALITY_RULES") or None)
        except QualityRulesError as exc:
            raise NotConfigured(str(exc)) from exc
        return cls(crawler, rules, max(0, s.getint("ARCHIVE_QUALITY_RETRIES", 2)),
                   max(0.0, s.getfloat("ARCHIVE_QUALITY_PAUSE", 30.0)))

    # -- helpers -------------------------------------------------------------------------------
    def _inc(self, key: str) -> None:
        if self.crawler.stats:
            self.crawler.stats.inc_value(key)

    def _key(self, request: Request) -> str:
        return slot_key(self.crawler, request)

    def _mark(self, asked: str, response: Response, verdict: Verdict, attempt: int,
              outcome: str) -> None:
        """The ``quality_flags`` row, committed with the captures (crawler/extensions/warc.py)."""
        from crawler.extensions.warc import WarcCaptureExtension

        ext = self.crawler.get_extension(WarcCaptureExtension)
        if ext is None or ext.recorder is None:
            return
        now = datetime.now(UTC)
        ext.add_items([("quality_flags", {
            "crawl_id": self.crawl_id, "url": asked, "final_url": response.url,
            "status": response.status, "kind": verdict.kind, "rule": verdict.rule,
            "attempt": attempt, "outcome": outcome,
            "detected_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source_url": response.url, "source_timestamp": now.strftime("%Y%m%d%H%M%S"),
        })])

    def _list_target(self, line: str) -> None:
        stats = self.crawler.stats
        if stats is None:
            return
        listed = list(stats.get_value("quality/targets") or [])
        if len(listed) < MAX_LISTED:
            stats.set_value("quality/targets", [*listed, line])

    # -- the gate ------------------------------------------------------------------------------
    def process_response(self, request: Request, response: Response) -> Request | Response:
        ctype = response.headers.get("Content-Type", b"") or b""
        asked = (request.meta.get("redirect_urls") or [request.url])[0]
        verdict = judge(asked, response.url, response.status,
                        ctype.decode("latin-1") if isinstance(ctype, bytes) else str(ctype),
                        response.body, self.rules)
        if verdict is None or verdict.kind in getattr(self.crawler.spider, "quality_skip", ()):
            return response
        attempt = int(request.meta.get(ATTEMPT_KEY, 0))
        self._inc(f"quality/flagged/{verdict.kind}")
        retry_left = verdict.kind in RETRIED_KINDS and attempt < self.retries
        self._mark(asked, response, verdict, attempt, "retried" if retry_left else "blocked")
        original = request.replace(url=asked, dont_filter=True)
        if retry_left:
            for key in _REDIRECT_KEYS:
                original.meta.pop(key, None)
            original.meta[ATTEMPT_KEY] = attempt + 1
            self.crawler_gates().pause(self._key(original), self.pause,
                                       f"capture gate: {verdict.kind}")
            self._inc("quality/retries")
            logger.info("%s: %s (%s) at %s: pausing host %s for %.1fs, then trying again",
                        asked, verdict.kind.replace("_", " "), verdict.rule, response.url,
                        self._key(original), self.pause)
            return original
        self._inc(f"quality/blocked/{verdict.kind}")
        line = f"{asked}: {verdict.kind.replace('_', ' ')} ({verdict.rule})"
        self._list_target(line)
        logger.warning("%s: %s; not captured (%s)", asked, verdict.kind.replace("_", " "),
                       verdict.message)
        raise IgnoreRequest(f"capture gate: {verdict.kind} at {response.url}")

    def crawler_gates(self) -> Any:
        return gates_for(self.crawler)


__all__ = ["ATTEMPT_KEY", "QualityGateMiddleware"]
