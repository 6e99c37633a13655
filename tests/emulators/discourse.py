"""Discourse forum emulator (PLATFORMS.md §6): JSON API, crawler-view HTML, uploads, avatars.

    with DiscourseEmulator(seed=1) as emu:
        emu.base_url, emu.dataset, emu.requests, emu.faults
        emu.rate_limit_style = "text" | "json"   # which 429 form (§6.3) the fault window sends

Run standalone: ``python -m tests.emulators.discourse [--port N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import time
from collections.abc import Callable
from typing import Any

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.discourse_data import (
    DiscourseDataset,
    DPost,
    DUser,
    Topic,
    build_discourse_dataset,
)
from tests.emulators.faults import RateLimitState
from tests.emulators.images import png

CHUNK_SIZE = 20
PER_PAGE = 30
PRINT_MAX = 1000
LATEST_POSTS = 50
ACTIONS_PER_PAGE = 30
OOPS = "<h1>Oops! That page doesn\u2019t exist or is private.</h1>"
NOT_FOUND = {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}
INVALID_ACCESS = {"errors": ["You are not permitted to view the requested resource."],
                  "error_type": "invalid_access"}


class DiscourseEmulator(Emulator):
    name = "discourse-emulator"

    def __init__(self, seed: int = 1, port: int = 0) -> None:
        super().__init__(port=port)
        self.dataset: DiscourseDataset = build_discourse_dataset(seed)
        self.rate_limit_style = "text"  # "text": global IP limiter; "json": action limiter
        self.max_post_ids = CHUNK_SIZE  # post_ids[] beyond this many are ignored per request
        self._routes: list[tuple[re.Pattern[str], Callable[..., Response]]] = [
            (re.compile(p), h) for p, h in (
                (r"^/latest\.json$", self.latest),
                (r"^/c/([^/]+)/(\d+)(?:/l/latest)?\.json$", self.category),
                (r"^/t/(\d+)/posts\.json$", self.topic_posts),
                (r"^/t/(?:[^/]+/)?(\d+)(?:/(\d+))?\.json$", self.topic),
                (r"^/posts\.json$", self.latest_posts),
                (r"^/posts/(\d+)/replies\.json$", self.replies),
                (r"^/posts/(\d+)\.json$", self.one_post),
                (r"^/u/([^/.]+)\.json$", self.user),
                (r"^/user_actions\.json$", self.user_actions),
                (r"^/t/([^/]+)/(\d+)(?:/(\d+))?/?$", self.topic_page),
                (r"^/uploads/default/original/.+$", self.upload),
                (r"^/user_avatar/[^/]+/([^/]+)/(\d+)/\d+_2\.png$", self.avatar),
            )
        ]

    # plumbing -----------------------------------------------------------------------------
    def route(self, req: Request) -> Response:
        for pattern, handler in self._routes:
            if m := pattern.match(req.path):
                return handler(req, *m.groups())
        return Response.json(NOT_FOUND, status=404)

    def _retry_after(self) -> int:
        end = self.faults.window_end
        return max(math.ceil(end - time.monotonic()), 1) if end is not None else 10

    def rate_limited_response(self, req: Request) -> Response:
        wait = self._retry_after()
        if self.rate_limit_style == "json":
            return Response.json({
                "errors": [f"You've performed this action too many times. Please wait {wait} "
                           "seconds before trying again."],
                "error_type": "rate_limit",
                "extras": {"wait_seconds": wait, "time_left": f"{wait} seconds"},
            }, status=429, headers=[("Retry-After", str(wait))])
        body = (f"Slow down, too many requests from this IP address.\nPlease retry again in {wait} "
                "seconds.\nError code: ip_10_secs_limit.\n")
        return Response(status=429, body=body.encode(), content_type="text/plain; charset=utf-8",
                        headers=[("Retry-After", str(wait)),
                                 ("Discourse-Rate-Limit-Error-Code", "ip_10_secs_limit")])

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        return []  # Discourse sends no quota headers on successful responses

    def _topic(self, topic_id: int) -> Topic | Response:
        topic = self.dataset.topics.get(topic_id)
        if topic is None:
            return Response.json(NOT_FOUND, status=404)
        if not self.dataset.public(topic_id):
            return Response.json(INVALID_ACCESS, status=403)
        return topic

    def _avatar(self, req: Request, u: DUser) -> str:
        host = req.headers.get("host", "127.0.0.1")
        return f"/user_avatar/{host}/{u.username}/{{size}}/{u.avatar_n}_2.png"

    # JSON shapes ----------------------------------------------------------------------------
    def post_json(self, req: Request, p: DPost) -> dict[str, Any]:
        ds, u = self.dataset, self.dataset.users[p.user_id]
        topic = ds.topics[p.topic_id]
        return {
            "id": p.id, "name": u.name, "username": u.username, "avatar_template": self._avatar(req, u),
            "created_at": p.created_at, "cooked": p.cooked(req.base), "post_number": p.post_number,
            "post_type": 1, "updated_at": p.updated_at or p.created_at,
            "reply_count": sum(1 for q in topic.post_ids
                               if ds.posts[q].reply_to_post_number == p.post_number),
            "reply_to_post_number": p.reply_to_post_number, "quote_count": 0,
            "incoming_link_count": 0, "reads": p.reads, "readers_count": max(p.reads - 1, 0),
            "score": round(p.reads * 0.2 + p.likes * 15, 1), "topic_id": topic.id,
            "topic_slug": topic.slug, "display_username": u.name, "version": p.version,
            "link_counts": [], "actions_summary": [{"id": 2, "count": p.likes}] if p.likes else [],
            "user_id": u.id, "hidden": False, "trust_level": u.trust_level,
            "deleted_at": p.updated_at or p.created_at if p.user_deleted else None,
            "user_deleted": p.user_deleted, "edit_reason": None, "wiki": False,
            "moderator": False, "admin": False, "staff": False,
        }

    def topic_list_item(self, req: Request, t: Topic) -> dict[str, Any]:
        ds = self.dataset
        stream = ds.stream(t.id)
        first = ds.posts[stream[0]]
        posters = list(dict.fromkeys(ds.posts[p].user_id for p in stream))[:5]
        return {
            "id": t.id, "title": t.title, "fancy_title": html.escape(t.title), "slug": t.slug,
            "posts_count": len(stream), "reply_count": len(stream) - 1, "highest_post_number":
            ds.posts[t.post_ids[-1]].post_number, "created_at": t.created_at,
            "last_posted_at": ds.last_posted_at(t.id), "bumped": True,
            "bumped_at": ds.last_posted_at(t.id), "archetype": "regular", "unseen": False,
            "pinned": t.pinned, "visible": True, "closed": t.closed, "archived": False,
            "views": t.views, "like_count": sum(ds.posts[p].likes for p in stream),
            "category_id": t.category_id, "has_summary": False,
            "image_url": req.base + first.upload_paths[0] if first.upload_paths else None,
            "posters": [{"extras": None, "description": "Poster", "user_id": uid} for uid in posters],
        }

    def _topic_list(self, req: Request, topics: list[Topic], more_path: str) -> Response:
        try:
            page = max(int(req.arg("page") or 0), 0)
            per_page = min(max(int(req.arg("per_page") or PER_PAGE), 1), 100)
        except ValueError:
            return Response.json({"errors": ["invalid page"], "error_type": "invalid_parameters"}, 400)
        # Pinned first, then bumped (last post) newest first.
        topics = [t for t in topics if t.pinned] + sorted(
            (t for t in topics if not t.pinned), key=lambda t: self.dataset.last_posted_at(t.id),
            reverse=True)
        chunk = topics[page * per_page:(page + 1) * per_page]
        items = [self.topic_list_item(req, t) for t in chunk]
        user_ids = sorted({p["user_id"] for i in items for p in i["posters"]})
        tl: dict[str, Any] = {"can_create_topic": False, "per_page": per_page, "top_tags": [],
                              "topics": items}
        if (page + 1) * per_page < len(topics):
            extra = f"&per_page={per_page}" if req.arg("per_page") else ""
            tl["more_topics_url"] = f"{more_path}?page={page + 1}{extra}"
        users = [{"id": u.id, "username": u.username, "name": u.name,
                  "avatar_template": self._avatar(req, u)}
                 for u in (self.dataset.users[i] for i in user_ids)]
        return Response.json({"users": users, "primary_groups": [], "topic_list": tl})

    # handlers -------------------------------------------------------------------------------
    def latest(self, req: Request) -> Response:
        ds = self.dataset
        return self._topic_list(req, [t for t in ds.topics.values() if ds.public(t.id)], "/latest")

    def category(self, req: Request, slug: str, cat_id: str) -> Response:
        cat = self.dataset.categories.get(int(cat_id))
        if cat is None:
            return Response.json(NOT_FOUND, status=404)
        if cat.read_restricted:
            return Response.json(INVALID_ACCESS, status=403)
        topics = [t for t in self.dataset.topics.values() if t.category_id == cat.id]
        return self._topic_list(req, topics, f"/c/{cat.slug}/{cat.id}/l/latest")

    def topic(self, req: Request, topic_id: str, post_number: str | None) -> Response:
        topic = self._topic(int(topic_id))
        if isinstance(topic, Response):
            return topic
        ds = self.dataset
        stream = ds.stream(topic.id)
        if req.arg("print") == "true":
            shown = stream[:PRINT_MAX]
        elif post_number:
            numbers = [ds.posts[p].post_number for p in stream]
            at = next((i for i, n in enumerate(numbers) if n >= int(post_number)), len(stream) - 1)
            start = max(min(at - CHUNK_SIZE // 4, len(stream) - CHUNK_SIZE), 0)
            shown = stream[start:start + CHUNK_SIZE]
        else:
            shown = stream[:CHUNK_SIZE]
        item = self.topic_list_item(req, topic)
        creator = ds.users[ds.posts[stream[0]].user_id]
        last = ds.users[ds.posts[stream[-1]].user_id]
        brief = lambda u: {"id": u.id, "username": u.username, "name": u.name,  # noqa: E731
                           "avatar_template": self._avatar(req, u)}
        participants = [ds.users[i] for i in dict.fromkeys(ds.posts[p].user_id for p in stream)]
        return Response.json({
            "post_stream": {"posts": [self.post_json(req, ds.posts[p]) for p in shown],
                            "stream": stream},
            "timeline_lookup": [[1, 0]], "suggested_topics": [], "tags": [],
            **{k: item[k] for k in ("id", "title", "fancy_title", "posts_count", "created_at",
                                    "views", "reply_count", "like_count", "last_posted_at",
                                    "visible", "closed", "archived", "archetype", "slug",
                                    "category_id", "pinned", "highest_post_number")},
            "word_count": sum(len(ds.posts[p].raw.split()) for p in stream),
            "deleted_at": None, "user_id": creator.id, "chunk_size": CHUNK_SIZE,
            "participant_count": len(participants), "thumbnails": None,
            "details": {"created_by": brief(creator), "last_poster": brief(last),
                        "participants": [brief(u) | {"post_count": sum(
                            1 for p in stream if ds.posts[p].user_id == u.id)}
                            for u in participants]},
        })

    def topic_posts(self, req: Request, topic_id: str) -> Response:
        topic = self._topic(int(topic_id))
        if isinstance(topic, Response):
            return topic
        wanted: list[int] = []
        for raw in req.args("post_ids[]") + req.args("post_ids"):
            if raw.isdigit() and int(raw) not in wanted:
                wanted.append(int(raw))
        wanted = wanted[:self.max_post_ids]
        visible = set(self.dataset.stream(topic.id))
        posts = [self.post_json(req, self.dataset.posts[p]) for p in self.dataset.stream(topic.id)
                 if p in wanted and p in visible]
        return Response.json({"post_stream": {"posts": posts}, "id": topic.id})

    def _public_post(self, post_id: int) -> DPost | Response:
        p = self.dataset.posts.get(post_id)
        if p is None or p.staff_deleted:
            return Response.json(NOT_FOUND, status=404)
        if not self.dataset.public(p.topic_id):
            return Response.json(INVALID_ACCESS, status=403)
        return p

    def one_post(self, req: Request, post_id: str) -> Response:
        p = self._public_post(int(post_id))
        if isinstance(p, Response):
            return p
        return Response.json(self.post_json(req, p) | {"raw": "" if p.user_deleted else p.raw})

    def replies(self, req: Request, post_id: str) -> Response:
        p = self._public_post(int(post_id))
        if isinstance(p, Response):
            return p
        ds = self.dataset
        kids = [ds.posts[q] for q in ds.stream(p.topic_id)
                if ds.posts[q].reply_to_post_number == p.post_number]
        return Response.json([self.post_json(req, q) for q in kids])

    def latest_posts(self, req: Request) -> Response:
        ds = self.dataset
        before = int(req.arg("before") or 0) or None
        ids = sorted((p.id for p in ds.posts.values() if not p.staff_deleted and ds.public(p.topic_id)
                      and (before is None or p.id < before)), reverse=True)[:LATEST_POSTS]
        out = []
        for i in ids:
            t = ds.topics[ds.posts[i].topic_id]
            out.append(self.post_json(req, ds.posts[i]) | {
                "topic_title": t.title, "category_id": t.category_id, "raw": ds.posts[i].raw})
        return Response.json({"latest_posts": out})

    def user(self, req: Request, username: str) -> Response:
        u = self.dataset.user_by_name(username)
        if u is None:
            return Response.json(NOT_FOUND, status=404)
        count = sum(1 for p in self.dataset.posts.values() if p.user_id == u.id)
        return Response.json({"user_badges": [], "user": {
            "id": u.id, "username": u.username, "name": u.name,
            "avatar_template": self._avatar(req, u), "created_at": u.created_at,
            "trust_level": u.trust_level, "post_count": count, "moderator": False, "admin": False}})

    def user_actions(self, req: Request) -> Response:
        ds = self.dataset
        u = ds.user_by_name(req.arg("username") or "")
        if u is None:
            return Response.json(NOT_FOUND, status=404)
        filters = {int(f) for f in (req.arg("filter") or "4,5").split(",") if f.isdigit()}
        offset = int(req.arg("offset") or 0)
        acts = []
        for p in sorted(ds.posts.values(), key=lambda p: p.id, reverse=True):
            if p.user_id != u.id or p.staff_deleted or not ds.public(p.topic_id):
                continue
            kind = 4 if p.post_number == 1 else 5
            if kind in filters:
                t = ds.topics[p.topic_id]
                acts.append({"action_type": kind, "created_at": p.created_at, "topic_id": t.id,
                             "post_id": p.id, "post_number": p.post_number, "title": t.title,
                             "slug": t.slug, "username": u.username, "excerpt": p.raw[:100]})
        return Response.json({"user_actions": acts[offset:offset + ACTIONS_PER_PAGE]})

    # HTML and files --------------------------------------------------------------------------
    def topic_page(self, req: Request, slug: str, topic_id: str, post_number: str | None) -> Response:
        topic = self.dataset.topics.get(int(topic_id))
        if topic is None or not self.dataset.public(topic.id):
            return Response.html(OOPS, 404 if topic is None else 403)
        ds = self.dataset
        stream = ds.stream(topic.id)
        page = max(int(req.arg("page") or 1), 1)
        chunk = stream[(page - 1) * CHUNK_SIZE:page * CHUNK_SIZE]
        canonical = f"{req.base}/t/{topic.slug}/{topic.id}"
        posts = []
        for pid in chunk:
            p, u = ds.posts[pid], ds.users[ds.posts[pid].user_id]
            posts.append(
                f'<div id="post_{p.post_number}" itemprop="comment" itemscope '
                f'itemtype="http://schema.org/Comment" class="topic-body crawler-post">'
                f'<div class="crawler-post-meta"><span class="creator" itemprop="author" itemscope '
                f'itemtype="http://schema.org/Person"><a itemprop="url" href="{req.base}/u/'
                f'{u.username}"><span itemprop="name">{u.username}</span></a></span>'
                f'<span class="crawler-post-infos"><time itemprop="datePublished" datetime='
                f'"{p.created_at}" class="post-time">{p.created_at[:10]}</time>'
                f'<meta itemprop="position" content="{p.post_number}"></span></div>'
                f'<div class="post" itemprop="text">{p.cooked(req.base)}</div></div>')
        nav = ""
        if page > 1:
            nav += f'<a rel="prev" href="/t/{topic.slug}/{topic.id}?page={page - 1}">← previous page</a>'
        if page * CHUNK_SIZE < len(stream):
            nav += f'<a rel="next" href="/t/{topic.slug}/{topic.id}?page={page + 1}">next page →</a>'
        body = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(topic.title)}'
                f' - Emulated Discourse</title><link rel="canonical" href="{canonical}">'
                f'</head><body class="crawler"><div id="main-outlet" class="wrap" role="main">'
                f'<div id="topic-title"><h1><a href="{canonical}">{html.escape(topic.title)}</a></h1>'
                f'</div><div itemscope itemtype="http://schema.org/DiscussionForumPosting">'
                f'<meta itemprop="headline" content="{html.escape(topic.title)}">'
                f'{"".join(posts)}</div><div role="navigation" itemscope '
                f'itemtype="http://schema.org/SiteNavigationElement" class="topic-body crawler-post">'
                f'{nav}</div></div></body></html>')
        return Response.html(body)

    def upload(self, req: Request) -> Response:
        hit = self.dataset.files.get(req.path)
        if hit is None:
            return Response.html("<h1>Not found</h1>", 404)
        return Response(body=hit[0], content_type=hit[1],
                        headers=[("Cache-Control", "max-age=31556952, public, immutable")])

    def avatar(self, req: Request, username: str, size: str) -> Response:
        u = self.dataset.user_by_name(username)
        if u is None:
            return Response.html("<h1>Not found</h1>", 404)
        side = min(max(int(size), 1), 96)
        return Response(body=png(side, side, u.avatar_n), content_type="image/png")

    def sample_targets(self) -> dict[str, str]:
        b, big = self.base_url, self.dataset.topics[self.dataset.big_topic_id]
        return {"latest": f"{b}/latest.json", "category": f"{b}/c/general/1.json",
                "topic": f"{b}/t/{big.id}.json", "page": f"{b}/t/{big.slug}/{big.id}",
                "private": f"{b}/c/staff-lounge/3.json"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Discourse emulator.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with DiscourseEmulator(seed=args.seed, port=args.port) as emu:
        serve_until_interrupted(emu, "discourse")


if __name__ == "__main__":
    main()
