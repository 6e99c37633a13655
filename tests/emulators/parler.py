"""Parler as it was in January 2021, on several loopback hosts, for the evacuation drill
(PLATFORMS.md §7; ``crawl ids --spec parler-2021``).

    with ParlerEmulator(last_id=300) as emu:
        emu.spec_vars            # ["api=http://127.0.0.2:PORT", "web=http://127.0.0.3:PORT"]
        emu.served_200()         # ground truth: every URL answered 200 (before the deadline)
        emu.go_dark()            # the deadline: from now on every host answers 503

Hosts (each its own 127.0.0.x address, so crawlers see four hosts): ``api`` (uuidConversion,
``/v1/post?id=``, ``/l/{code}`` shortlinks → 302 to the video CDN), ``web`` (server-rendered
``/post/{hex}`` pages), ``images`` (images and profile photos), ``video`` (``…_small.mp4`` and
the original ``….mp4``).

Posts have sequential ids 1..last_id; everything about post n is computed from (seed, n), so
100,000 ids cost no memory. About 8% are deleted: 5% answer 404 at uuidConversion, 3% are
"flagged" (a hex id, then ``{"deleted":true}`` from the API and a 404 page). About 15% are echoes
(``parent``/``root``, ``depth`` "1", the echoed post in ``postRefs``), 30% carry an image, 10% a
video behind a shortlink. Faults: 503s at random (``p_503``) when a host is busier than
``load_rps`` requests/s, 429 bursts on the API host every ``burst_every`` requests lasting
``burst_seconds`` (``Retry-After`` + ``x-ratelimit-*`` with epoch reset; windows kept in
``windows``), and the deadline (``go_dark()`` or ``dark_after`` seconds from start).

Run standalone: ``python -m tests.emulators.parler [--last-id N]``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.faults import RateLimitState
from tests.emulators.images import png

HOSTS = ("api", "web", "images", "video")
USERS = [(hashlib.md5(f"user/{i}".encode()).hexdigest(), f"patriot{i:02d}", f"Patriot {i:02d}")
         for i in range(24)]


def abbreviate(n: int) -> str:
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= div:
            return f"{n / div:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


@dataclass(frozen=True)
class ParlerPost:
    n: int
    hex_id: str
    state: str  # "ok", "gone" (404 at uuidConversion) or "flagged" (deleted, still looked up)
    user: int  # index into USERS
    body: str
    created_at: str  # compact "%Y%m%d%H%M%S" UTC
    parent: int | None  # echoed post (an echo has depth "1")
    image: bool
    video: str | None  # shortlink code
    comments: int
    reposts: int
    upvotes: int
    impressions: int

    @property
    def created_iso(self) -> str:
        return datetime.strptime(self.created_at, "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")


class ParlerData:
    def __init__(self, seed: int, last_id: int) -> None:
        self.seed, self.last_id = seed, last_id

    def hex_of(self, n: int) -> str:
        return hashlib.md5(f"parler/{self.seed}/{n}".encode()).hexdigest()[:24] + f"{n:08x}"

    def n_of(self, hex_id: str) -> int | None:
        try:
            n = int(hex_id[24:], 16)
        except ValueError:
            return None
        return n if len(hex_id) == 32 and 1 <= n <= self.last_id and self.hex_of(n) == hex_id \
            else None

    @functools.lru_cache(maxsize=200_000)  # noqa: B019 (one dataset per emulator)
    def post(self, n: int) -> ParlerPost | None:
        if not 1 <= n <= self.last_id:
            return None
        rng = random.Random(self.seed * 1_000_003 + n)
        roll = rng.random()
        state = "gone" if roll < 0.05 else "flagged" if roll < 0.08 else "ok"
        parent = None
        if n > 20 and rng.random() < 0.15:
            for back in range(1, 40):
                cand = self.post(n - back) if back > 5 else None
                if cand is not None and cand.state == "ok" and cand.parent is None:
                    parent = cand.n
                    break
        clock = datetime(2021, 1, 6, tzinfo=UTC) + timedelta(seconds=n * 7 + rng.randint(0, 6))
        media = rng.random()
        return ParlerPost(
            n=n, hex_id=self.hex_of(n), state=state, user=rng.randrange(len(USERS)),
            body="" if parent else f"Post {n}: the bridge is closed, photos inside #harbour "
                                   f"<{rng.choice(['stop', 'go', 'wait'])}> & more",
            created_at=clock.strftime("%Y%m%d%H%M%S"), parent=parent,
            image=parent is None and media < 0.30,
            video=f"v{n:x}" if parent is None and 0.30 <= media < 0.40 else None,
            comments=rng.randint(0, 40), reposts=rng.randint(0, 30),
            upvotes=rng.choice([rng.randint(0, 999), rng.randint(1000, 90_000)]),
            impressions=rng.randint(10, 2_000_000))

    def image_bytes(self, key: str) -> bytes:
        seed = int(hashlib.md5(key.encode()).hexdigest()[:6], 16)
        return png(48, 32, seed)

    def video_bytes(self, code: str, small: bool, size: int) -> bytes:
        rng = random.Random(f"{self.seed}/{code}/{small}")
        return b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2" + rng.randbytes(
            size // (4 if small else 1))


class _Host(Emulator):
    def __init__(self, park: ParlerEmulator, role: str, address: str) -> None:
        super().__init__(host=address)
        self.park, self.role, self.name = park, role, f"parler-{role}"

    def route(self, req: Request) -> Response:
        return self.park.serve(self, req)

    def rate_limited_response(self, req: Request) -> Response:  # not used (own bursts)
        return Response.json({"message": "Rate limit exceeded"}, status=429)

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        return []


class ParlerEmulator:
    def __init__(self, seed: int = 1, last_id: int = 300, *, p_503: float = 0.05,
                 load_rps: float = 150.0, burst_every: int = 0, burst_seconds: float = 2.0,
                 dark_after: float | None = None, video_size: int = 40_000,
                 first_address: int = 2) -> None:
        self.data = ParlerData(seed, last_id)
        self.rng = random.Random(seed)
        self.p_503, self.load_rps = p_503, load_rps
        self.burst_every, self.burst_seconds = burst_every, burst_seconds
        self.dark_after, self.video_size = dark_after, video_size
        self.hosts = {role: _Host(self, role, f"127.0.0.{first_address + i}")
                      for i, role in enumerate(HOSTS)}
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {role: deque() for role in HOSTS}
        self._api_count = 0
        self.windows: list[tuple[float, float]] = []  # 429 bursts (time.monotonic())
        self.dark_at: float | None = None  # the deadline (time.monotonic())
        self._served: list[tuple[float, str]] = []  # (time, full URL) of every 200
        self.counts: dict[str, int] = {}
        self._urls: dict[str, str] = {}
        self.lookups = 0  # uuidConversion requests so far (drill progress)

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> ParlerEmulator:
        for host in self.hosts.values():
            host.start()
            assert host._server is not None  # a killed worker's reset connections are expected
            host._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._urls = {role: host.base_url for role, host in self.hosts.items()}
        if self.dark_after is not None:
            self.dark_at = time.monotonic() + self.dark_after
        return self

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()

    def __enter__(self) -> ParlerEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def go_dark(self) -> None:
        """The platform is gone: every host answers 503 from now on."""
        with self._lock:
            self.dark_at = self.dark_at if self.dark_at is not None else time.monotonic()

    def url(self, role: str) -> str:
        """A host's base URL (still known after ``stop()``, for checks)."""
        return self._urls[role]

    @property
    def spec_vars(self) -> list[str]:
        return [f"api={self.url('api')}", f"web={self.url('web')}"]

    # ground truth ------------------------------------------------------------------------------
    def served_200(self) -> set[str]:
        with self._lock:
            return {u for t, u in self._served if self.dark_at is None or t < self.dark_at}

    def requests_in_windows(self, grace: float = 0.5) -> list[float]:
        """Offsets of API requests that arrived inside a 429 burst after its first ``grace`` s
        (requests already on the wire when the first 429 went out are not the crawler's fault)."""
        times = [r.time for r in self.hosts["api"].requests]
        with self._lock:
            windows = list(self.windows)
        return [round(t - s, 3) for s, e in windows for t in times if s + grace <= t < e]

    def truth_posts(self) -> dict[str, ParlerPost]:
        """Every post a complete evacuation has a ``posts`` row for (echoed parents included)."""
        out = {}
        for n in range(1, self.data.last_id + 1):
            p = self.data.post(n)
            if p is not None and p.state == "ok":
                out[p.hex_id] = p
                if p.parent:
                    parent = self.data.post(p.parent)
                    assert parent is not None
                    out[parent.hex_id] = parent
        return out

    # serving ------------------------------------------------------------------------------------
    def serve(self, host: _Host, req: Request) -> Response:
        now = time.monotonic()
        with self._lock:
            self.counts[host.role] = self.counts.get(host.role, 0) + 1
            if host.role == "api" and req.path.startswith("/v3/uuidConversion/"):
                self.lookups += 1
            if self.dark_at is not None and now >= self.dark_at:
                return Response.html("<html><body><h1>503 Service Unavailable</h1></body></html>", 503)
            recent = self._recent[host.role]
            recent.append(now)
            while recent and recent[0] < now - 1.0:
                recent.popleft()
            busy = len(recent) > self.load_rps
            limited = self._burst(host, now)
            flaky = busy and self.rng.random() < self.p_503
        if limited is not None:
            left = max(limited - now, 0.0)
            return Response(429, b'{"message":"Too many requests"}', headers=[
                ("Retry-After", str(max(1, math.ceil(left)))),
                ("x-ratelimit-limit", "300"), ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", str(math.ceil(time.time() + left)))])
        if flaky:
            return Response.html("<html><body><h1>503 Service Temporarily Unavailable</h1>"
                                 "</body></html>", 503)
        resp = self._route(host, req)
        if resp.status == 200:
            with self._lock:
                self._served.append((now, host.base_url + req.target))
        return resp

    def _burst(self, host: _Host, now: float) -> float | None:
        """The end of the 429 burst this API request falls in, or None (lock held)."""
        if host.role != "api" or not self.burst_every:
            return None
        if self.windows and now < self.windows[-1][1]:
            return self.windows[-1][1]
        self._api_count += 1
        if self._api_count % self.burst_every == 0:
            self.windows.append((now, now + self.burst_seconds))
            return now + self.burst_seconds
        return None

    def _route(self, host: _Host, req: Request) -> Response:
        path = req.path
        if path == "/robots.txt":
            return Response(404, b"", content_type="text/plain")
        if host.role == "api":
            if path.startswith("/v3/uuidConversion/post/"):
                tail = path.rsplit("/", 1)[1]
                post = self.data.post(int(tail)) if tail.isdigit() else None
                if post is None or post.state == "gone":
                    return Response(404, b"", content_type="text/plain")
                if req.arg("format") == "json":  # for specs that take the key by JSON path
                    return Response.json({"conversion": {"post": post.hex_id, "n": post.n}})
                return Response(200, post.hex_id.encode(), content_type="text/plain; charset=utf-8")
            if path == "/v1/post":
                n = self.data.n_of(req.arg("id") or "")
                post = self.data.post(n) if n else None
                if post is None or post.state == "gone":
                    return Response.json({"message": "not found"}, status=404)
                if post.state == "flagged":
                    return Response.json({"deleted": True, "post": None, "users": []})
                return Response.json(self.envelope(post))
            if path.startswith("/l/"):
                code = path[3:]
                n = int(code[1:], 16) if code.startswith("v") and len(code) > 1 else 0
                post = self.data.post(n) if n else None
                if post is None or post.video != code:
                    return Response(404, b"", content_type="text/plain")
                return Response(302, b"", content_type="text/plain",
                                headers=[("Location", self.video_url(post))])
        if host.role == "web" and path.startswith("/post/"):
            n = self.data.n_of(path[len("/post/"):])
            post = self.data.post(n) if n else None
            if post is None or post.state != "ok":
                return Response.html("<html><body><h1>Post not found</h1></body></html>", 404)
            return Response.html(self.page(post))
        if host.role == "images":
            key = path.strip("/")
            if key.endswith("_256") or key.endswith(".png"):
                return Response(200, self.data.image_bytes(key), content_type="image/png")
        if host.role == "video" and path.endswith(".mp4"):
            code = path.rsplit("/", 1)[1].removesuffix(".mp4")
            small = code.endswith("_small")
            return Response(200, self.data.video_bytes(code.removesuffix("_small"), small,
                                                       self.video_size), content_type="video/mp4")
        return Response.html("<html><body><h1>404</h1></body></html>", 404)

    # payloads ------------------------------------------------------------------------------------
    def video_url(self, post: ParlerPost) -> str:
        return f"{self.url('video')}/{post.hex_id[:2]}/{post.hex_id[2:4]}/{post.video}_small.mp4"

    def image_url(self, post: ParlerPost) -> str:
        return f"{self.url('images')}/{post.hex_id}.png"

    def photo_url(self, user: int) -> str:
        return f"{self.url('images')}/{USERS[user][0]}_256"

    def _post_json(self, p: ParlerPost) -> dict[str, Any]:
        parent = self.data.post(p.parent) if p.parent else None
        links = [f"i{p.n:x}"] if p.image else [p.video] if p.video else []
        return {"_id": p.hex_id, "creator": USERS[p.user][0], "body": p.body,
                "createdAt": p.created_at, "hashtags": [] if p.parent else ["harbour"],
                "links": links, "parent": parent.hex_id if parent else None,
                "root": parent.hex_id if parent else None, "depth": "1" if parent else "0",
                "comments": str(p.comments), "impressions": abbreviate(p.impressions),
                "reposts": str(p.reposts), "upvotes": abbreviate(p.upvotes),
                "sensitive": False, "state": 4, "shareLink": f"{self.url('web')}/post/{p.hex_id}"}

    def envelope(self, p: ParlerPost) -> dict[str, Any]:
        posts = [p] + ([self.data.post(p.parent)] if p.parent else [])  # type: ignore[list-item]
        urls = []
        for q in posts:
            if q.image:
                urls.append({"_id": f"i{q.n:x}", "long": self.image_url(q), "short": None,
                             "domain": "images.parler.com", "metadata": {"mimeType": "image/png"}})
            if q.video:  # the long URL hides behind the shortlink
                urls.append({"_id": q.video, "long": None,
                             "short": f"{self.url('api')}/l/{q.video}",
                             "domain": "video.parler.com", "metadata": {"mimeType": "video/mp4"}})
        users = sorted({q.user for q in posts})
        return {"post": self._post_json(p),
                "postRefs": [self._post_json(q) for q in posts[1:]],
                "users": [{"id": USERS[u][0], "username": USERS[u][1], "name": USERS[u][2],
                           "profilePhoto": self.photo_url(u), "badges": [], "human": True,
                           "interactions": 0} for u in users],
                "urls": urls}

    def page(self, p: ParlerPost) -> str:
        shown = self.data.post(p.parent) if p.parent else p
        assert shown is not None
        kind = "echo--parent" if p.parent else "post"
        media = ""
        if shown.image:
            media = f'<img class="post--image" src="{html.escape(self.image_url(shown))}">'
        elif shown.video:
            media = (f'<video controls><source src="{self.url("api")}/l/{shown.video}" '
                     'type="video/mp4"></video>')
        _, username, name = USERS[p.user]
        return (f"<!doctype html><html><head><title>{html.escape(name)} on Parler</title></head>"
                f'<body><div class="card--post-container"><span class="{kind}"></span>'
                f'<div class="card--header"><img class="profile--photo" '
                f'src="{self.photo_url(p.user)}"><a href="/profile/{username}">'
                f"{html.escape(name)}</a></div>"
                f'<div class="card--body"><p>{html.escape(shown.body)}</p></div>{media}'
                '<div class="card--footer"><div class="post--actions">'
                f'<div class="pa--item--wrapper"><span class="pa--item--count">{shown.comments}'
                '</span></div><div class="pa--item--wrapper"><span class="pa--item--count">'
                f'{shown.reposts}</span></div><div class="pa--item--wrapper">'
                f'<span class="pa--item--count">{abbreviate(shown.upvotes)}</span></div>'
                "</div></div></div></body></html>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--last-id", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    emu = ParlerEmulator(seed=args.seed, last_id=args.last_id).start()
    extra = [f"{role:7} {emu.url(role)}" for role in HOSTS]
    extra.append("crawl: socialark crawl ids --spec parler-2021 "
                 + " ".join(f"--var {v}" for v in emu.spec_vars) + f" --range 1-{args.last_id}")
    serve_until_interrupted(emu.hosts["api"], "parler", extra)


if __name__ == "__main__":
    main()
