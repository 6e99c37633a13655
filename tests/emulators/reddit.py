"""Reddit emulator: old.reddit.com-style public ``.json`` endpoints, post HTML pages and
i.redd.it / preview.redd.it / v.redd.it media on one port (PLATFORMS.md §5).

    with RedditEmulator(seed=1) as emu:
        emu.base_url, emu.dataset, emu.requests, emu.faults

Every response carries ``x-ratelimit-used/remaining/reset``. Unarmed, they count against a
lenient default window (``default_limit`` requests per ``default_window`` s, never 429); after
``emu.faults.rate_limit(after, window)`` they follow the fault window and exhausted requests get
429 (JSON ``{"message":"Too Many Requests","error":429}``, or HTML if ``emu.html_429``).

Run standalone: ``python -m tests.emulators.reddit [--port N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.faults import RateLimitState
from tests.emulators.reddit_data import Post, RedditDataset, build_reddit_dataset
from tests.emulators.reddit_render import (
    MAX_DEPTH,
    TreeRenderer,
    escape_strings,
    flatten,
    listing,
    post_json,
    post_page_html,
    user_comment_json,
)

NOT_FOUND = {"message": "Not Found", "error": 404}
FORBIDDEN = {"message": "Forbidden", "error": 403}
SUB_ERRORS = {
    "private": (403, {"reason": "private", "message": "Forbidden", "error": 403}),
    "banned": (404, {"reason": "banned", "message": "Not Found", "error": 404}),
    "quarantined": (403, {"reason": "quarantined", "quarantine_message": "This community is "
                          "quarantined.", "message": "Forbidden", "error": 403}),
}
LISTING_CAP = 1000  # listings stop ~1000 items deep (§5.3)
MORECHILDREN_MAX_IDS = 100
MORECHILDREN_BUDGET = 100  # comments per /api/morechildren response before another stub
_SUFFIX = r"/?\.json$"


class RedditEmulator(Emulator):
    name = "reddit-emulator"

    def __init__(self, seed: int = 1, port: int = 0, default_limit: int = 1000,
                 default_window: float = 600.0) -> None:
        super().__init__(port=port)
        self.dataset: RedditDataset = build_reddit_dataset(seed)
        self.html_429 = False
        self.default_limit, self.default_window = default_limit, default_window
        self._rl_lock = threading.Lock()
        self._rl_start: float | None = None
        self._rl_used = 0
        self._routes: list[tuple[re.Pattern[str], Callable[..., Response]]] = [
            (re.compile(p), h) for p, h in (
                (r"^/r/([^/]+)/about" + _SUFFIX, self.sub_about),
                (r"^/r/([^/]+)(?:/(new|hot|top|controversial|rising))?" + _SUFFIX, self.sub_listing),
                (r"^/(?:r/[^/]+/)?comments/([0-9a-z]+)(?:/([^/]*)(?:/([0-9a-z_]+))?)?" + _SUFFIX,
                 self.comments),
                (r"^/(?:user|u)/([^/]+)/(submitted|comments|overview)" + _SUFFIX, self.user_listing),
                (r"^/(?:user|u)/([^/]+)/about" + _SUFFIX, self.user_about),
                (r"^/api/morechildren(?:\.json)?$", self.morechildren),
                (r"^/api/info(?:\.json)?$", self.info),
                (r"^/by_id/t3_([0-9a-z]+)" + _SUFFIX, self.by_id),
                (r"^/(?:r/[^/]+/)?comments/([0-9a-z]+)(?:/[^/.]*)?/?$", self.post_page),
                (r"^/gallery/([0-9a-z]+)$", self.gallery_redirect),
                (r"^/(i|preview|thumbs)/([0-9a-z]+\.png)$", self.image),
                (r"^/v/([0-9a-z]+)/([A-Za-z0-9_]+\.(?:mp4|mpd|m3u8))$", self.video),
            )
        ]

    # plumbing -----------------------------------------------------------------------------
    def route(self, req: Request) -> Response:
        resp = self._dispatch(req)
        if self.faults.window_end is None:  # no fault window armed: lenient default counter
            resp.headers.extend(self._default_headers())
        return resp

    def _dispatch(self, req: Request) -> Response:
        for pattern, handler in self._routes:
            if m := pattern.match(req.path):
                resp = handler(req, *m.groups())
                if resp.content_type.startswith("application/json") and req.arg("raw_json") != "1":
                    resp.body = json.dumps(escape_strings(json.loads(resp.body)),
                                           ensure_ascii=False, separators=(",", ":")).encode()
                return resp
        return Response.json(NOT_FOUND, status=404)

    def _default_headers(self) -> list[tuple[str, str]]:
        with self._rl_lock:
            now = time.monotonic()
            if self._rl_start is None or now >= self._rl_start + self.default_window:
                self._rl_start, self._rl_used = now, 0
            self._rl_used += 1
            left = self._rl_start + self.default_window - now
            remaining = max(self.default_limit - self._rl_used, 0)
            return _rl_headers(self._rl_used, remaining, left)

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        return _rl_headers(state.limit - state.remaining, state.remaining,
                           state.reset_epoch - time.time())

    def rate_limited_response(self, req: Request) -> Response:
        if self.html_429:
            return Response.html("<html><head><title>Too Many Requests</title></head><body>"
                                 "<h1>whoa there, pardner!</h1></body></html>", 429)
        return Response.json({"message": "Too Many Requests", "error": 429}, status=429)

    def server_error_response(self, req: Request, status: int) -> Response:
        resp = super().server_error_response(req, status)
        if self.faults.window_end is None:
            resp.headers.extend(self._default_headers())
        return resp

    # listings -------------------------------------------------------------------------------
    def _sub_error(self, name: str) -> Response | None:
        sub = self.dataset.sub(name)
        if sub is None:
            return Response.json(NOT_FOUND, status=404)
        if sub.state in SUB_ERRORS:
            status, body = SUB_ERRORS[sub.state]
            return Response.json(body, status=status)
        return None

    def sub_about(self, req: Request, name: str) -> Response:
        if err := self._sub_error(name):
            return err
        sub = self.dataset.sub(name)
        assert sub
        return Response.json({"kind": "t5", "data": {
            "display_name": sub.name, "name": f"t5_{sub.id}", "id": sub.id, "title": sub.title,
            "subscribers": sub.subscribers, "created_utc": sub.created_utc,
            "public_description": f"About r/{sub.name}", "over18": False,
            "subreddit_type": "public", "url": f"/r/{sub.name}/"}})

    def sub_listing(self, req: Request, name: str, sort: str | None) -> Response:
        if err := self._sub_error(name):
            return err
        sub = self.dataset.sub(name)
        assert sub
        posts = self._sorted([self.dataset.posts[i] for i in sub.post_ids], sort or "hot")
        return self._paged(req, [(p.fullname, {"kind": "t3", "data": post_json(p, req.base, self.dataset)})
                                 for p in posts])

    @staticmethod
    def _sorted(posts: list[Post], sort: str) -> list[Post]:
        newest = max((p.created_utc for p in posts), default=0.0) + 3600
        keys: dict[str, Callable[[Post], Any]] = {
            "new": lambda p: -p.created_utc,
            "top": lambda p: (-p.score, -p.created_utc),
            "controversial": lambda p: (p.upvote_ratio, -p.created_utc),
            "hot": lambda p: (not p.stickied, -p.score / ((newest - p.created_utc) / 3600 + 2) ** 1.5),
        }
        ordered = sorted(posts, key=keys.get(sort, keys["new"]))
        return ordered[:25] if sort == "rising" else ordered

    def _paged(self, req: Request, items: list[tuple[str, dict[str, Any]]]) -> Response:
        """Listing paging (§5.3): ``after``/``before`` fullnames, ``limit`` ≤ 100, ``count``."""
        items = items[:LISTING_CAP]
        try:
            limit = min(max(int(req.arg("limit") or 25), 1), 100)
            count = int(req.arg("count") or 0)
        except ValueError:
            limit, count = 25, 0
        names = [n for n, _ in items]
        after, before = req.arg("after"), req.arg("before")
        if after:
            start = names.index(after) + 1 if after in names else len(items)
            end = start + limit
        elif before:
            end = names.index(before) if before in names else 0
            start = max(end - limit, 0)
        else:
            start, end = 0, limit
        page = items[start:end]
        end = start + len(page)
        out_after = names[end - 1] if page and end < len(items) else None
        out_before = names[start] if page and start > 0 and (count > 0 or before) else None
        return Response.json(listing([t for _, t in page], out_after, out_before, len(page)))

    def user_listing(self, req: Request, name: str, what: str) -> Response:
        user = self.dataset.user(name)
        if user is None or user.suspended:
            return Response.json(NOT_FOUND, status=404)
        ds, base = self.dataset, req.base
        entries: list[tuple[float, str, dict[str, Any]]] = []
        if what in ("submitted", "overview"):
            entries += [(p.created_utc, p.fullname, {"kind": "t3", "data": post_json(p, base, ds)})
                        for p in ds.posts.values() if p.author == user.name]
        if what in ("comments", "overview"):
            entries += [(c.created_utc, c.fullname, user_comment_json(c, ds, base))
                        for c in ds.comments.values() if c.author == user.name]
        if req.arg("sort") == "top":
            entries.sort(key=lambda e: (-e[2]["data"]["score"], -e[0]))
        else:
            entries.sort(key=lambda e: -e[0])
        return self._paged(req, [(n, t) for _, n, t in entries])

    def user_about(self, req: Request, name: str) -> Response:
        user = self.dataset.user(name)
        if user is None:
            return Response.json(NOT_FOUND, status=404)
        if user.suspended:
            return Response.json({"kind": "t2", "data": {"name": user.name, "is_suspended": True,
                                                         "awardee_karma": 0, "awarder_karma": 0,
                                                         "is_blocked": False, "total_karma": 0}})
        return Response.json({"kind": "t2", "data": {
            "name": user.name, "id": user.id, "created_utc": user.created_utc,
            "link_karma": user.link_karma, "comment_karma": user.comment_karma,
            "total_karma": user.link_karma + user.comment_karma, "is_suspended": False,
            "verified": True}})

    # posts and comment trees ------------------------------------------------------------------
    def _post(self, post_id: str) -> Post | Response:
        post = self.dataset.posts.get(post_id)
        if post is None:
            return Response.json(NOT_FOUND, status=404)
        return self._sub_error(post.subreddit) or post

    def _tree_args(self, req: Request) -> tuple[str, int, int]:
        try:
            limit = min(int(req.arg("limit") or 200), 500)
            depth = min(int(req.arg("depth") or MAX_DEPTH + 1), MAX_DEPTH + 1)
        except ValueError:
            limit, depth = 200, MAX_DEPTH + 1
        return req.arg("sort") or "confidence", limit, depth - 1

    def comments(self, req: Request, post_id: str, slug: str | None, focus: str | None) -> Response:
        post = self._post(post_id)
        if isinstance(post, Response):
            return post
        focus = focus or req.arg("comment")
        sort, limit, max_depth = self._tree_args(req)
        r = TreeRenderer(self.dataset, sort, limit, max_depth)
        if focus and focus != "_":
            c = self.dataset.comments.get(focus)
            if c is None or c.link_id != post.id:
                things: list[dict[str, Any]] = []  # no trace left: empty comment listing (§5.5)
            else:
                things = [r.one(c, 0)]
        else:
            things = r.children(post.fullname, post.comment_ids, 0)
        head = post_json(post, req.base, self.dataset) | {"num_duplicates": 0}
        return Response.json([listing([{"kind": "t3", "data": head}], dist=1), listing(things)])

    def morechildren(self, req: Request) -> Response:
        link = (req.arg("link_id") or "").removeprefix("t3_")
        if not link:
            return Response.json(FORBIDDEN, status=403)
        post = self._post(link)
        if isinstance(post, Response):
            return post
        ids = [i for i in (req.arg("children") or "").split(",") if i]
        if len(ids) > MORECHILDREN_MAX_IDS:
            return Response.json({"message": "Bad Request", "error": 400}, status=400)
        sort, _, max_depth = self._tree_args(req)
        r = TreeRenderer(self.dataset, sort, MORECHILDREN_BUDGET, max_depth)
        wanted = r.ordered([i for i in ids if i in self.dataset.comments
                            and self.dataset.comments[i].link_id == post.id])
        things: list[dict[str, Any]] = []
        for n, c in enumerate(wanted):
            if r.budget <= 0:
                things.append(r.more(c.parent_id, wanted[n:], c.depth))
                break
            things += flatten([r.one(c, c.depth)])
        return Response.json({"json": {"errors": [], "data": {"things": things}}})

    def info(self, req: Request) -> Response:
        ds, out = self.dataset, []
        for name in (req.arg("id") or "").split(",")[:100]:
            if name.startswith("t3_") and name[3:] in ds.posts:
                out.append({"kind": "t3", "data": post_json(ds.posts[name[3:]], req.base, ds)})
            elif name.startswith("t1_") and name[3:] in ds.comments:
                out.append(user_comment_json(ds.comments[name[3:]], ds, req.base))
        return Response.json(listing(out, dist=len(out)))

    def by_id(self, req: Request, post_id: str) -> Response:
        post = self._post(post_id)
        if isinstance(post, Response):
            return post
        return Response.json(listing([{"kind": "t3", "data": post_json(post, req.base, self.dataset)}],
                                     dist=1))

    # HTML and media ---------------------------------------------------------------------------
    def post_page(self, req: Request, post_id: str) -> Response:
        post = self.dataset.posts.get(post_id)
        if post is None:
            return Response.html("<h1>page not found</h1>", 404)
        return Response.html(post_page_html(post, req.base, self.dataset))

    def gallery_redirect(self, req: Request, post_id: str) -> Response:
        post = self.dataset.posts.get(post_id)
        if post is None:
            return Response.html("<h1>page not found</h1>", 404)
        return Response(status=301, content_type="text/html; charset=utf-8",
                        headers=[("Location", req.base + post.permalink)])

    def image(self, req: Request, kind: str, name: str) -> Response:
        hit = self.dataset.files.get(f"/{kind}/{name}")
        if hit is None:
            return Response.html("<h1>404 Not Found</h1>", 404)
        return Response(body=hit[0], content_type=hit[1])

    def video(self, req: Request, vid: str, name: str) -> Response:
        hit = self.dataset.files.get(f"/v/{vid}/{name}")
        if hit is not None:
            return Response(body=hit[0], content_type=hit[1])
        if f"/v/{vid}/DASH_480.mp4" not in self.dataset.files:
            return Response.html("<h1>404 Not Found</h1>", 404)
        if name == "DASHPlaylist.mpd":
            body = ('<?xml version="1.0" encoding="UTF-8"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" '
                    'type="static" mediaPresentationDuration="PT2S"><Period><AdaptationSet '
                    'contentType="video"><Representation id="480" bandwidth="1200000"><BaseURL>'
                    'DASH_480.mp4</BaseURL></Representation></AdaptationSet><AdaptationSet '
                    'contentType="audio"><Representation id="audio" bandwidth="128000"><BaseURL>'
                    'DASH_AUDIO_128.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>')
            return Response(body=body.encode(), content_type="application/dash+xml")
        if name == "HLSPlaylist.m3u8":
            body = "#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:2.0,\nDASH_480.mp4\n#EXT-X-ENDLIST\n"
            return Response(body=body.encode(), content_type="application/vnd.apple.mpegurl")
        return Response.html("<h1>404 Not Found</h1>", 404)

    def sample_targets(self) -> dict[str, str]:
        b, ds = self.base_url, self.dataset
        deep = ds.posts[ds.deep_post_id]
        return {"new": f"{b}/r/harbourtown/new.json?limit=100&raw_json=1",
                "about": f"{b}/r/harbourtown/about.json",
                "thread": f"{b}/comments/{deep.id}.json?raw_json=1",
                "page": b + deep.permalink,
                "user": f"{b}/user/alice_archives/submitted.json?raw_json=1",
                "private": f"{b}/r/secretclub/new.json", "banned": f"{b}/r/gonesub/new.json"}


def _rl_headers(used: int, remaining: int, seconds_left: float) -> list[tuple[str, str]]:
    return [("x-ratelimit-used", str(used)), ("x-ratelimit-remaining", f"{float(remaining):.1f}"),
            ("x-ratelimit-reset", str(max(math.ceil(seconds_left), 0)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Reddit emulator.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with RedditEmulator(seed=args.seed, port=args.port) as emu:
        serve_until_interrupted(emu, "reddit")


if __name__ == "__main__":
    main()
