"""Deterministic ground truth for the Reddit emulator (PLATFORMS.md §5).

``build_reddit_dataset(seed)`` returns a :class:`RedditDataset`. Layout (same for every seed; the
seed varies timestamps, scores and media bytes):

* r/harbourtown: 260 posts (self, image, link, one gallery, one video; some ``[deleted]`` /
  ``[removed]``; one stickied), authored by alice_archives, bob_boats, carol_c, dave_d.
* ``deep_post_id``: a post in r/harbourtown with a 300-comment tree: 60 top-level comments, a
  14-deep reply chain (forces "continue this thread"), a comment with 30 direct replies (forces
  nested "load more" stubs) and a few deleted/removed comments. A handful of other posts have
  2-3 comments.
* r/quietsub: 3 posts. r/secretclub: private (403). r/gonesub: banned (404).
  r/edgysub: quarantined (403). User ``spam_king``: suspended.

Ids are base36 strings; fullnames are ``t1_``/``t2_``/``t3_``/``t5_`` + id.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field

from tests.emulators.images import png
from tests.emulators.telegram_data import mp4

HARBOUR_POSTS = 260
DEEP_COMMENTS = 300
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
TITLES = [
    "Harbour flood photos, 1 Sept",
    "Ferry timetable & changes <important>",
    "Старый маяк сегодня",
    "Question: where did the pier cams go?",
    "Tide gauge data dump 📈",
    "Meeting notes — 'harbour board' \"minutes\"",
]


def b36(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = B36[r] + out
    return out or "0"


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50].rstrip("_")
    return slug or "_"


@dataclass
class Subreddit:
    name: str
    id: str
    title: str
    subscribers: int
    created_utc: float
    state: str = "public"  # public | private | banned | quarantined
    post_ids: list[str] = field(default_factory=list)


@dataclass
class RUser:
    name: str
    id: str
    created_utc: float
    link_karma: int
    comment_karma: int
    suspended: bool = False


@dataclass
class Post:
    id: str
    subreddit: str
    author: str  # "[deleted]" when the author deleted it
    title: str
    created_utc: float
    kind: str = "self"  # self | image | link | gallery | video
    selftext: str = ""
    link_url: str | None = None  # external URL of link posts
    media_key: str | None = None  # image file key (/i/<key>.png) or v.redd.it id
    gallery: list[tuple[str, str]] = field(default_factory=list)  # (media_id, caption)
    score: int = 1
    upvote_ratio: float = 1.0
    edited: float | bool = False
    removed_by_category: str | None = None
    stickied: bool = False
    locked: bool = False
    flair: str | None = None
    comment_ids: list[str] = field(default_factory=list)  # top-level, in creation order

    @property
    def fullname(self) -> str:
        return "t3_" + self.id

    @property
    def permalink(self) -> str:
        return f"/r/{self.subreddit}/comments/{self.id}/{slugify(self.title)}/"


@dataclass
class Comment:
    id: str
    link_id: str  # post id36 (no prefix)
    parent_id: str  # fullname: t3_… or t1_…
    author: str
    body: str
    created_utc: float
    depth: int
    score: int = 1
    edited: float | bool = False
    deleted: str | None = None  # None | "deleted" | "removed"
    reply_ids: list[str] = field(default_factory=list)  # in creation order

    @property
    def fullname(self) -> str:
        return "t1_" + self.id


@dataclass
class RedditDataset:
    seed: int
    subreddits: dict[str, Subreddit] = field(default_factory=dict)  # key: lower-case name
    users: dict[str, RUser] = field(default_factory=dict)  # key: lower-case name
    posts: dict[str, Post] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (bytes, mime)
    deep_post_id: str = ""
    gallery_post_id: str = ""
    video_post_id: str = ""
    image_post_ids: list[str] = field(default_factory=list)

    def sub(self, name: str) -> Subreddit | None:
        return self.subreddits.get(name.lower())

    def user(self, name: str) -> RUser | None:
        return self.users.get(name.lower())

    def comments_of(self, post_id: str) -> list[Comment]:
        return [c for c in self.comments.values() if c.link_id == post_id]

    # -- changes between two crawls (tests of edits and deletions) ----------------------------
    def edit_post(self, post_id: str, selftext: str) -> Post:
        """The author edits a self post now (``edited`` becomes the edit time)."""
        p = self.posts[post_id]
        p.selftext, p.edited = selftext, float(int(time.time()))
        return p

    def delete_post(self, post_id: str, how: str = "deleted") -> Post:
        """Deleted by its author (``[deleted]`` body and author) or removed by a moderator."""
        p = self.posts[post_id]
        p.selftext = f"[{how}]"
        if how == "deleted":
            p.author = "[deleted]"
        else:
            p.removed_by_category = "moderator"
        return p

    def purge_post(self, post_id: str) -> None:
        """Gone without a trace: its URLs answer 404 and listings drop it."""
        p = self.posts.pop(post_id)
        sub = self.subreddits[p.subreddit.lower()]
        sub.post_ids = [i for i in sub.post_ids if i != post_id]

    def add_post(self, sub_name: str, author: str, title: str, selftext: str) -> Post:
        """A new self post, created now."""
        sub = self.subreddits[sub_name.lower()]
        n = max(int(i, 36) for i in self.posts) + 7
        p = Post(b36(n), sub.name, author, title, float(int(time.time())), selftext=selftext)
        self.posts[p.id] = p
        sub.post_ids.append(p.id)
        return p

    def add_comment(self, post_id: str, author: str, body: str) -> Comment:
        """A new top-level comment on a post, created now."""
        post = self.posts[post_id]
        n = max([int(i, 36) for i in self.comments] + [int("lk00000", 36)]) + 3
        c = Comment(b36(n), post.id, post.fullname, author, body, float(int(time.time())), 0)
        self.comments[c.id] = c
        post.comment_ids.append(c.id)
        return c

    def delete_comment(self, comment_id: str, how: str = "deleted") -> Comment:
        """``[deleted]`` by its author (author too) or ``[removed]`` by a moderator."""
        c = self.comments[comment_id]
        c.deleted, c.body = how, f"[{how}]"
        if how == "deleted":
            c.author = "[deleted]"
        return c

    def subtree_size(self, comment_id: str) -> int:
        c = self.comments[comment_id]
        return 1 + sum(self.subtree_size(r) for r in c.reply_ids)


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ds = RedditDataset(seed=seed)
        self.clock = 1_725_000_000.0 + (seed % 89) * 60
        self.next_post = int("1f6a000", 36)
        self.next_comment = int("lk00000", 36)

    def tick(self, lo: int = 60, hi: int = 3600) -> float:
        self.clock += self.rng.randint(lo, hi) + self.rng.randint(0, 9) / 10
        return self.clock

    def sub(self, name: str, state: str = "public") -> Subreddit:
        n = len(self.ds.subreddits)
        s = Subreddit(name, b36(int("2abcd", 36) + n * 7), f"{name} community", 1000 + n * 311,
                      1_300_000_000.0 + n * 86400, state)
        self.ds.subreddits[name.lower()] = s
        return s

    def user(self, name: str, suspended: bool = False) -> RUser:
        n = len(self.ds.users)
        u = RUser(name, b36(int("8xyz12", 36) + n * 13), 1_400_000_000.0 + n * 86400,
                  self.rng.randint(1, 5000), self.rng.randint(1, 9000), suspended)
        self.ds.users[name.lower()] = u
        return u

    def image(self, key: str) -> None:
        data = png(48, 36, int(hashlib.sha256(key.encode()).hexdigest()[:6], 16) + self.ds.seed)
        for prefix in ("/i/", "/preview/", "/thumbs/"):
            self.ds.files[f"{prefix}{key}.png"] = (data, "image/png")

    def post(self, sub: Subreddit, author: str, title: str, **kw: object) -> Post:
        self.next_post += self.rng.randint(1, 40)
        p = Post(b36(self.next_post), sub.name, author, title, self.tick(),
                 score=self.rng.randint(0, 900), upvote_ratio=round(self.rng.uniform(0.5, 1), 2),
                 **kw)  # type: ignore[arg-type]
        self.ds.posts[p.id] = p
        sub.post_ids.append(p.id)
        return p

    def comment(self, post: Post, parent: Comment | None, author: str, body: str) -> Comment:
        self.next_comment += self.rng.randint(1, 9)
        c = Comment(b36(self.next_comment), post.id, parent.fullname if parent else post.fullname,
                    author, body, self.tick(5, 300), parent.depth + 1 if parent else 0,
                    score=self.rng.randint(-5, 120))
        self.ds.comments[c.id] = c
        (parent.reply_ids if parent else post.comment_ids).append(c.id)
        return c


def build_reddit_dataset(seed: int = 1) -> RedditDataset:
    b = _Builder(seed)
    ds = b.ds
    authors = ["alice_archives", "bob_boats", "carol_c", "dave_d"]
    for name in authors:
        b.user(name)
    b.user("spam_king", suspended=True)
    harbour = b.sub("harbourtown")
    quiet = b.sub("quietsub")
    for name, state in (("secretclub", "private"), ("gonesub", "banned"), ("edgysub", "quarantined")):
        b.sub(name, state)
    for i in range(3):
        b.post(quiet, authors[i], f"Quiet post {i}", selftext=f"Nothing much here ({i}).")
    for i in range(HARBOUR_POSTS):
        author, title = authors[i % 4], f"{TITLES[i % len(TITLES)]} #{i}"
        kw: dict[str, object] = {}
        if i % 5 == 1:
            key = hashlib.sha256(f"img{i}/{seed}".encode()).hexdigest()[:13]
            b.image(key)
            kw = {"kind": "image", "media_key": key}
        elif i % 5 == 2:
            kw = {"kind": "link", "link_url": f"https://example.org/news/{i}?ref=reddit&x=<1>"}
        else:
            kw = {"selftext": f"Body of post {i}: **bold** & <angle> text\n\n* item one\n* item two"}
        if i == 100:
            kw = {"kind": "gallery", "gallery": []}
        if i == 150:
            kw = {"kind": "video", "media_key": "v" + hashlib.sha256(f"vid{seed}".encode()).hexdigest()[:12]}
        if i % 37 == 20:
            author, kw["selftext"] = "[deleted]", "[deleted]"
        if i % 53 == 30:
            kw["selftext"], kw["removed_by_category"] = "[removed]", "moderator"
        if i % 41 == 7:
            kw["edited"] = b.clock + 5000
        p = b.post(harbour, author, title, **kw)
        if p.kind == "image":
            ds.image_post_ids.append(p.id)
        if p.kind == "gallery":
            ds.gallery_post_id = p.id
            for n in range(3):
                mid = hashlib.sha256(f"gal{n}/{seed}".encode()).hexdigest()[:13]
                b.image(mid)
                p.gallery.append((mid, f"Gallery caption {n + 1}"))
        if p.kind == "video":
            ds.video_post_id = p.id
            ds.files[f"/v/{p.media_key}/DASH_480.mp4"] = (mp4(seed + 1), "video/mp4")
            ds.files[f"/v/{p.media_key}/DASH_AUDIO_128.mp4"] = (mp4(seed + 2), "video/mp4")
        if i == 259:
            p.stickied = True
        if i % 30 == 12:
            c = b.comment(p, None, authors[(i + 1) % 4], f"First! on post {i}")
            b.comment(p, c, authors[(i + 2) % 4], "Reply to first")
            b.comment(p, None, authors[(i + 3) % 4], "Another top-level comment")
        if i == 200:
            ds.deep_post_id = p.id
            _deep_tree(b, p, authors)
    return ds


def _deep_tree(b: _Builder, post: Post, authors: list[str]) -> None:
    rng, made = b.rng, 0
    tops: list[Comment] = []
    for n in range(60):
        tops.append(b.comment(post, None, authors[n % 4], f"Top-level comment {n} & <stuff>"))
    made = 60
    parent = tops[0]
    for d in range(1, 15):  # 14-deep chain under tops[0]
        parent = b.comment(post, parent, authors[d % 4], f"chain depth {d}")
    made += 14
    for n in range(30):  # wide: 30 direct replies to tops[1]
        b.comment(post, tops[1], authors[n % 4], f"wide reply {n}")
    made += 30
    pool = list(b.ds.comments_of(post.id))
    while made < DEEP_COMMENTS:
        target = rng.choice(pool)
        if target.depth >= 6:
            continue
        c = b.comment(post, target, authors[made % 4], f"reply #{made} to {target.id}")
        pool.append(c)
        made += 1
    everything = b.ds.comments_of(post.id)
    for c in everything[5::47]:
        c.deleted, c.author, c.body = "deleted", "[deleted]", "[deleted]"
    for c in everything[11::61]:
        c.deleted, c.body = "removed", "[removed]"
