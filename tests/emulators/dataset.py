"""Deterministic ground truth for the Mastodon-family emulator.

``build_dataset(flavor, seed)`` returns a :class:`MastodonDataset`. Text is stored without host
names; ``Status.content(base)`` renders the HTML a server at ``base`` would send, so tests can
compare exactly whatever port the emulator runs on.

Layout (identical for every seed; the seed varies timestamps, counts and media bytes):
* ``alice``: exactly 250 timeline entries (own posts, 25 replies, 25 boosts, 2 quotes,
  3 edited posts, media posts incl. one GIF, unicode/RTL/CJK/emoji, #archive/#photo tags),
  2 pinned; one more deleted status (404) not in the 250.
* ``bob``, ``carol``: posts alice replies to / boosts / quotes, and the deep thread replies.
* ``dave``: 3 posts.  ``spammer``: suspended (statuses hidden).
* deep thread rooted at an alice post: chain c1..c45 and 45 replies to c10 (see mastodon.py
  for the unauthenticated context caps this defeats).
"""

from __future__ import annotations

import hashlib
import html
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.emulators.images import gif, png

FLAVORS = ("mastodon", "truthsocial", "gab", "pleroma")
ALICE_TIMELINE = 250
THREAD_CHAIN = 45
THREAD_WIDE = 45  # replies to chain node c10
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order

SAMPLES = [
    "Saving the harbour photos before the server closes 📸",
    "مرحبا بالعالم — نحفظ الأرشيف قبل الإغلاق",
    "שלום עולם, הארכיון נשמר",
    "档案保存很重要 · アーカイブは大切 · 기록 보관",
    "Emoji test 🏳️‍🌈 👩🏽‍💻 🇺🇦 and a ZWJ family 👨‍👩‍👧",
    "Escaping <script>alert(1)</script> & \"quotes\" stays text",
    "Plain old ASCII post number",
    "Ünïcödé diacritics: naïve café, Ærøskøbing, Łódź",
]
LINK = "https://example.org/a/very/long/path/that/gets/ellipsised?query=1"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_id(flavor: str, dt: datetime, seq: int) -> str:
    """Snowflake-like numeric ids (Mastodon, Truth, Gab) or Pleroma FlakeIds (fixed-length
    base62 in ASCII order, so plain string comparison sorts them by time)."""
    ms = int(dt.timestamp() * 1000)
    if flavor == "pleroma":
        n = (ms << 64) | (0xA1B2C3 << 16) | (seq & 0xFFFF)
        chars = []
        for _ in range(18):
            n, r = divmod(n, 62)
            chars.append(BASE62[r])
        return "".join(reversed(chars))
    return str((ms << 16) | (seq & 0xFFFF))


def id_key(value: str) -> tuple[int, str]:
    """Sort key valid for both id families (numeric strings and fixed-length FlakeIds)."""
    return (len(value), value)


def id_path(n: int) -> str:
    s = f"{n:09d}"
    return f"{s[0:3]}/{s[3:6]}/{s[6:9]}"


@dataclass
class Media:
    id: str
    type: str  # "image" (PNG) or "gifv"-less plain "image" GIF; see mime
    path: str  # original file path on the emulator host
    preview_path: str
    mime: str
    width: int
    height: int
    description: str
    data: bytes = field(repr=False)
    preview_data: bytes = field(repr=False)


@dataclass
class Account:
    id: str
    username: str
    display_name: str
    note: str  # plain text; rendered as <p>…</p>
    created_at: str
    avatar_path: str
    header_path: str
    followers_count: int
    following_count: int
    suspended: bool = False
    status_ids: list[str] = field(default_factory=list)  # visible timeline, newest first


@dataclass
class Status:
    id: str
    account_id: str
    created_at: str
    text: str = ""  # plain text of the current version ("" for boosts)
    tags: list[str] = field(default_factory=list)
    mention_ids: list[str] = field(default_factory=list)
    link: str | None = None
    language: str = "en"
    in_reply_to_id: str | None = None
    in_reply_to_account_id: str | None = None
    reblog_of_id: str | None = None
    quote_of_id: str | None = None
    media: list[Media] = field(default_factory=list)
    reblogs_count: int = 0
    favourites_count: int = 0
    replies_count: int = 0
    quotes_count: int = 0
    versions: list[tuple[str, str]] = field(default_factory=list)  # (created_at, text), oldest first
    edited_at: str | None = None
    deleted: bool = False
    pinned: bool = False

    def content(self, base: str, dataset: MastodonDataset) -> str:
        return render_html(self.text, self.tags, self.mention_ids, self.link, base, dataset)


def render_html(
    text: str, tags: list[str], mention_ids: list[str], link: str | None, base: str,
    dataset: MastodonDataset,
) -> str:
    """Mastodon-sanitised HTML: mentions as h-card links, hashtags, ellipsised long links."""
    if not text:
        return ""
    parts = []
    for acc_id in mention_ids:
        name = dataset.accounts[acc_id].username
        parts.append(
            f'<span class="h-card" translate="no"><a href="{base}/@{name}" '
            f'class="u-url mention">@<span>{name}</span></a></span>'
        )
    parts.append(html.escape(text, quote=False))
    if link:
        m = re.match(r"(https?://)(.{0,30})(.*)", link)
        assert m
        parts.append(
            f'<a href="{html.escape(link)}" target="_blank" rel="nofollow noopener noreferrer" '
            f'translate="no"><span class="invisible">{m[1]}</span><span class="ellipsis">'
            f'{html.escape(m[2])}</span><span class="invisible">{html.escape(m[3])}</span></a>'
        )
    for tag in tags:
        parts.append(
            f'<a href="{base}/tags/{tag}" class="mention hashtag" rel="tag">#<span>{tag}</span></a>'
        )
    return "<p>" + " ".join(parts) + "</p>"


def plain_text(status: Status, dataset: MastodonDataset) -> str:
    """Plain text as a reader sees it: mentions, text, link, hashtags."""
    bits = [f"@{dataset.accounts[a].username}" for a in status.mention_ids] + [status.text]
    bits += [status.link] if status.link else []
    bits += [f"#{t}" for t in status.tags]
    return " ".join(bits)


@dataclass
class MastodonDataset:
    flavor: str
    seed: int
    accounts: dict[str, Account] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)  # includes deleted ones
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (bytes, mime)
    thread_root_id: str = ""
    thread_chain_ids: list[str] = field(default_factory=list)  # c1..c45
    thread_wide_ids: list[str] = field(default_factory=list)  # replies to c10
    deleted_ids: list[str] = field(default_factory=list)
    edited_ids: list[str] = field(default_factory=list)
    quote_ids: list[str] = field(default_factory=list)

    def by_username(self, name: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.username == name), None)

    def visible(self, status_id: str) -> Status | None:
        st = self.statuses.get(status_id)
        if st is None or st.deleted or self.accounts[st.account_id].suspended:
            return None
        return st

    def children(self, status_id: str) -> list[Status]:
        kids = [s for s in self.statuses.values() if s.in_reply_to_id == status_id and not s.deleted]
        return sorted(kids, key=lambda s: id_key(s.id))

    def timeline(self, account_id: str) -> list[Status]:
        return [self.statuses[i] for i in self.accounts[account_id].status_ids]

    # -- changes between two crawls (tests of edits and deletions) ----------------------------
    def edit(self, status_id: str, text: str) -> Status:
        """Edit a status now: new text, ``edited_at`` set, a version appended to its history."""
        st = self.statuses[status_id]
        if not st.versions:
            st.versions = [(st.created_at, st.text)]
        now = iso(datetime.now(UTC))
        st.text, st.edited_at = text, now
        st.versions.append((now, text))
        return st

    def delete(self, status_id: str) -> None:
        """Delete a status: the API answers 404 for it and timelines no longer list it."""
        st = self.statuses[status_id]
        st.deleted = True
        acc = self.accounts[st.account_id]
        acc.status_ids = [i for i in acc.status_ids if i != status_id]

    def post(self, username: str, text: str) -> Status:
        """A new status by ``username``, created now (newest in its timeline)."""
        acc = self.by_username(username)
        assert acc is not None, username
        dt = datetime.now(UTC)
        st = Status(id=make_id(self.flavor, dt, len(self.statuses)), account_id=acc.id,
                    created_at=iso(dt), text=text)
        self.statuses[st.id] = st
        acc.status_ids.insert(0, st.id)
        return st

    def tagged(self, tag: str) -> list[Status]:
        hits = [s for s in self.statuses.values() if tag in s.tags and self.visible(s.id)]
        return sorted(hits, key=lambda s: id_key(s.id), reverse=True)


class _Builder:
    def __init__(self, flavor: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ds = MastodonDataset(flavor=flavor, seed=seed)
        self.clock = datetime(2024, 3, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=seed % 97)
        self.seq = 0
        self.media_seq = 22_345_000

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.randint(60, 5400), milliseconds=self.rng.randint(0, 999))
        self.seq += 1
        return self.clock

    def account(self, username: str, display: str, note: str, suspended: bool = False) -> Account:
        dt = datetime(2022, 11, 1, tzinfo=UTC) + timedelta(days=len(self.ds.accounts) * 17)
        acc_id = make_id(self.ds.flavor, dt, len(self.ds.accounts))
        n = len(self.ds.accounts) + 40
        digest = hashlib.sha256(f"{username}{self.ds.seed}".encode()).hexdigest()
        acc = Account(
            id=acc_id, username=username, display_name=display, note=note, created_at=iso(dt),
            avatar_path=f"/system/accounts/avatars/{id_path(n)}/original/{digest[:16]}.png",
            header_path=f"/system/accounts/headers/{id_path(n)}/original/{digest[16:32]}.png",
            followers_count=self.rng.randint(5, 900), following_count=self.rng.randint(5, 300),
            suspended=suspended,
        )
        self.ds.files[acc.avatar_path] = (png(48, 48, n), "image/png")
        self.ds.files[acc.header_path] = (png(120, 40, n + 1), "image/png")
        self.ds.accounts[acc_id] = acc
        return acc

    def media(self, kind: str = "png") -> Media:
        self.media_seq += 1
        n = self.media_seq
        digest = hashlib.sha256(f"m{n}{self.ds.seed}".encode()).hexdigest()[:16]
        ext, mime = ("gif", "image/gif") if kind == "gif" else ("png", "image/png")
        data = gif(n) if kind == "gif" else png(64, 48, n)
        preview = png(32, 24, n)
        base = f"/system/media_attachments/files/{id_path(n)}"
        m = Media(
            id=str(n), type="image", path=f"{base}/original/{digest}.{ext}",
            preview_path=f"{base}/small/{digest}.png", mime=mime,
            width=4 if kind == "gif" else 64, height=4 if kind == "gif" else 48,
            description=f"Test image {n} — ✓ alt text", data=data, preview_data=preview,
        )
        self.ds.files[m.path] = (data, mime)
        self.ds.files[m.preview_path] = (preview, "image/png")
        return m

    def status(self, acc: Account, text: str = "", **kw: object) -> Status:
        dt = self.tick()
        st = Status(
            id=make_id(self.ds.flavor, dt, self.seq), account_id=acc.id, created_at=iso(dt),
            text=text, reblogs_count=self.rng.randint(0, 9), favourites_count=self.rng.randint(0, 40),
            **kw,  # type: ignore[arg-type]
        )
        if st.reblog_of_id:
            st.reblogs_count = st.favourites_count = 0
        if st.in_reply_to_id:
            parent = self.ds.statuses[st.in_reply_to_id]
            st.in_reply_to_account_id = parent.account_id
            parent.replies_count += 1
        if st.quote_of_id:
            self.ds.statuses[st.quote_of_id].quotes_count += 1
        self.ds.statuses[st.id] = st
        if not st.deleted:
            acc.status_ids.insert(0, st.id)
        return st


def build_dataset(flavor: str = "mastodon", seed: int = 1) -> MastodonDataset:
    if flavor not in FLAVORS:
        raise ValueError(f"unknown flavor {flavor!r}; expected one of {FLAVORS}")
    b = _Builder(flavor, seed)
    ds = b.ds
    alice = b.account("alice", "Alice Archivist 📚", "I keep things. أحفظ الأشياء.")
    bob = b.account("bob", "Bob", "Harbour photographer.")
    carol = b.account("carol", "キャロル Carol", "Replies to everything.")
    dave = b.account("dave", "Dave (quiet)", "Rarely posts.")
    spammer = b.account("spammer", "Spam Bot", "buy now", suspended=True)
    for i in range(3):
        b.status(dave, f"Dave's post {i + 1}: {SAMPLES[i % len(SAMPLES)]}")
    for i in range(2):
        b.status(spammer, f"Spam {i}")

    others: list[Status] = []
    last_alice: Status | None = None
    for i in range(ALICE_TIMELINE):
        if i % 4 == 0:
            author = bob if i % 8 == 0 else carol
            others.append(b.status(author, f"{SAMPLES[i % len(SAMPLES)]} ({author.username} #{i})"))
        if i == 100:
            _deep_thread(b, alice, bob, carol)
            continue
        if i == 150:
            gone = b.status(alice, "This post will be deleted", deleted=True)
            ds.deleted_ids.append(gone.id)
        if i % 10 == 3:
            b.status(alice, reblog_of_id=others[-1].id)
            continue
        kw: dict[str, object] = {}
        text = f"{SAMPLES[i % len(SAMPLES)]} — alice #{i}"
        if i % 10 == 7:
            target = last_alice if (i % 20 == 17 and last_alice) else others[-1]
            kw["in_reply_to_id"] = target.id
            if target.account_id != alice.id:
                kw["mention_ids"] = [target.account_id]
        if i % 3 == 0:
            kw["tags"] = ["archive"]
        if i % 12 == 5:
            kw["media"] = [b.media("gif" if i == 5 else "png")] + ([b.media()] if i % 24 == 5 else [])
            kw["tags"] = [*kw.get("tags", []), "photo"]  # type: ignore[list-item]
        if i % 25 == 11:
            kw["link"] = LINK
        if i in (40, 140):
            kw["quote_of_id"] = others[-1].id
        st = b.status(alice, text, **kw)
        if i in (40, 140):
            ds.quote_ids.append(st.id)
        if i in (20, 60, 180):
            _edit(b, st)
        if i in (30, 200):
            st.pinned = True
        last_alice = st
    assert len(alice.status_ids) == ALICE_TIMELINE
    return ds


def _edit(b: _Builder, st: Status) -> None:
    """Give ``st`` two earlier versions; the current text is the last one."""
    created = datetime.strptime(st.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    first = st.text.replace("alice", "alcie")
    second = st.text + " (typo)"
    v2 = created + timedelta(minutes=3)
    v3 = created + timedelta(minutes=9)
    st.versions = [(st.created_at, first), (iso(v2), second), (iso(v3), st.text)]
    st.edited_at = iso(v3)
    b.ds.edited_ids.append(st.id)


def _deep_thread(b: _Builder, alice: Account, bob: Account, carol: Account) -> None:
    """root (alice) → c1 → … → c45, plus 45 replies to c10 created before c11."""
    ds = b.ds
    root = b.status(alice, "Deep thread root: reply chain test 🧵", tags=["archive"])
    ds.thread_root_id = root.id
    parent = root
    for n in range(1, THREAD_CHAIN + 1):
        author = bob if n % 2 else carol
        parent = b.status(author, f"chain reply c{n}", in_reply_to_id=parent.id)
        ds.thread_chain_ids.append(parent.id)
        if n == 10:
            for w in range(1, THREAD_WIDE + 1):
                who = carol if w % 2 else bob
                wide = b.status(who, f"wide reply w{w} to c10", in_reply_to_id=parent.id)
                ds.thread_wide_ids.append(wide.id)
