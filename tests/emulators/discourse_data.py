"""Deterministic ground truth for the Discourse emulator (PLATFORMS.md §6).

``build_discourse_dataset(seed)`` returns a :class:`DiscourseDataset`. Layout (same for every seed;
the seed varies timestamps, counts and upload bytes):

* categories: ``general`` (id 1), ``photos`` (id 2), ``staff-lounge`` (id 3, read-restricted:
  403 ``invalid_access`` for anonymous clients; its topics too).
* 70 public topics + 2 in staff-lounge. ``big_topic_id`` has 137 visible posts (so ``stream`` ≠
  ``posts`` and several ``post_ids[]`` batches are needed), one post deleted by its author (still
  in the stream, ``user_deleted``) and one deleted by staff (not in the stream: ``hidden_post_ids``).
* Every 4th post embeds an upload image (``/uploads/default/original/1X/<sha1>.png``), some attach
  a GIF (``a.attachment``). Post ids are global and increase with time, with gaps.
"""

from __future__ import annotations

import hashlib
import html
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.emulators.images import gif, png

BIG_TOPIC_POSTS = 137
PUBLIC_TOPICS = 70
TEXTS = [
    "Photos from the harbour closure below.",
    "Does anyone have the old ferry timetable & the <pier> map?",
    "Сохраняем архив форума",
    "أرشيف المنتدى",
    "Quoting the minutes: \"board approved\" — see attachment",
]


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass
class DUser:
    id: int
    username: str
    name: str
    trust_level: int
    created_at: str
    avatar_n: int


@dataclass
class Category:
    id: int
    slug: str
    name: str
    read_restricted: bool = False


@dataclass
class DPost:
    id: int
    topic_id: int
    post_number: int
    user_id: int
    created_at: str
    raw: str  # markdown source (only /posts/{id}.json exposes it)
    upload_paths: list[str] = field(default_factory=list)  # embedded images
    attachment_path: str | None = None
    reply_to_post_number: int | None = None
    reads: int = 1
    likes: int = 0
    user_deleted: bool = False
    staff_deleted: bool = False  # hidden from anonymous stream
    updated_at: str | None = None
    version: int = 1

    def cooked(self, base: str) -> str:
        if self.user_deleted:
            return "<p>(post deleted by author)</p>"
        out = f"<p>{html.escape(self.raw, quote=False)}</p>"
        for path in self.upload_paths:
            url = base + path
            out += (f'\n<p><div class="lightbox-wrapper"><a class="lightbox" href="{url}" '
                    f'title="image"><img src="{url}" alt="image" width="32" height="24"></a></div></p>')
        if self.attachment_path:
            out += (f'\n<p><a class="attachment" href="{base}{self.attachment_path}">'
                    f"animation.gif</a> (1 KB)</p>")
        return out


@dataclass
class Topic:
    id: int
    title: str
    slug: str
    category_id: int
    created_at: str
    views: int
    post_ids: list[int] = field(default_factory=list)  # all posts incl. staff-deleted, in order
    pinned: bool = False
    closed: bool = False


@dataclass
class DiscourseDataset:
    seed: int
    users: dict[int, DUser] = field(default_factory=dict)
    categories: dict[int, Category] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    posts: dict[int, DPost] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (bytes, mime)
    big_topic_id: int = 0
    user_deleted_post_ids: list[int] = field(default_factory=list)
    hidden_post_ids: list[int] = field(default_factory=list)  # staff-deleted, not in stream

    def user_by_name(self, name: str) -> DUser | None:
        return next((u for u in self.users.values() if u.username.lower() == name.lower()), None)

    def stream(self, topic_id: int) -> list[int]:
        """Post ids an anonymous client sees in ``post_stream.stream``."""
        return [p for p in self.topics[topic_id].post_ids if not self.posts[p].staff_deleted]

    def public(self, topic_id: int) -> bool:
        return not self.categories[self.topics[topic_id].category_id].read_restricted

    def last_posted_at(self, topic_id: int) -> str:
        return self.posts[self.stream(topic_id)[-1]].created_at


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ds = DiscourseDataset(seed=seed)
        self.clock = datetime(2024, 6, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=seed % 71)
        self.next_post = 9000
        self.nfile = 0

    def tick(self) -> str:
        self.clock += timedelta(seconds=self.rng.randint(30, 7200), milliseconds=self.rng.randint(0, 999))
        return iso(self.clock)

    def upload(self, kind: str = "png") -> str:
        self.nfile += 1
        data = gif(self.nfile) if kind == "gif" else png(32, 24, self.nfile + 300 + self.ds.seed)
        sha1 = hashlib.sha1(data + str(self.nfile).encode()).hexdigest()
        path = f"/uploads/default/original/1X/{sha1}.{kind}"
        self.ds.files[path] = (data, f"image/{kind}")
        return path

    def post(self, topic: Topic, user: DUser, text: str, **kw: object) -> DPost:
        self.next_post += self.rng.randint(1, 3)
        n = len(topic.post_ids) + 1
        p = DPost(self.next_post, topic.id, n, user.id, self.tick(), text,
                  reads=self.rng.randint(1, 80), likes=self.rng.randint(0, 12), **kw)  # type: ignore[arg-type]
        if n % 4 == 1:
            p.upload_paths.append(self.upload())
        if n % 9 == 5:
            p.attachment_path = self.upload("gif")
        self.ds.posts[p.id] = p
        topic.post_ids.append(p.id)
        return p


def build_discourse_dataset(seed: int = 1) -> DiscourseDataset:
    b = _Builder(seed)
    ds = b.ds
    names = [("alice", "Alice"), ("bob", "Bob B."), ("carol", "Carol"), ("dave", "Dave"), ("eve", "Eve")]
    for n, (username, name) in enumerate(names):
        ds.users[n + 12] = DUser(n + 12, username, name, n % 4, iso(datetime(2023, 1, 1 + n, tzinfo=UTC)),
                                 n + 40)
    users = list(ds.users.values())
    for cat in (Category(1, "general", "General"), Category(2, "photos", "Photos"),
                Category(3, "staff-lounge", "Staff Lounge", read_restricted=True)):
        ds.categories[cat.id] = cat
    for t in range(PUBLIC_TOPICS + 2):
        tid = 4700 + t * 3
        cat = 3 if t >= PUBLIC_TOPICS else 1 + t % 2
        title = f"{TEXTS[t % len(TEXTS)][:40]} — topic {t}"
        slug = "-".join(w for w in "".join(ch if ch.isalnum() else " " for ch in title.lower()
                                           if ch.isascii()).split())[:60] or "topic"
        topic = Topic(tid, title, slug, cat, "", b.rng.randint(10, 5000), pinned=t == 3)
        ds.topics[tid] = topic
        count = BIG_TOPIC_POSTS + 1 if t == 5 else 1 + (t * 7) % 23
        for n in range(count):
            kw: dict[str, object] = {}
            if n and n % 6 == 2:
                kw["reply_to_post_number"] = n - 1
            p = b.post(topic, users[(t + n) % len(users)], f"{TEXTS[n % len(TEXTS)]} (t{t} p{n + 1})", **kw)
            if n == 0:
                topic.created_at = p.created_at
        if t == 5:
            ds.big_topic_id = tid
            gone = ds.posts[topic.post_ids[40]]
            gone.user_deleted = True
            ds.user_deleted_post_ids.append(gone.id)
            hidden = ds.posts[topic.post_ids[77]]
            hidden.staff_deleted = True
            ds.hidden_post_ids.append(hidden.id)
            edited = ds.posts[topic.post_ids[3]]
            edited.version, edited.updated_at = 3, b.tick()
    assert len(ds.stream(ds.big_topic_id)) == BIG_TOPIC_POSTS
    return ds
