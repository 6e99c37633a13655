"""Pure functions over Discourse JSON (PLATFORMS.md §6): no Scrapy, no I/O.

Used by the spider (navigation: topic lists, the post stream, batches, uploads, pages) and by
``extract.py`` (items), so the same code runs live and when re-extracting old WARCs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from parsel import Selector

from crawler.items import Media, Post

PLATFORM = "discourse"
CHUNK_SIZE = 20  # posts per /t/ID.json chunk, per post_ids[] batch and per HTML page
AVATAR_SIZE = 240
CATEGORY_RE = re.compile(r"^([a-z0-9][a-z0-9_-]*)(?:/(\d+))?$", re.IGNORECASE)
TOPIC_URL_RE = re.compile(r"/t/(?:[^/]+/)?(\d+)(?:/\d+)?/?(?:\.json)?$")
# Paths whose JSON carries posts: /t/ID.json, /t/SLUG/ID.json, /t/ID/N.json, /t/ID/posts.json
TOPIC_JSON_RE = re.compile(r"^(.*)/t/(?:[^/]+/)?(\d+)(?:/\d+)?\.json$")
POSTS_JSON_RE = re.compile(r"^(.*)/t/(\d+)/posts\.json$")
UPLOAD_MARK = "/uploads/"
WAIT_TEXT_RE = re.compile(r"retry again in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


# --- user input ------------------------------------------------------------------------------
def normalize_forum(value: str) -> str:
    """The forum's base URL (``https://forum.example`` or ``https://example.org/forum``); a
    trailing ``/latest``, ``/latest.json``, ``/t/...`` or ``/c/...`` is dropped. ValueError."""
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a forum URL: {value!r} (example: https://meta.discourse.org)")
    path = re.sub(r"/(?:latest(?:\.json)?|categories(?:\.json)?|[tc]/.*)$", "", parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def parse_topic_ref(value: str) -> int:
    """``4711`` or a topic URL ``https://forum/t/slug/4711[/3]`` -> 4711; ValueError."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    m = TOPIC_URL_RE.search(urlsplit(text).path)
    if not m:
        raise ValueError(f"not a topic id or URL: {value!r} (examples: 4711, "
                         "https://forum.example/t/harbour-closure/4711)")
    return int(m[1])


def parse_category(value: str) -> tuple[str, int | None]:
    """``SLUG``, ``SLUG/ID`` or a category URL ``https://forum/c/SLUG/ID`` -> (slug, id)."""
    text = value.strip()
    if "/c/" in text:
        text = text.split("/c/", 1)[1]
    text = text.removesuffix(".json").strip("/")
    m = CATEGORY_RE.match(text)
    if not m:
        raise ValueError(f"not a category: {value!r} (examples: general, general/1, "
                         "https://forum.example/c/general/1)")
    return m[1], int(m[2]) if m[2] else None


# --- URLs ---------------------------------------------------------------------------------------
def latest_url(base: str, page: int = 0) -> str:
    return f"{base}/latest.json" + (f"?page={page}" if page else "")


def category_url(base: str, slug: str, cat_id: int | None) -> str:
    return f"{base}/c/{slug}/{cat_id}.json" if cat_id is not None else f"{base}/c/{slug}.json"


def topic_url(base: str, topic_id: int) -> str:
    return f"{base}/t/{topic_id}.json"


def posts_url(base: str, topic_id: int, post_ids: list[int]) -> str:
    return f"{base}/t/{topic_id}/posts.json?" + urlencode([("post_ids[]", i) for i in post_ids])


def page_urls(base: str, slug: str, topic_id: int, posts_count: int) -> list[str]:
    """The crawler-view HTML pages of a topic: ``/t/SLUG/ID`` then ``?page=2`` ... (20 each)."""
    first = f"{base}/t/{slug or 'topic'}/{topic_id}"
    pages = max((posts_count + CHUNK_SIZE - 1) // CHUNK_SIZE, 1)
    return [first] + [f"{first}?page={n}" for n in range(2, pages + 1)]


def json_url(base: str, more: str) -> str:
    """``more_topics_url`` (an HTML path such as ``/latest?page=1``) -> its ``.json`` twin."""
    parts = urlsplit(urljoin(base + "/", more))
    path = parts.path if parts.path.endswith(".json") else parts.path.rstrip("/") + ".json"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def forum_base_of(url: str) -> str | None:
    """The forum base of a captured topic/posts JSON URL (``https://host[/prefix]``)."""
    parts = urlsplit(url)
    m = POSTS_JSON_RE.match(parts.path) or TOPIC_JSON_RE.match(parts.path)
    if not m:
        return None
    return urlunsplit((parts.scheme, parts.netloc, m[1], "", ""))


def avatar_url(base: str, template: Any) -> str | None:
    if not isinstance(template, str) or not template:
        return None
    return urljoin(base + "/", template.replace("{size}", str(AVATAR_SIZE)))


# --- JSON -> navigation ---------------------------------------------------------------------------
def topic_list(data: Any) -> tuple[list[dict[str, Any]], str | None]:
    """(topics, more_topics_url) of a ``/latest.json`` or ``/c/...json`` answer."""
    tl = data.get("topic_list") if isinstance(data, dict) else None
    if not isinstance(tl, dict):
        return [], None
    topics = [t for t in tl.get("topics") or [] if isinstance(t, dict) and isinstance(t.get("id"), int)]
    more = tl.get("more_topics_url")
    return topics, more if isinstance(more, str) and more else None


def stream_posts(data: Any) -> tuple[list[int], list[dict[str, Any]]]:
    """(``post_stream.stream``, ``post_stream.posts``) of a topic or posts.json answer."""
    ps = data.get("post_stream") if isinstance(data, dict) else None
    if not isinstance(ps, dict):
        return [], []
    stream = [i for i in ps.get("stream") or [] if isinstance(i, int)]
    posts = [p for p in ps.get("posts") or [] if isinstance(p, dict) and isinstance(p.get("id"), int)]
    return stream, posts


def batches(ids: list[int], size: int = CHUNK_SIZE) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def upload_urls(cooked: Any, base: str) -> list[str]:
    """Uploaded files a post shows: ``<img src>``, ``a.lightbox``/``a.attachment`` hrefs under
    ``/uploads/`` (the site or its CDN), absolute, in order, once each."""
    if not isinstance(cooked, str) or UPLOAD_MARK not in cooked:
        return []
    sel = Selector(text=f"<div>{cooked}</div>")
    urls = sel.css("img::attr(src)").getall() + sel.css("a::attr(href)").getall()
    return list(dict.fromkeys(urljoin(base + "/", u) for u in urls if UPLOAD_MARK in u))


def error_name(data: Any, status: int) -> str:
    """``error_type`` of a Discourse error JSON (``not_found``, ``invalid_access``...)."""
    if isinstance(data, dict) and isinstance(data.get("error_type"), str):
        return data["error_type"]
    return f"http_{status}"


def wait_seconds(body: bytes, content_type: str) -> float | None:
    """How long a Discourse 429 body says to wait: JSON ``extras.wait_seconds`` (action
    limiter) or the text form "Please retry again in N seconds." (global IP limiter)."""
    text = body[:4096].decode("utf-8", "replace")
    if "json" in content_type:
        import json

        try:
            data = json.loads(text)
        except ValueError:
            return None
        extras = data.get("extras") if isinstance(data, dict) else None
        wait = extras.get("wait_seconds") if isinstance(extras, dict) else None
        return float(wait) if isinstance(wait, int | float) and wait >= 0 else None
    m = WAIT_TEXT_RE.search(text)
    return float(m[1]) if m else None


# --- JSON -> items ----------------------------------------------------------------------------------
def iso_utc(value: Any) -> str | None:
    """ISO 8601 in UTC, milliseconds and ``Z`` as Discourse writes it; None if unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    dt = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond // 1000:03d}Z"


def html_text(cooked: Any) -> str:
    """Plain text of ``cooked``: block elements on their own lines, entities decoded."""
    if not isinstance(cooked, str) or not cooked:
        return ""
    sel = Selector(text=f"<div>{cooked}</div>")
    blocks = []
    for block in sel.xpath("//body/div/*"):
        text = "".join(block.xpath(".//text()").getall()).strip()
        if text:
            blocks.append(text)
    if not blocks:
        return "".join(sel.xpath("//body/div//text()").getall()).strip()
    return "\n\n".join(blocks)


def post_id(host: str, topic_id: Any, post_number: Any) -> str:
    """``HOST/t/TOPIC/NUMBER``: unique across forums, and replies (which Discourse gives as
    ``reply_to_post_number``) resolve without another capture."""
    return f"{host}/t/{topic_id}/{post_number}"


def _likes(post: dict[str, Any]) -> int | None:
    for action in post.get("actions_summary") or []:
        if isinstance(action, dict) and action.get("id") == 2:
            return action.get("count")
    return 0 if isinstance(post.get("actions_summary"), list) else None


def post_items(post: dict[str, Any], base: str, source: tuple[str, str]) -> list[Any]:
    """A ``posts`` row (raw = the post JSON) and one ``media`` row per upload it shows."""
    topic_id, number = post.get("topic_id"), post.get("post_number")
    if not isinstance(topic_id, int) or not isinstance(number, int):
        return []
    host = urlsplit(base).netloc + urlsplit(base).path
    pid = post_id(host, topic_id, number)
    uploads = upload_urls(post.get("cooked"), base)
    reply_to = post.get("reply_to_post_number")
    row = Post(
        platform=PLATFORM, post_id=pid,
        url=f"{base}/t/{post.get('topic_slug') or 'topic'}/{topic_id}/{number}",
        author=post.get("username"),
        author_id=str(post["user_id"]) if post.get("user_id") is not None else None,
        created_at=iso_utc(post.get("created_at")),
        text=html_text(post.get("cooked")), content_html=post.get("cooked"),
        reply_to_id=post_id(host, topic_id, reply_to) if isinstance(reply_to, int) else None,
        reply_count=post.get("reply_count"), like_count=_likes(post),
        media=uploads, raw=post, source_url=source[0], source_timestamp=source[1],
    )
    media = [Media(PLATFORM, u, pid, _media_type(u), None, None, *source) for u in uploads]
    return [row, *media]


def _media_type(url: str) -> str:
    ext = urlsplit(url).path.rsplit(".", 1)[-1].lower()
    if ext in ("png", "jpg", "jpeg", "gif", "webp", "avif", "svg"):
        return "image"
    if ext in ("mp4", "webm", "mov"):
        return "video"
    return "attachment"
