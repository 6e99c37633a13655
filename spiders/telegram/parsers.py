"""Pure functions over Telegram's web-preview HTML (PLATFORMS.md §4): no Scrapy, no I/O.

Used by the spider (navigation: older pages, gaps, media to fetch) and by ``extract.py`` (items),
so the same code runs live and when re-extracting old WARCs. Page shapes handled: the channel
preview ``/s/NAME`` (a list of message cards), the post page ``/NAME/ID`` and its widget
``/NAME/ID?embed=1`` (one card, or a ``tgme_widget_message_error``), and the landing page
``/NAME`` (channel title, exact subscriber count, photo).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import html as lxml_html
from parsel import Selector

from crawler.items import Account, Media, Post

PLATFORM = "telegram"
DEFAULT_BASE = "https://t.me"
# A public username: a letter, then letters, digits or underscores, 4-32 in all (5 for names
# Telegram hands out, 4 for collectible ones). Page paths use the same rule, so a generic
# ``/p/12`` or ``/api/7`` of a foreign WARC is not taken for a Telegram post.
_NAME = r"[A-Za-z][A-Za-z0-9_]{3,31}"
NAME_RE = re.compile(rf"^{_NAME}$")
# t.me/NAME, t.me/s/NAME, telegram.me/NAME, with or without scheme, @NAME or NAME
CHANNEL_URL_RE = re.compile(r"^(?:https?://)?(?:www\.)?(?:t|telegram)\.me/(?:s/)?([A-Za-z0-9_]+)/?$")
PREVIEW_PATH_RE = re.compile(rf"^/s/({_NAME})/?$")
POST_PATH_RE = re.compile(rf"^/({_NAME})/(\d+)/?$")
LANDING_PATH_RE = re.compile(rf"^/({_NAME})/?$")
BG_URL_RE = re.compile(r"background-image:\s*url\(['\"]?([^'\")]+)['\"]?\)")
ABBREV_RE = re.compile(r"^\s*([\d.]+)\s*([KMB]?)\s*$", re.IGNORECASE)
RESERVED = {"s", "joinchat", "addstickers", "share", "proxy", "socks", "iv", "file", "login"}


# --- identifiers ------------------------------------------------------------------------------
def normalize_channel(value: str) -> str:
    """``@name``, ``name``, ``https://t.me/name`` or ``t.me/s/name`` -> ``name``; ValueError."""
    text = value.strip().removeprefix("@")
    m = CHANNEL_URL_RE.match(text)
    name = m[1] if m else text
    if not NAME_RE.match(name) or name.lower() in RESERVED:
        raise ValueError(f"not a Telegram channel name: {value!r} (examples: durov, @durov, "
                         "https://t.me/durov)")
    return name


def preview_url(base: str, channel: str, before: int | None = None) -> str:
    url = f"{base.rstrip('/')}/s/{channel}"
    return f"{url}?before={before}" if before else url


def post_url(base: str, channel: str, msg_id: int) -> str:
    return f"{base.rstrip('/')}/{channel}/{msg_id}"


def embed_url(base: str, channel: str, msg_id: int) -> str:
    return f"{post_url(base, channel, msg_id)}?embed=1&mode=tme"


def landing_url(base: str, channel: str) -> str:
    return f"{base.rstrip('/')}/{channel}"


def page_kind(url: str) -> str | None:
    """``preview``, ``post`` (page, widget or ``?single``) or ``landing`` by URL path."""
    path = urlsplit(url).path
    if PREVIEW_PATH_RE.match(path):
        return "preview"
    if POST_PATH_RE.match(path):
        return "post"
    m = LANDING_PATH_RE.match(path)
    if m and m[1].lower() not in RESERVED:
        return "landing"
    return None


def post_ref(href: str | None) -> str | None:
    """``https://t.me/chan/42`` (``?single`` etc. ignored) -> ``chan/42``."""
    if not href:
        return None
    m = POST_PATH_RE.match(urlsplit(href).path)
    return f"{m[1]}/{m[2]}" if m else None


# --- values ------------------------------------------------------------------------------------
def parse_count(text: str | None) -> int | None:
    """Telegram's abbreviated counters: ``999``, ``1.2K``, ``12 345`` -> int (``1.2K`` -> 1200:
    the exact number is not on the page)."""
    if not text:
        return None
    compact = text.replace("\u00a0", "").replace(" ", "").replace(",", "")
    m = ABBREV_RE.match(compact)
    if not m:
        return None
    scale = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}[m[2].upper()]
    try:
        return round(float(m[1]) * scale)
    except ValueError:
        return None


def iso_utc(value: str | None) -> str | None:
    """``2024-09-01T12:00:00+00:00`` -> ``2024-09-01T12:00:00Z``; None if unparseable."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    dt = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    text = iso_utc(value)
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def bg_url(style: str | None, base: str) -> str | None:
    m = BG_URL_RE.search(style or "")
    return urljoin(base, m[1].strip()) if m else None


def text_of(sel: Selector) -> str:
    """What a reader sees: text with ``<br>`` as newlines, tags dropped, entities decoded."""
    root = sel.root
    if not hasattr(root, "iter"):
        return ""
    out: list[str] = []

    def walk(el: Any) -> None:
        if el.tag == "br":
            out.append("\n")
        elif el.text:
            out.append(el.text)
        for child in el:
            if isinstance(child.tag, str):
                walk(child)
            if child.tail:
                out.append(child.tail)

    walk(root)
    return "".join(out)


def inner_html(sel: Selector) -> str:
    root = sel.root
    parts = [root.text or ""]
    parts += [lxml_html.tostring(c, encoding="unicode") for c in root]
    return "".join(parts)


# --- pages -------------------------------------------------------------------------------------
@dataclass
class Message:
    """One message card, as parsed (the spider's view; ``post_item`` builds the index row)."""

    channel: str
    id: int
    url: str
    date: str | None
    photos: list[str] = field(default_factory=list)
    album_ids: list[int] = field(default_factory=list)
    video: str | None = None
    video_thumb: str | None = None
    link_preview_image: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    post: Post | None = None
    media: list[Media] = field(default_factory=list)

    @property
    def media_urls(self) -> list[str]:
        urls = [*self.photos, self.video, self.video_thumb, self.link_preview_image]
        return list(dict.fromkeys(u for u in urls if u))


@dataclass
class PreviewPage:
    channel_info: bool  # False: not a channel's public preview (redirected landing page...)
    messages: list[Message]  # as on the page: oldest first
    before: int | None  # the "older messages" anchor, None on the oldest page


def _selector(body: bytes | str) -> Selector:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return Selector(text=text or "<html></html>")


def parse_preview(body: bytes | str, page_url: str, source: tuple[str, str]) -> PreviewPage:
    sel = _selector(body)
    before = sel.css("a.tme_messages_more[data-before]::attr(data-before)").get()
    return PreviewPage(
        channel_info=bool(sel.css("div.tgme_channel_info")),
        messages=[m for card in sel.css("div.tgme_widget_message[data-post]")
                  if (m := parse_message(card, page_url, source))],
        before=int(before) if before and before.isdigit() else None,
    )


def parse_cards(body: bytes | str, page_url: str, source: tuple[str, str]) -> list[Message]:
    """Every message card of any Telegram page (preview, post page, widget)."""
    sel = _selector(body)
    return [m for card in sel.css("div.tgme_widget_message[data-post]")
            if (m := parse_message(card, page_url, source))]


def widget_error(body: bytes | str) -> str | None:
    """``Post not found`` / ``Channel is private`` of a post page or widget; None if a card."""
    sel = _selector(body)
    if sel.css("div.tgme_widget_message[data-post]"):
        return None
    text = " ".join(sel.css(".tgme_widget_message_error ::text").getall()).strip()
    return text or None


def parse_message(card: Selector, page_url: str, source: tuple[str, str]) -> Message | None:
    ref = card.attrib.get("data-post", "")
    channel, _, num = ref.partition("/")
    if not channel or not num.isdigit():
        return None
    msg_id = int(num)
    url = urljoin(page_url, card.css("a.tgme_widget_message_date::attr(href)").get()
                  or post_url(f"{urlsplit(page_url).scheme}://{urlsplit(page_url).netloc}",
                              channel, msg_id))
    msg = Message(channel, msg_id, url, card.css("a.tgme_widget_message_date time::attr(datetime)").get())
    for a in card.css("a.tgme_widget_message_photo_wrap"):
        photo = bg_url(a.attrib.get("style"), page_url)
        if photo:
            msg.photos.append(photo)
        href = a.attrib.get("href", "")
        if "?single" in href and (member := post_ref(href)):
            msg.album_ids.append(int(member.rsplit("/", 1)[1]))
    msg.video = _abs(page_url, card.css("video.tgme_widget_message_video::attr(src)").get())
    msg.video_thumb = bg_url(card.css("i.tgme_widget_message_video_thumb::attr(style)").get(), page_url)
    preview = card.css("a.tgme_widget_message_link_preview")
    link_preview = None
    if preview:
        msg.link_preview_image = bg_url(preview.css("i.link_preview_image::attr(style)").get(),
                                        page_url)
        link_preview = {
            "url": preview.attrib.get("href"),
            "site_name": _text(preview.css(".link_preview_site_name")),
            "title": _text(preview.css(".link_preview_title")),
            "description": _text(preview.css(".link_preview_description")),
            "image": msg.link_preview_image,
        }
    msg.raw = _raw(card, msg, link_preview)
    msg.post, msg.media = _items(card, msg, source)
    return msg


def _abs(base: str, url: str | None) -> str | None:
    return urljoin(base, url) if url else None


def _text(sel: Selector) -> str | None:
    return text_of(sel[0]).strip() if sel else None


def _raw(card: Selector, msg: Message, link_preview: dict[str, Any] | None) -> dict[str, Any]:
    views_text = (card.css("span.tgme_widget_message_views::text").get() or "").strip() or None
    fwd = card.css(".tgme_widget_message_forwarded_from_name")
    forwarded = None
    if fwd:
        href = fwd[0].attrib.get("href")
        forwarded = {"name": text_of(fwd[0]).strip(), "url": href, "post": post_ref(href)}
    reply = card.css("a.tgme_widget_message_reply")
    reply_to = None
    if reply:
        href = reply[0].attrib.get("href")
        reply_to = {"url": href, "post": post_ref(href),
                    "text": _text(reply.css(".js-message_reply_text"))}
    classes = (card.attrib.get("class") or "").split()
    return {
        "channel": msg.channel, "id": msg.id, "date": msg.date,
        "views": views_text, "views_count": parse_count(views_text),
        "edited": bool(card.css(".tgme_widget_message_edited")),
        "service": "service_message" in classes,
        "signature": _text(card.css(".tgme_widget_message_from_author")),
        "author_name": _text(card.css(".tgme_widget_message_owner_name")),
        "forwarded_from": forwarded, "reply_to": reply_to, "link_preview": link_preview,
        "photos": msg.photos, "album_ids": msg.album_ids,
        "video": ({"url": msg.video, "thumb": msg.video_thumb,
                   "duration": _text(card.css(".message_video_duration"))}
                  if msg.video or msg.video_thumb else None),
    }


def _items(card: Selector, msg: Message, source: tuple[str, str]) -> tuple[Post, list[Media]]:
    text_sel = card.css("div.tgme_widget_message_text.js-message_text, "
                        "div.tgme_widget_message_service_text")
    post_id = f"{msg.channel}/{msg.id}"
    media = [Media(PLATFORM, u, post_id, "image", None, None, *source) for u in msg.photos]
    if msg.video:
        media.append(Media(PLATFORM, msg.video, post_id, "video", None, msg.video_thumb, *source))
    elif msg.video_thumb:  # too big for the preview: only the thumbnail is shown
        media.append(Media(PLATFORM, msg.video_thumb, post_id, "video_thumbnail", None, None,
                           *source))
    lp = msg.raw.get("link_preview")
    if msg.link_preview_image and lp:
        media.append(Media(PLATFORM, msg.link_preview_image, post_id, "link_preview",
                           lp.get("title"), None, *source))
    reply = msg.raw.get("reply_to") or {}
    post = Post(
        platform=PLATFORM, post_id=post_id, url=msg.url,
        author=msg.channel, author_id=msg.channel,
        created_at=iso_utc(msg.date),
        text=text_of(text_sel[0]) if text_sel else "",
        content_html=inner_html(text_sel[0]) if text_sel else None,
        reply_to_id=reply.get("post"),
        media=[m.url for m in media if m.media_type in ("image", "video")],
        raw=msg.raw, source_url=source[0], source_timestamp=source[1],
    )
    return post, media


def account_item(body: bytes | str, page_url: str, source: tuple[str, str]) -> Account | None:
    """An ``accounts`` row from a public channel's landing page ``/NAME`` (exact subscribers)."""
    sel = _selector(body)
    preview = sel.css("a.tgme_action_button_new::attr(href)").re_first(r"/s/([A-Za-z0-9_]+)")
    title = _text(sel.css(".tgme_page_title"))
    extra = _text(sel.css(".tgme_page_extra")) or ""
    if not preview or not title or "subscriber" not in extra:
        return None  # private channel, user, bot, or no such name
    origin = f"{urlsplit(page_url).scheme}://{urlsplit(page_url).netloc}"
    return Account(
        platform=PLATFORM, account_id=preview, handle=preview, display_name=title,
        url=landing_url(origin, preview),
        description=_text(sel.css(".tgme_page_description")),
        followers_count=parse_count(extra.split("subscriber", 1)[0]),
        avatar_url=_abs(page_url, sel.css("img.tgme_page_photo_image::attr(src)").get()),
        raw={"title": title, "extra": extra}, source_url=source[0], source_timestamp=source[1],
    )
