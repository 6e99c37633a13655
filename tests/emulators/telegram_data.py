"""Deterministic ground truth for the Telegram web-preview emulator (PLATFORMS.md §4).

``build_telegram_dataset(seed)`` returns a :class:`TelegramDataset`. Layout (same for every seed;
the seed varies dates, view counts and media bytes):

* ``harbourwatch``: 120 visible messages with ids 1..~150. Gaps come from deleted messages
  (``deleted_ids``) and from album members (``album_members``: member id -> first id; the album is
  shown once, under its first id). Id 1 is a service message ("Channel created").
* ``tinychan``: 5 visible messages, ids 1..5, no gaps.
* ``secretchan``: private (``/s/secretchan`` redirects), has no public messages.

Media paths are server-relative (``/file/<hex>.png`` / ``.mp4``); the emulator makes them absolute.
"""

from __future__ import annotations

import hashlib
import html
import random
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.emulators.images import png

BIG_VISIBLE = 120
TEXTS = [
    "Storm surge expected at <b>18:00</b>. Stay off the pier.",
    "Ferry schedule changed — new times below 🚢",
    "Фото с набережной, сегодня утром",  # noqa: RUF001
    "مرحبا — تحديث الميناء",
    "Escaped &lt;script&gt; text &amp; <i>italics</i> stay text",
    "Night shift notes: all quiet.<br/>Second line.",
]


def mp4(seed: int = 0) -> bytes:
    """A tiny structurally valid ISO-BMFF file: ftyp + moov(mvhd) + free (no tracks)."""

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, 2000 + seed)
               + struct.pack(">IH", 0x00010000, 0x0100) + bytes(10)
               + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
               + bytes(24) + struct.pack(">I", 2))
    return ftyp + box(b"moov", mvhd) + box(b"free", f"socialark-emu-{seed}".encode())


@dataclass
class LinkPreview:
    url: str
    site_name: str
    title: str
    description: str
    image_path: str


@dataclass
class TgMessage:
    id: int
    channel: str
    date: str  # ISO 8601 with +00:00 offset, as in <time datetime>
    text_html: str = ""  # inner HTML of div.tgme_widget_message_text
    views: int = 0
    photo_paths: list[str] = field(default_factory=list)  # >1 means album (grouped)
    album_ids: list[int] = field(default_factory=list)  # member ids incl. the first
    video_path: str | None = None
    video_thumb_path: str | None = None
    video_duration: str = ""
    link_preview: LinkPreview | None = None
    forwarded_from: tuple[str, str | None] | None = None  # (name, url or None if hidden)
    reply_to_id: int | None = None
    edited: bool = False
    service: bool = False
    signature: str | None = None

    @property
    def text_plain(self) -> str:
        """Text as a reader sees it (tags stripped, entities decoded, <br/> → newline)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.text_html.replace("<br/>", "\n")))


@dataclass
class Channel:
    username: str
    title: str
    description: str
    subscribers: int
    photo_path: str
    private: bool = False
    messages: dict[int, TgMessage] = field(default_factory=dict)  # visible cards only
    deleted_ids: list[int] = field(default_factory=list)
    album_members: dict[int, int] = field(default_factory=dict)  # member id -> card id

    @property
    def visible_ids(self) -> list[int]:
        return sorted(self.messages)

    @property
    def last_id(self) -> int:
        return max([*self.messages, *self.deleted_ids, *self.album_members, 0])

    # -- changes between two crawls (tests of edits and deletions) ----------------------------
    def edit(self, msg_id: int, text_html: str) -> TgMessage:
        """Edit a message: new text, the card shows Telegram's "edited" marker."""
        msg = self.messages[msg_id]
        msg.text_html, msg.edited = text_html, True
        return msg

    def delete(self, msg_id: int) -> None:
        """Delete a message: gone from the preview; its widget says "Post not found"."""
        del self.messages[msg_id]
        self.deleted_ids.append(msg_id)

    def add(self, text_html: str) -> TgMessage:
        """A new message posted now, with the next id."""
        msg = TgMessage(self.last_id + 1, self.username,
                        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"), text_html, views=1)
        self.messages[msg.id] = msg
        return msg


@dataclass
class TelegramDataset:
    seed: int
    channels: dict[str, Channel] = field(default_factory=dict)  # key: lower-case username
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (bytes, mime)

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name.lower())


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ds = TelegramDataset(seed=seed)
        self.clock = datetime(2024, 9, 1, 6, 0, tzinfo=UTC) + timedelta(minutes=seed % 50)
        self.nfile = 0

    def file(self, kind: str) -> str:
        self.nfile += 1
        digest = hashlib.sha256(f"tg{self.nfile}/{self.ds.seed}".encode()).hexdigest()[:40]
        if kind == "mp4":
            path, data, mime = f"/file/{digest}.mp4", mp4(self.nfile), "video/mp4"
        else:
            path, data, mime = f"/file/{digest}.png", png(40, 30, self.nfile + 500), "image/png"
        self.ds.files[path] = (data, mime)
        return path

    def date(self) -> str:
        self.clock += timedelta(minutes=self.rng.randint(5, 400))
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def channel(self, username: str, title: str, subscribers: int, private: bool = False) -> Channel:
        ch = Channel(username, title, f"{title}: public notes.", subscribers,
                     self.file("png"), private=private)
        self.ds.channels[username.lower()] = ch
        return ch


def build_telegram_dataset(seed: int = 1) -> TelegramDataset:
    b = _Builder(seed)
    big = b.channel("HarbourWatch", "Harbour Watch ⚓", 12345)
    _fill_big(b, big)
    tiny = b.channel("tinychan", "Tiny Channel", 42)
    for i in range(1, 6):
        tiny.messages[i] = TgMessage(i, tiny.username, b.date(), f"tiny message {i}",
                                     views=b.rng.randint(1, 60))
    b.channel("secretchan", "Secret", 7, private=True)
    return b.ds


def _fill_big(b: _Builder, ch: Channel) -> None:
    rng, next_id = b.rng, 1
    while len(ch.messages) < BIG_VISIBLE:
        mid = next_id
        next_id += 1
        n = len(ch.messages)
        if n > 3 and n % 9 == 4 and not ch.deleted_ids[-1:] == [mid - 1]:
            ch.deleted_ids.append(mid)
            continue
        msg = TgMessage(mid, ch.username, b.date(), views=rng.choice(
            [rng.randint(10, 999), rng.randint(1000, 99_999), rng.randint(1_000_000, 3_000_000)]))
        if mid == 1:
            msg.service, msg.text_html = True, "Channel created"
        else:
            msg.text_html = f"{TEXTS[n % len(TEXTS)]} (#{mid})"
        if n % 7 == 2:
            msg.photo_paths = [b.file("png")]
        if n % 23 == 10:  # album of three: members take the next two ids
            msg.photo_paths = [b.file("png") for _ in range(3)]
            msg.album_ids = [mid, mid + 1, mid + 2]
            for member in (mid + 1, mid + 2):
                ch.album_members[member] = mid
            next_id += 2
        if n % 11 == 5:
            msg.video_path, msg.video_thumb_path = b.file("mp4"), b.file("png")
            msg.video_duration = f"0:{rng.randint(10, 59)}"
        if n % 13 == 6:
            url = f"https://example.org/tide/{mid}?a=1&b=2"
            msg.text_html += f' <a href="{html.escape(url)}">Tide table</a>'
            msg.link_preview = LinkPreview(url, "example.org", f"Tide table {mid}",
                                           "High & low water times", b.file("png"))
        if n % 17 == 8:
            msg.forwarded_from = (("Coast Guard News", f"https://t.me/coastguard_news/{mid}")
                                  if n % 2 else ("Hidden User", None))
        if n % 10 == 9 and ch.messages:
            msg.reply_to_id = sorted(ch.messages)[-3]
        if n % 19 == 7:
            msg.edited = True
        if n % 29 == 3:
            msg.signature = "Night Editor"
        ch.messages[mid] = msg
