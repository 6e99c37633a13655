"""``crawl telegram``: archive public Telegram channels through the ``t.me/s/NAME`` web preview.

Per channel: the landing page ``/NAME`` (title, exact subscriber count, photo), then the preview
``/s/NAME`` (the 20 newest messages) and every older page (``?before=ID`` from the page's
``a.tme_messages_more[data-before]`` anchor) until the first message, ``--since`` or
``--max-posts``. For each message: its post page ``/NAME/ID``, its widget ``?embed=1``, the
``?single`` page of each album member, photos, video file and thumbnail, link-preview image.
Media URLs are signed and expiring (PLATFORMS.md §4.2), so media requests go first.

Outcomes that are not crawl errors (PLATFORMS.md §4.4), counted as ``archive/missing/<name>``:
``no_public_preview`` (``/s/NAME`` redirects: private channel, user, bot, or no such name) and
``post_not_found`` (a gap in the ids that is not an album member: its widget says "Post not
found", i.e. the message was deleted).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response

from crawler.extraction import capture_from_response
from spiders._base import ArchiveSpider
from spiders._outcomes import classify
from spiders.telegram import parsers
from spiders.telegram.extract import EXTRACTOR

logger = logging.getLogger(__name__)
PRIO_MEDIA = 30  # before the next page: Telegram's CDN media URLs expire



class TelegramSpider(ArchiveSpider):
    name = "telegram"

    def __init__(
        self,
        channels: list[str] | None = None,
        base_url: str = parsers.DEFAULT_BASE,
        since: str | None = None,
        max_posts: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = list(dict.fromkeys(parsers.normalize_channel(c) for c in channels or []))
        self.base = base_url.rstrip("/")
        self.since = parsers.parse_time(since) if since else None
        self.max_posts = int(max_posts or 0)

    async def start(self) -> AsyncIterator[Any]:
        for channel in self.channels:
            yield Request(parsers.landing_url(self.base, channel), callback=self.parse_landing,
                          priority=20)
            yield self._preview_request(channel, None, None, 0)
        for post_id, _url, source in self.recheck_posts(parsers.PLATFORM):
            if source.startswith(self.base + "/") and "/" in post_id:
                channel, msg_id = post_id.rsplit("/", 1)
                if msg_id.isdigit():
                    yield Request(parsers.embed_url(self.base, channel, int(msg_id)),
                                  callback=self.parse_recheck, priority=5)

    def parse_recheck(self, response: Response) -> Iterator[Any]:
        """``--recheck``: an archived message's widget again; its text and "edited" marker
        become a new version when they changed, "Post not found" marks it deleted."""
        yield from self.recheck_items(response, list(EXTRACTOR.extract(capture_from_response(response))))

    # --- the channel ------------------------------------------------------------------------
    def parse_landing(self, response: Response) -> Iterator[Any]:
        if not self.answer_ok(response):
            return
        for account in EXTRACTOR.extract(capture_from_response(response)):
            yield account
            if getattr(account, "avatar_url", None):
                yield self.media_request(account.avatar_url, priority=PRIO_MEDIA)

    def _preview_request(self, channel: str, before: int | None, newer_id: int | None,
                         seen: int) -> Request:
        # No redirect following: a redirect *is* the answer "no public preview" (§4.1).
        return Request(parsers.preview_url(self.base, channel, before), callback=self.parse_preview,
                       cb_kwargs={"channel": channel, "newer_id": newer_id, "seen": seen},
                       meta={"dont_redirect": True, "handle_httpstatus_all": True}, priority=10)

    def parse_preview(self, response: Response, channel: str, newer_id: int | None,
                      seen: int) -> Iterator[Any]:
        if response.status in (301, 302, 303, 307, 308):
            self.crawler.stats.inc_value("archive/missing/no_public_preview")
            logger.warning("telegram: @%s has no public preview (private channel, user, bot or "
                           "no such name): %s redirects to %s", channel, response.url,
                           response.headers.get("Location", b"").decode("latin-1"))
            return
        if not self.answer_ok(response):
            return
        capture = capture_from_response(response)
        source = (capture.url, capture.timestamp)
        page = parsers.parse_preview(response.body, response.url, source)
        if not page.channel_info and not page.messages:
            self.crawler.stats.inc_value("archive/missing/no_public_preview")
            logger.warning("telegram: %s is not a channel preview", response.url)
            return
        yield from EXTRACTOR.extract(capture)
        stop = False
        kept: list[parsers.Message] = []
        for msg in reversed(page.messages):  # newest first
            when = parsers.parse_time(msg.date)
            if (self.since and when and when < self.since) or (
                    self.max_posts and seen >= self.max_posts):
                stop = True
                break
            seen += 1
            kept.append(msg)
            yield from self._follow(msg)
        # Gaps between the ids kept (and the page newer than this one): deleted messages or
        # album members; the widget of each non-member tells which.
        if kept:
            oldest_page = page.before is None and not stop
            yield from self._gaps(channel, kept, 1 if oldest_page else kept[-1].id, newer_id)
        if page.before is not None and not stop and kept:
            yield self._preview_request(channel, page.before, kept[-1].id, seen)

    def _gaps(self, channel: str, kept: list[parsers.Message], low: int,
              newer_id: int | None) -> Iterator[Request]:
        """Widget requests for the ids in [low, newer_id) not shown: the newest page has no
        upper neighbour, so ids after its newest message are not probed (none are known)."""
        shown = {m.id for m in kept} | {a for m in kept for a in m.album_ids}
        high = newer_id if newer_id is not None else kept[0].id
        for msg_id in range(low, high):
            if msg_id not in shown:
                yield Request(parsers.embed_url(self.base, channel, msg_id),
                              callback=self.parse_gap, cb_kwargs={"ref": f"{channel}/{msg_id}"},
                              priority=-10)

    # --- one message ---------------------------------------------------------------------------
    def _follow(self, msg: parsers.Message) -> Iterator[Request]:
        for url in msg.media_urls:
            yield self.media_request(url, priority=PRIO_MEDIA)
        base = self.base
        yield Request(parsers.post_url(base, msg.channel, msg.id), callback=self.parse_post,
                      priority=-10)
        yield Request(parsers.embed_url(base, msg.channel, msg.id), callback=self.parse_post,
                      priority=-10)
        for member in msg.album_ids:
            yield Request(f"{parsers.post_url(base, msg.channel, member)}?single",
                          callback=self.parse_post, priority=-10)

    def parse_post(self, response: Response) -> Iterator[Any]:
        if not self.answer_ok(response):
            return
        error = parsers.widget_error(response.body)
        if error:
            self._missing(response.url, error)
        yield from EXTRACTOR.extract(capture_from_response(response))  # a PostGone on error

    def parse_gap(self, response: Response, ref: str) -> Iterator[Any]:
        if not self.answer_ok(response):
            return
        error = parsers.widget_error(response.body)
        if error:
            self._missing(ref, error)
        yield from EXTRACTOR.extract(capture_from_response(response))  # a PostGone on error

    # the callback name frontiers saved before ``parse_plain`` was shared still resume with
    parse_media = ArchiveSpider.parse_plain

    # --- outcomes ---------------------------------------------------------------------------
    def _missing(self, target: str, error: str) -> None:
        """A 200 widget that says the post is gone (or withheld): its outcome by its message."""
        name = "_".join(error.lower().split()) or "error"
        self.report_outcome(classify(200, name), name, target, target)
