"""``crawl bluesky``: archive Bluesky actors and posts through the public AppView and the PDS.

Per actor: ``resolveHandle`` -> DID document (PLC directory, or did:web) -> PDS; then
``getProfile``, every ``getAuthorFeed`` page, ``getPostThread`` for posts with replies, the
repository CAR (``sync.getRepo``, the signed records), the actor's blobs (``sync.getBlob``),
the CDN images every post shows and the bsky.app-style page of every post. Per ``--post``:
its thread (parents and every reply), pages and images.

Bluesky answers deletion/suspension with HTTP 400 + an XRPC error name; those responses are
archived like any other and counted as ``archive/missing/<ErrorName>``: content gone from the
platform is an outcome of the crawl, not a crawl error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

from scrapy import Request
from scrapy.http import Response

from crawler.extraction import capture_from_response
from spiders._base import ArchiveSpider
from spiders.bluesky import parsers
from spiders.bluesky.extract import EXTRACTOR

logger = logging.getLogger(__name__)

DEFAULT_APPVIEW = "https://public.api.bsky.app"
DEFAULT_PLC = "https://plc.directory"
FEED_LIMIT = 100
THREAD_DEPTH = 1000  # the lexicon's maximum: whole threads in one response


def xrpc(base: str, nsid: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base.rstrip('/')}/xrpc/{nsid}" + (f"?{query}" if query else "")


class BlueskySpider(ArchiveSpider):
    name = "bluesky"

    def __init__(
        self,
        actors: list[str] | None = None,
        posts: list[str] | None = None,
        appview: str = DEFAULT_APPVIEW,
        plc: str = DEFAULT_PLC,
        pds: str | None = None,
        web: str | None = None,
        since: str | None = None,
        max_posts: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.actors = [parsers.normalize_actor(a) for a in actors or []]
        self.post_refs = [parsers.parse_post_ref(p) for p in posts or []]
        self.appview = appview.rstrip("/")
        self.plc = plc.rstrip("/")
        self.pds = pds.rstrip("/") if pds else None
        self.web = (web or parsers.web_base_for(self.appview)).rstrip("/")
        self.since = parsers.parse_time(since) if since else None
        self.max_posts = int(max_posts or 0)

    # --- start: one resolveHandle per handle, whatever asked for it -------------------------
    async def start(self) -> AsyncIterator[Any]:
        handles: dict[str, dict[str, Any]] = {}
        for actor in self.actors:
            if actor.startswith("did:"):
                yield self._did_doc_request(actor)
            else:
                handles.setdefault(actor, {"as_actor": False, "rkeys": []})["as_actor"] = True
        for repo, rkey in self.post_refs:
            if repo.startswith("did:"):
                yield self._thread_request(parsers.post_uri(repo, rkey))
            else:
                handles.setdefault(repo, {"as_actor": False, "rkeys": []})["rkeys"].append(rkey)
        for handle, wants in handles.items():
            yield Request(xrpc(self.appview, "com.atproto.identity.resolveHandle", handle=handle),
                          callback=self.parse_resolve, cb_kwargs={"handle": handle, **wants},
                          priority=30)

    def parse_resolve(self, response: Response, handle: str, as_actor: bool,
                      rkeys: list[str]) -> Iterator[Request]:
        data = self._json(response)
        did = data.get("did") if response.status == 200 else None
        if not isinstance(did, str):
            self._missing(response, handle)
            return
        if as_actor:
            yield self._did_doc_request(did)
        for rkey in rkeys:
            yield self._thread_request(parsers.post_uri(did, rkey))

    # --- identity: DID document -> PDS, then everything about the actor -----------------------
    def _did_doc_request(self, did: str) -> Request:
        return Request(parsers.did_doc_url(self.plc, did), callback=self.parse_did_doc,
                       cb_kwargs={"did": did}, priority=20)

    def parse_did_doc(self, response: Response, did: str) -> Iterator[Request]:
        pds = self.pds
        if response.status == 200:
            pds = pds or parsers.pds_from_did_doc(self._json(response))
        else:
            self._missing(response, did, default="DidNotFound")
        yield Request(xrpc(self.appview, "app.bsky.actor.getProfile", actor=did),
                      callback=self.parse_profile, priority=10)
        yield self._feed_request(did, pds, None, 0)
        if not pds:
            self.crawler.stats.inc_value("archive/missing/pds_unknown")
            logger.warning("bluesky: no PDS known for %s: repository and blobs not captured", did)
            return
        yield Request(xrpc(pds, "com.atproto.sync.getRepo", did=did), callback=self.parse_pds)
        yield Request(xrpc(pds, "com.atproto.repo.getRecord", repo=did,
                           collection="app.bsky.actor.profile", rkey="self"),
                      callback=self.parse_record, cb_kwargs={"did": did, "pds": pds})

    # --- AppView ----------------------------------------------------------------------------
    def parse_profile(self, response: Response) -> Iterator[Any]:
        if not self.answer_ok(response):
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        data = self._json(response)
        if data.get("handle"):
            yield self.page_request(parsers.profile_page_url(self.web, data["handle"]))
        for key in ("avatar", "banner"):
            if data.get(key):
                yield self.media_request(data[key])

    def _feed_request(self, did: str, pds: str | None, cursor: str | None, seen: int) -> Request:
        limit = FEED_LIMIT if not self.max_posts else min(FEED_LIMIT, self.max_posts - seen)
        url = xrpc(self.appview, "app.bsky.feed.getAuthorFeed", actor=did, limit=limit, cursor=cursor)
        return Request(url, callback=self.parse_feed, priority=5,
                       cb_kwargs={"did": did, "pds": pds, "seen": seen})

    def parse_feed(self, response: Response, did: str, pds: str | None, seen: int) -> Iterator[Any]:
        if not self.answer_ok(response):
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        data = self._json(response)
        feed = [i for i in data.get("feed") or [] if isinstance(i, dict)]
        stop = False
        for item in feed:
            when = parsers.feed_item_time(item)
            if self.since and when and when < self.since:
                stop = True  # newest first: everything after this is older too
                break
            if self.max_posts and seen >= self.max_posts:
                stop = True
                break
            seen += 1
            reply = item.get("reply") or {}
            for view in (reply.get("root"), reply.get("parent"), item.get("post")):
                yield from self._follow_post(view)
            post = item.get("post") or {}
            if pds and (post.get("author") or {}).get("did") == did:
                for cid in dict.fromkeys(parsers.blob_cids(post.get("record"))):
                    yield self._blob(pds, did, cid)
        cursor = data.get("cursor")
        if feed and cursor and not stop and not (self.max_posts and seen >= self.max_posts):
            yield self._feed_request(did, pds, cursor, seen)

    def _follow_post(self, view: Any, thread: bool = True) -> Iterator[Request]:
        """The page and images of a postView, and its thread when it has replies."""
        if not isinstance(view, dict) or not isinstance(view.get("uri"), str) or "record" not in view:
            return
        author = view.get("author") or {}
        yield self.page_request(parsers.post_page_url(self.web, author.get("handle") or author.get("did")
                                               or "", view["uri"]))
        for url in dict.fromkeys(parsers.cdn_urls(view)):
            yield self.media_request(url)
        if thread and (view.get("replyCount") or 0) > 0:
            yield self._thread_request(view["uri"])

    def _thread_request(self, uri: str) -> Request:
        return Request(xrpc(self.appview, "app.bsky.feed.getPostThread", uri=uri, depth=THREAD_DEPTH),
                       callback=self.parse_thread, cb_kwargs={"uri": uri}, priority=5)

    def parse_thread(self, response: Response, uri: str) -> Iterator[Any]:
        if not self.answer_ok(response, uri):
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        thread = self._json(response).get("thread")
        for view in parsers.thread_posts(thread):
            yield from self._follow_post(view, thread=False)  # the whole thread is in this one
        for deeper in parsers.truncated_nodes(thread):
            if deeper != uri:
                yield self._thread_request(deeper)

    # --- PDS ----------------------------------------------------------------------------------
    def parse_pds(self, response: Response) -> None:
        """CAR files and blobs: archived by the WARC extension; only outcomes to count here."""
        self.answer_ok(response)

    def parse_record(self, response: Response, did: str, pds: str) -> Iterator[Request]:
        if not self.answer_ok(response):
            return
        for cid in dict.fromkeys(parsers.blob_cids(self._json(response).get("value"))):
            yield self._blob(pds, did, cid)

    def _blob(self, pds: str, did: str, cid: str) -> Request:
        return Request(xrpc(pds, "com.atproto.sync.getBlob", did=did, cid=cid),
                       callback=self.parse_pds, priority=-5)

    # --- pages and media ------------------------------------------------------------------------
    def parse_plain(self, response: Response) -> None:
        """Only error answers are reported (a 2xx/3xx file answer is the capture itself)."""
        if response.status >= 400:
            self._missing(response, response.url, default=f"http_{response.status}")

    # --- outcomes ---------------------------------------------------------------------------
    def _json(self, response: Response) -> dict[str, Any]:
        """The JSON object of a response, or {} (HTML error pages, CAR bodies, bad JSON)."""
        data = self.json_of(response)
        return data if isinstance(data, dict) else {}

    def answer_ok(self, response: Response, target: str | None = None) -> bool:
        """True for a 200; otherwise count and report the outcome (spiders/_outcomes.py)."""
        if response.status == 200:
            return True
        self._missing(response, target or response.url)
        return False

    def _missing(self, response: Response, target: str, default: str | None = None) -> None:
        """Count and report a non-200 answer, named by its XRPC error when it has one."""
        data = self._json(response)
        name = parsers.xrpc_error(data) or default
        message = data.get("message")
        self.check_response(response, target, name or f"http_{response.status}",
                            detail=message if isinstance(message, str) else None)
