"""``crawl mastodon``: accounts, hashtags and threads of a Mastodon-API server (PLATFORMS.md §2).

Navigation only; items come from ``spiders.mastodon.extract`` (the same code ``index --rebuild``
runs). Per account: lookup (Gab: ``account_by_username``), every statuses page (Link
``rel="next"``), pinned posts, each status's context (re-fetching deep replies' contexts past the
unauthenticated 60-descendants/depth-20 caps; Truth Social: ``/context/descendants`` paging),
media files and previews, avatar and header, the profile and each post's human-viewable page.
Every request carries its state in JSON-serialisable ``cb_kwargs`` so a resumed crawl rebuilds it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from scrapy import Request
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.browser import BROWSER_META_KEY, PAGE_META_KEY
from crawler.extraction import capture_from_response
from crawler.stop import is_stop
from spiders._base import ArchiveSpider
from spiders._outcomes import Outcome
from spiders.mastodon.extract import EXTRACTOR, PLATFORM
from spiders.mastodon.parsers import (
    account_image_urls,
    flavor_from_instance,
    id_key,
    media_urls,
    nested_statuses,
    next_link,
    status_id_from_target,
)
from storage.archived import ArchivedItems

logger = logging.getLogger(__name__)

PAGE_LIMIT = 40
CONTEXT_ANCESTORS_CAP = 40
PRIO_API, PRIO_MEDIA, PRIO_PAGE = 20, 0, -10


# Mastodon's error answers carry no machine-readable reason: name them by status.
MASTODON_REASONS = {404: "not_found", 410: "gone", 403: "forbidden", 401: "unauthorized"}

class MastodonSpider(ArchiveSpider):
    name = "mastodon"

    def __init__(
        self, instance: str = "", accounts: list[str] | None = None,
        hashtags: list[str] | None = None, statuses: list[str] | None = None,
        flavor: str | None = None, since: str | None = None, max_posts: int = 0,
        full: bool = False, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance = instance.rstrip("/")
        self.accounts = list(accounts or [])
        self.hashtags = list(hashtags or [])
        self.statuses = list(statuses or [])
        self.forced_flavor = flavor
        self.since = since
        self.max_posts = int(max_posts or 0)
        self.full = bool(full)
        # Posts captured before this crawl started count as known (incremental crawls); a
        # resumed crawl keeps its first start, so its own earlier captures are not "known".
        self.started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        self._archived: ArchivedItems | None = None

    # bookkeeping ------------------------------------------------------------------------
    def _stat(self, key: str, count: int = 1) -> None:
        if self.crawler and self.crawler.stats:
            self.crawler.stats.inc_value(key, count)

    def _missing(self, response: Response, what: str) -> bool:
        """True when the callback should stop: the answer is not a capture to parse (its
        outcome is counted and reported the same way on every platform, spiders/_outcomes.py)."""
        reason = MASTODON_REASONS.get(response.status) if response.status >= 400 else None
        return not self.check_response(response, what or None, reason)

    def _known_ids(self, ids: list[str]) -> set[str]:
        """Ids already in this collection's posts table from earlier crawls (incremental)."""
        if self.full or not ids:
            return set()
        started = self.settings.get("ARCHIVE_CRAWL_STARTED") or self.started
        if self._archived is None:
            self._archived = ArchivedItems(Path(self.settings.get("ARCHIVE_INDEX_PATH") or ""),
                                           self.settings.get("ARCHIVE_COLLECTION") or "default")
        return self._archived.known_post_ids("mastodon", ids, before=started)

    def _items(self, response: Response) -> Iterator[Any]:
        # Revisits too: index --rebuild extracts them from the payload they refer to (a resumed
        # crawl fetches a URL again and its newer capture is usually a revisit).
        yield from EXTRACTOR.extract(capture_from_response(response))

    def _page_meta(self) -> dict[str, Any]:
        """Human-viewable pages are rendered in Chromium with ``--browser``."""
        if self.settings.getbool("ARCHIVE_BROWSER_ENABLED"):
            return {"kind": "page", BROWSER_META_KEY: True}
        return {"kind": "page"}

    def _api(self, path: str, callback: Any, priority: int = PRIO_API, **cb: Any) -> Request:
        return Request(self.instance + path, callback=callback, cb_kwargs=cb, priority=priority,
                       meta={"kind": "api"})

    # start --------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        yield Request(self.instance + "/api/v1/instance", callback=self.parse_instance,
                      errback=self.instance_failed, priority=100, meta={"kind": "api"})

    def parse_instance(self, response: Response) -> Iterator[Any]:
        flavor = self.forced_flavor
        if not flavor:
            try:
                flavor = flavor_from_instance(response.json()) if response.status == 200 else "mastodon"
            except ValueError:
                flavor = "mastodon"
        self.crawler.stats.set_value("mastodon/flavor", flavor)
        logger.info("Instance %s: flavour %s", self.instance, flavor)
        yield from self._targets(flavor)

    def instance_failed(self, failure: Failure) -> Iterator[Any]:
        self.archive_errback(failure)
        if is_stop(failure):
            return
        yield from self._targets(self.forced_flavor or "mastodon")

    def _targets(self, flavor: str) -> Iterator[Request]:
        for post_id, _url, source in self.recheck_posts(PLATFORM):
            if source.startswith(self.instance + "/"):
                yield self._api(f"/api/v1/statuses/{quote(post_id)}", self.parse_recheck,
                                post_id=post_id)
        for acct in self.accounts:
            name = acct.lstrip("@")
            if flavor == "gab":
                path = f"/api/v1/account_by_username/{quote(name.split('@')[0])}"
            else:
                path = "/api/v1/accounts/lookup?" + urlencode({"acct": name})
            yield self._api(path, self.parse_account, flavor=flavor, acct=name)
        for tag in self.hashtags:
            tag = tag.lstrip("#")
            path = f"/api/v1/timelines/tag/{quote(tag)}?limit={PAGE_LIMIT}"
            yield self._api(path, self.parse_listing, flavor=flavor, listing=f"#{tag}", seen=0)
        for target in self.statuses:
            sid = status_id_from_target(target)
            if sid is None:
                self.list_target(f"status {target}: not a status URL or id")
                logger.warning("mastodon: status %s: not a status URL or id", target)
                continue
            yield self._api(f"/api/v1/statuses/{sid}", self.parse_status, flavor=flavor,
                            target=target)

    # accounts -----------------------------------------------------------------------------
    def parse_account(self, response: Response, flavor: str, acct: str) -> Iterator[Any]:
        if self._missing(response, f"account {acct}"):
            return
        account = response.json()
        yield from self._items(response)
        yield from self._account_files(account)
        profile = account.get("url")
        if profile:
            yield Request(profile, callback=self.parse_page, priority=PRIO_PAGE,
                          cb_kwargs={"what": f"profile of {acct}"}, meta=self._page_meta())
        if account.get("suspended"):
            self.report_outcome(Outcome.BLOCKED, "suspended", f"account {acct}", response.url)
            return
        base = f"/api/v1/accounts/{account['id']}/statuses"
        yield self._api(f"{base}?limit={PAGE_LIMIT}", self.parse_listing, flavor=flavor,
                        listing=acct, seen=0)
        yield self._api(f"{base}?pinned=true", self.parse_listing, flavor=flavor,
                        listing=f"{acct} (pinned)", seen=0, paging=False)
        if flavor == "gab":  # Gab lists replies ("comments") separately
            yield self._api(f"{base}?only_comments=true&exclude_replies=false&limit={PAGE_LIMIT}",
                            self.parse_listing, flavor=flavor, listing=f"{acct} (comments)", seen=0)

    def _account_files(self, account: dict[str, Any]) -> Iterator[Request]:
        for url in account_image_urls(account):
            yield Request(url, callback=self.parse_file, priority=PRIO_MEDIA, meta={"kind": "media"})

    # listings (account statuses, hashtags) ------------------------------------------------------
    def parse_listing(self, response: Response, flavor: str, listing: str, seen: int,
                      paging: bool = True) -> Iterator[Any]:
        if self._missing(response, f"listing {listing}" if not seen else ""):
            return
        statuses = [s for s in response.json() if isinstance(s, dict) and s.get("id")]
        known = self._known_ids([str(s["id"]) for s in statuses])
        yield from self._items(response)
        stop = bool(known)
        for st in statuses:
            if self.since and str(st.get("created_at") or "") < self.since:
                stop = True
                continue
            if str(st["id"]) in known:
                continue
            yield from self._follow_status(st, flavor, with_context=True)
        seen += len(statuses)
        if self.max_posts and seen >= self.max_posts:
            stop = True
        if known:
            self._stat("mastodon/incremental_stops")
        nxt = next_link(response.headers.get(b"Link", b"").decode("latin-1"))
        if paging and nxt and statuses and not stop:
            yield Request(nxt, callback=self.parse_listing, priority=PRIO_API, meta={"kind": "api"},
                          cb_kwargs={"flavor": flavor, "listing": listing, "seen": seen})

    # statuses and threads -----------------------------------------------------------------------
    def parse_status(self, response: Response, flavor: str, target: str) -> Iterator[Any]:
        if self._missing(response, f"status {target}"):
            yield from self._items(response)  # a 404/410: PostGone (deleted if archived before)
            return
        yield from self._items(response)
        yield from self._follow_status(response.json(), flavor, with_context=True)

    def parse_recheck(self, response: Response, post_id: str) -> Iterator[Any]:
        """``--recheck``: an archived post again; a 404/410 records it as deleted."""
        yield from self.recheck_items(response, list(self._items(response)))

    def _follow_status(self, st: dict[str, Any], flavor: str, with_context: bool) -> Iterator[Request]:
        """Media, page and (for primary statuses) context of a status and its embedded ones."""
        for s in [st, *nested_statuses(st)]:
            for m in s.get("media_attachments") or []:
                for url in media_urls(m):
                    yield Request(url, callback=self.parse_file, priority=PRIO_MEDIA,
                                  meta={"kind": "media"})
            yield from self._account_files(s.get("account") or {})
            if s.get("url") and not s.get("reblog"):
                yield Request(s["url"], callback=self.parse_page, priority=PRIO_PAGE,
                              cb_kwargs={"what": ""}, meta=self._page_meta())
        if with_context:
            target = st.get("reblog") or st
            yield from self._context_requests(str(target["id"]), flavor)

    def _context_requests(self, status_id: str, flavor: str) -> Iterator[Request]:
        yield self._api(f"/api/v1/statuses/{status_id}/context", self.parse_context,
                        flavor=flavor, status_id=status_id)
        if flavor == "truthsocial":
            yield self._api(f"/api/v1/statuses/{status_id}/context/descendants?sort=oldest"
                            f"&limit={PAGE_LIMIT}", self.parse_truth_descendants, flavor=flavor)

    def parse_context(self, response: Response, flavor: str, status_id: str) -> Iterator[Any]:
        """Follow a context past the unauthenticated caps (PLATFORMS.md §2.5).

        Any descendant whose ``replies_count`` exceeds the children seen here has replies the
        cap cut off: fetch its own context. A full ancestors list (40) means older ancestors
        were cut: fetch the oldest one's context.
        """
        if self._missing(response, ""):
            return
        data = response.json()
        yield from self._items(response)
        ancestors = [s for s in data.get("ancestors") or [] if isinstance(s, dict)]
        descendants = [s for s in data.get("descendants") or [] if isinstance(s, dict)]
        children: dict[str, int] = {}
        for s in descendants:
            parent = str(s.get("in_reply_to_id") or "")
            children[parent] = children.get(parent, 0) + 1
        for s in [*ancestors, *descendants]:
            yield from self._follow_status(s, flavor, with_context=False)
        for s in descendants:
            if int(s.get("replies_count") or 0) > children.get(str(s["id"]), 0):
                yield from self._context_requests(str(s["id"]), flavor)
        if len(ancestors) >= CONTEXT_ANCESTORS_CAP:
            oldest = min((str(s["id"]) for s in ancestors), key=id_key)
            yield from self._context_requests(oldest, flavor)

    def parse_truth_descendants(self, response: Response, flavor: str) -> Iterator[Any]:
        if self._missing(response, ""):
            return
        yield from self._items(response)
        for s in response.json():
            if isinstance(s, dict):
                yield from self._follow_status(s, flavor, with_context=False)
        nxt = next_link(response.headers.get(b"Link", b"").decode("latin-1"))
        if nxt:
            yield Request(nxt, callback=self.parse_truth_descendants, priority=PRIO_API,
                          cb_kwargs={"flavor": flavor}, meta={"kind": "api"})

    # files and pages ---------------------------------------------------------------------------
    def parse_file(self, response: Response) -> None:
        self._missing(response, "")

    def parse_page(self, response: Response, what: str = "") -> Iterator[Any]:
        """A post or profile page; rendered with ``--browser``: its title/text to ``pages``."""
        if self._missing(response, what):
            return
        if PAGE_META_KEY in response.meta:
            from crawler.browser.items import page_item

            item = page_item(response, self.settings.get("ARCHIVE_CRAWL_ID") or "")
            if item is not None:
                yield item

    def closed(self, reason: str) -> None:
        if self._archived is not None:
            self._archived.close()
        super().closed(reason)
