"""A Parler-like site for sequential-ID enumeration crawls (PLATFORMS.md §7.5, §7.7).

    with IdSiteEmulator(seed=1) as emu:
        emu.dataset.existing_ids  # sorted ints in [first_id, last_id] that have a page

Routes: ``/post/{n}`` (decimal) and ``/p/{hex32}`` (the same post by its 32-hex id) → server-
rendered HTML; ``/api/post/{n}`` → v1-style JSON; ``/v3/uuidConversion/post/{n}`` → the hex id as
text; ``/profile/{username}``; ``/media/{hex}.png`` (images.parler.com stand-in). Missing ids get a
tiny 404. Rate limit headers ``x-ratelimit-limit/remaining/reset`` (reset = epoch seconds).

Run standalone: ``python -m tests.emulators.idsite [--port N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.faults import RateLimitState
from tests.emulators.images import png

AUTHORS = [("harbourwatch", "Harbour Watch"), ("ferryfan", "Ferry Fan"), ("tidelog", "Tide Log")]
MISSING = "<html><body><h1>404</h1></body></html>"


def abbreviate(n: int) -> str:
    """Parler-style abbreviated count strings: "57", "3.3k", "1.2m"."""
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= div:
            return f"{n / div:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


@dataclass
class IdPost:
    id: int  # sequential integer id
    hex_id: str  # 32 lowercase hex chars
    author: str  # username
    author_name: str
    title: str
    text: str
    created_at: str  # Parler compact UTC "%Y%m%d%H%M%S"
    image_path: str
    comments: int
    echoes: int
    upvotes: int
    deleted_flagged: bool = False  # "deleted" but still served (historical Parler behaviour)


@dataclass
class IdDataset:
    seed: int
    first_id: int
    last_id: int
    posts: dict[int, IdPost] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def existing_ids(self) -> list[int]:
        return sorted(self.posts)

    @property
    def missing_ids(self) -> list[int]:
        return [i for i in range(self.first_id, self.last_id + 1) if i not in self.posts]

    def by_hex(self, hex_id: str) -> IdPost | None:
        return next((p for p in self.posts.values() if p.hex_id == hex_id), None)


def build_idsite_dataset(seed: int = 1, first_id: int = 1, last_id: int = 400) -> IdDataset:
    """Roughly half of the ids exist; gaps include runs of up to 12 consecutive missing ids."""
    rng = random.Random(seed)
    ds = IdDataset(seed, first_id, last_id)
    clock = datetime(2021, 1, 6, 12, 0, tzinfo=UTC)
    n = first_id
    while n <= last_id:
        if n > first_id and rng.random() < 0.05:
            n += rng.randint(3, 12)  # a run of missing ids
            continue
        clock += timedelta(seconds=rng.randint(1, 90))
        if rng.random() < 0.25:
            n += 1
            continue
        hex_id = hashlib.md5(f"idsite/{seed}/{n}".encode()).hexdigest()
        user, name = AUTHORS[n % len(AUTHORS)]
        path = f"/media/{hex_id}.png"
        ds.files[path] = png(24, 18, n + seed)
        ds.posts[n] = IdPost(
            n, hex_id, user, name, f"Post {n} by {name}",
            f"Bridge update #{n}: photos inside #harbour & <more> 🚧", clock.strftime("%Y%m%d%H%M%S"),
            path, rng.randint(0, 40), rng.randint(0, 20), rng.choice([rng.randint(0, 999),
                                                                       rng.randint(1000, 50_000)]),
            deleted_flagged=n % 50 == 17)
        n += 1
    return ds


class IdSiteEmulator(Emulator):
    name = "idsite-emulator"

    def __init__(self, seed: int = 1, port: int = 0, first_id: int = 1, last_id: int = 400) -> None:
        super().__init__(port=port)
        self.dataset = build_idsite_dataset(seed, first_id, last_id)

    def route(self, req: Request) -> Response:
        path, ds = req.path, self.dataset
        if m := re.match(r"^/post/(\d+)/?$", path):
            return self.page(req, ds.posts.get(int(m[1])))
        if m := re.match(r"^/p/([0-9a-f]{32})/?$", path):
            return self.page(req, ds.by_hex(m[1]))
        if m := re.match(r"^/api/post/(\d+)$", path):
            return self.api(req, ds.posts.get(int(m[1])))
        if m := re.match(r"^/v3/uuidConversion/post/(\d+)$", path):
            post = ds.posts.get(int(m[1]))
            if post is None:
                return Response(status=404, body=b"", content_type="text/plain")
            return Response(body=post.hex_id.encode(), content_type="text/plain; charset=utf-8")
        if m := re.match(r"^/media/([0-9a-f]{32}\.png)$", path):
            data = ds.files.get("/media/" + m[1])
            return Response(body=data, content_type="image/png") if data else Response.html(MISSING, 404)
        if m := re.match(r"^/profile/([a-z]+)$", path):
            return self.profile(req, m[1])
        return Response.html(MISSING, 404)

    def rate_limited_response(self, req: Request) -> Response:
        return Response.json({"message": "Rate limit exceeded"}, status=429)  # [U] body shape

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        return [("x-ratelimit-limit", str(state.limit)),
                ("x-ratelimit-remaining", str(state.remaining)),
                ("x-ratelimit-reset", str(math.ceil(state.reset_epoch)))]

    def page(self, req: Request, post: IdPost | None) -> Response:
        if post is None:
            return Response.html(MISSING, 404)
        b, e = req.base, html.escape
        counts = "".join(
            f'<div class="pa--item--wrapper"><span class="pa--item--count">{abbreviate(n)}</span>'
            f'<span class="pa--item--label">{label}</span></div>'
            for n, label in ((post.comments, "comments"), (post.echoes, "echoes"),
                             (post.upvotes, "upvotes")))
        flag = ' data-state="deleted"' if post.deleted_flagged else ""
        return Response.html(
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(post.title)}</title>'
            f'<link rel="canonical" href="{b}/p/{post.hex_id}">'
            f'<meta property="og:image" content="{b}{post.image_path}"></head><body>'
            f'<div class="card--post-container" data-id="{post.id}"{flag}><span class="post">'
            f'<div class="card--header"><a class="author--name" href="{b}/profile/{post.author}">'
            f'{e(post.author_name)}</a> <span class="author--username">@{post.author}</span>'
            f' <span class="post--timestamp" data-created="{post.created_at}"></span></div>'
            f'<div class="card--body"><h1 class="post--title">{e(post.title)}</h1>'
            f'<p>{e(post.text)}</p><div class="mc-image--wrapper"><img class="mc-image" '
            f'src="{b}{post.image_path}" alt=""></div></div>'
            f'<div class="card--footer"><div class="post--actions">{counts}</div></div></span></div>'
            f'<div class="comments-list--container" id="comments-list--{post.hex_id}"></div>'
            f'</body></html>')

    def api(self, req: Request, post: IdPost | None) -> Response:
        if post is None:
            return Response.json({"message": "not found"}, status=404)
        body: dict[str, Any] = {
            "post": {"_id": post.hex_id, "creator": hashlib.md5(post.author.encode()).hexdigest(),
                     "body": post.text, "createdAt": post.created_at, "hashtags": ["harbour"],
                     "links": [], "parent": None, "root": None, "depth": "0",
                     "comments": abbreviate(post.comments), "reposts": abbreviate(post.echoes),
                     "upvotes": abbreviate(post.upvotes), "sensitive": False,
                     "state": 8 if post.deleted_flagged else 4, "sequence": post.id,
                     "image": req.base + post.image_path, "shareLink": f"{req.base}/p/{post.hex_id}"},
            "users": [{"id": hashlib.md5(post.author.encode()).hexdigest(), "username": post.author,
                       "name": post.author_name, "badges": [], "human": True, "interactions": 0}],
            "postRefs": [], "urls": [],
        }
        return Response.json(body)

    def profile(self, req: Request, username: str) -> Response:
        mine = [p for p in self.dataset.posts.values() if p.author == username]
        if not mine:
            return Response.html(MISSING, 404)
        links = "".join(f'<li><a href="{req.base}/p/{p.hex_id}">{html.escape(p.title)}</a></li>'
                        for p in mine[-20:])
        return Response.html(f"<!DOCTYPE html><html><head><title>@{username}</title></head><body>"
                             f'<h1 class="profile--username">@{username}</h1><ul>{links}</ul>'
                             f"</body></html>")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Parler-like ID-enumeration site.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with IdSiteEmulator(seed=args.seed, port=args.port) as emu:
        ds = emu.dataset
        serve_until_interrupted(emu, "idsite", [
            f"ids {ds.first_id}..{ds.last_id}: {len(ds.existing_ids)} exist, e.g. "
            f"{emu.base_url}/post/{ds.existing_ids[0]}"])


if __name__ == "__main__":
    main()
