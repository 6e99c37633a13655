"""Pure functions over Reddit's public JSON (PLATFORMS.md §5): no Scrapy, no I/O.

Used by the spider (navigation: which URLs to fetch next) and by ``extract.py`` (items), so the
same code runs live and when re-extracting old WARCs.

Identifiers: every row is keyed by its Reddit *fullname* (``t3_…`` submissions, ``t1_…``
comments), the form ``parent_id``/``link_id`` already use, so ``reply_to_id`` is the parent's
``post_id`` with no conversion.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from crawler.items import Account, Media, Post

PLATFORM = "reddit"
MORECHILDREN_MAX = 100  # ids per /api/morechildren request (more -> HTTP 400)
LISTING_MAX = 100  # items per listing page (Reddit clamps ``limit`` to 100)
# Hosts that serve only the API: their permalinks are shown on www.reddit.com.
API_ONLY_HOSTS = {"oauth.reddit.com": "https://www.reddit.com"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")

ID36_RE = re.compile(r"^[0-9a-z]{1,13}$")
SUB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
USER_RE = re.compile(r"^[A-Za-z0-9_-]{3,20}$")
POST_PATH_RE = re.compile(r"/(?:comments|gallery)/([0-9a-z]{1,13})(?:/|$|\.json)")
MPD_BASE_RE = re.compile(r"<BaseURL>\s*([^<\s]+)\s*</BaseURL>")


# --- identifiers ------------------------------------------------------------------------------
def _path_of(value: str) -> str:
    text = value.strip()
    if "://" in text:
        return urlsplit(text).path
    return text


def normalize_subreddit(value: str) -> str:
    """``harbourtown``, ``r/harbourtown``, ``/r/harbourtown/`` or a subreddit URL -> the name."""
    path = _path_of(value).strip("/")
    name = path[2:] if path.lower().startswith("r/") else path
    name = name.split("/", 1)[0]
    if not SUB_RE.match(name):
        raise ValueError(f"not a subreddit name: {value!r} (examples: harbourtown, r/harbourtown, "
                         "https://old.reddit.com/r/harbourtown/)")
    return name


def normalize_user(value: str) -> str:
    """``alice``, ``u/alice``, ``/user/alice`` or a profile URL -> the user name."""
    path = _path_of(value).strip("/")
    for prefix in ("user/", "u/"):
        if path.lower().startswith(prefix):
            path = path[len(prefix):]
            break
    name = path.split("/", 1)[0]
    if not USER_RE.match(name):
        raise ValueError(f"not a Reddit user name: {value!r} (examples: alice_archives, "
                         "u/alice_archives, https://old.reddit.com/user/alice_archives)")
    return name


def parse_post_ref(value: str) -> str:
    """A post URL (``/comments/ID/…``, ``redd.it/ID``, ``/gallery/ID``), ``t3_ID`` or ``ID``
    -> the base36 id. Raises ValueError."""
    text = value.strip()
    candidate = text.removeprefix("t3_")
    if ID36_RE.match(candidate):
        return candidate
    if "://" in text:
        parts = urlsplit(text)
        if (parts.hostname or "").lower() == "redd.it":
            short = parts.path.strip("/")
            if ID36_RE.match(short):
                return short
        m = POST_PATH_RE.search(parts.path)
        if m:
            return m[1]
    raise ValueError(f"not a Reddit post: {value!r} (examples: https://old.reddit.com/r/"
                     "harbourtown/comments/1f6abcd/slug/, https://redd.it/1f6abcd, t3_1f6abcd)")


def fullname(kind: str, id36: str) -> str:
    return f"{kind}_{id36}"


def id36_of(name: str) -> str:
    """``t1_abc`` -> ``abc`` (an id36 stays as it is)."""
    return name.split("_", 1)[1] if re.match(r"^t\d_", name) else name


# --- URLs ----------------------------------------------------------------------------------------
def _url(base: str, path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base.rstrip('/')}{path}" + (f"?{query}" if query else "")


def listing_url(base: str, path: str, after: str | None = None, count: int = 0,
                limit: int = LISTING_MAX, sort: str | None = None) -> str:
    """One page of a Listing (``path`` without ``.json``), newest first, raw JSON."""
    return _url(base, f"{path}.json", sort=sort, limit=limit, after=after,
                count=count if after else None, raw_json=1)


def about_url(base: str, path: str) -> str:
    return _url(base, f"{path}/about.json", raw_json=1)


def comments_url(base: str, id36: str) -> str:
    """A post and its comment tree, in the default view a reader gets."""
    return _url(base, f"/comments/{id36}.json", raw_json=1)


def continue_url(base: str, link_id36: str, parent_id36: str) -> str:
    """Target of a "continue this thread" stub: the subtree under ``parent_id36``."""
    return _url(base, f"/comments/{link_id36}/_/{parent_id36}.json", raw_json=1)


def morechildren_urls(base: str, link_fullname: str, children: list[str]) -> list[str]:
    """``/api/morechildren`` requests for a "load more" stub, at most 100 ids each."""
    return [_url(base, "/api/morechildren.json", api_type="json", link_id=link_fullname,
                 children=",".join(children[i:i + MORECHILDREN_MAX]), raw_json=1)
            for i in range(0, len(children), MORECHILDREN_MAX)]


def origin_of(url: str) -> str:
    """Where posts captured at ``url`` are shown: the capture's own origin (old.reddit.com,
    www.reddit.com, a mirror, a test emulator); API-only hosts map to www.reddit.com."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return API_ONLY_HOSTS.get(host, f"{parts.scheme}://{parts.netloc}")


def page_url(origin: str, permalink: str) -> str:
    return urljoin(origin.rstrip("/") + "/", permalink) if permalink else origin


# --- times and strings ------------------------------------------------------------------------------
def parse_time(value: str) -> datetime:
    """ISO 8601 (no zone = UTC) -> aware UTC datetime. Raises ValueError."""
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def iso_utc(epoch: Any) -> str | None:
    """``created_utc`` (float epoch) -> ``2024-09-01T12:00:00Z``, milliseconds when fractional."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return None
    secs, ms = divmod(round(epoch * 1000), 1000)
    text = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms:03d}Z" if ms else f"{text}Z"


def unescape(value: Any) -> Any:
    """Undo the ``&amp;``/``&lt;``/``&gt;`` escaping Reddit applies without ``raw_json=1``."""
    if isinstance(value, str):
        return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    return value


# --- listings and trees --------------------------------------------------------------------------
def listing_children(value: Any) -> list[dict[str, Any]]:
    """The things of a Listing (``{"kind": "Listing", "data": {"children": [...]}}``)."""
    if not isinstance(value, dict) or value.get("kind") != "Listing":
        return []
    return [t for t in (value.get("data") or {}).get("children") or [] if isinstance(t, dict)]


def listing_after(value: Any) -> str | None:
    after = ((value or {}).get("data") or {}).get("after") if isinstance(value, dict) else None
    return after if isinstance(after, str) and after else None


def walk(things: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every thing of a comment forest, depth first: t1 comments and "more" stubs."""
    for thing in things:
        yield thing
        data = thing.get("data") or {}
        if thing.get("kind") == "t1" and isinstance(data.get("replies"), dict):
            yield from walk(listing_children(data["replies"]))


def is_continue_stub(data: dict[str, Any]) -> bool:
    """"continue this thread": no children to ask for, only a parent to open on its own."""
    return not data.get("children") and data.get("id") == "_"


def more_children(data: dict[str, Any]) -> list[str]:
    return [c for c in data.get("children") or [] if isinstance(c, str)]


def morechildren_things(body: Any) -> list[dict[str, Any]]:
    """The flat thing list of an ``/api/morechildren?api_type=json`` answer."""
    if not isinstance(body, dict):
        return []
    things = (((body.get("json") or {}).get("data") or {}).get("things")) or []
    return [t for t in things if isinstance(t, dict)]


def comment_response(body: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``/comments/ID.json`` -> (the t3 data, the comment forest's things)."""
    if not isinstance(body, list) or len(body) != 2:
        return None, []
    heads = [t.get("data") for t in listing_children(body[0]) if t.get("kind") == "t3"]
    head = heads[0] if heads and isinstance(heads[0], dict) else None
    return head, listing_children(body[1])


# --- things -> items ------------------------------------------------------------------------------
def _largest(meta: dict[str, Any]) -> str | None:
    source = meta.get("s") or {}
    return source.get("u") or source.get("gif") or source.get("mp4")


def _preview_source(data: dict[str, Any]) -> str | None:
    images = (data.get("preview") or {}).get("images") or []
    if images and isinstance(images[0], dict):
        return (images[0].get("source") or {}).get("url")
    return None


def reddit_video(data: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("secure_media", "media"):
        video = (data.get(key) or {}).get("reddit_video") if isinstance(data.get(key), dict) else None
        if isinstance(video, dict) and video.get("fallback_url"):
            return video
    return None


def is_image_post(data: dict[str, Any]) -> bool:
    url = data.get("url_overridden_by_dest") or data.get("url") or ""
    return (data.get("post_hint") == "image" or data.get("domain") == "i.redd.it"
            or urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS))


def post_media(data: dict[str, Any], source: tuple[str, str]) -> list[Media]:
    """Media rows of a submission: gallery images (with captions), the v.redd.it video
    (``fallback_url``) or the linked image. Link posts' preview images are not the post's
    media (they are fetched, not listed)."""
    post_id = data.get("name")
    out: list[Media] = []
    metadata = data.get("media_metadata") or {}
    for item in (data.get("gallery_data") or {}).get("items") or []:
        meta = metadata.get(item.get("media_id")) if isinstance(item, dict) else None
        if not isinstance(meta, dict) or meta.get("status") != "valid" or not _largest(meta):
            continue
        previews = [p.get("u") for p in meta.get("p") or [] if isinstance(p, dict) and p.get("u")]
        kind = "video" if meta.get("e") == "RedditVideo" else "image"
        out.append(Media(PLATFORM, _largest(meta) or "", post_id, kind, item.get("caption") or None,
                         previews[0] if previews else None, *source))
    video = reddit_video(data)
    if video:
        out.append(Media(PLATFORM, video["fallback_url"], post_id, "video", None,
                         _preview_source(data), *source))
    elif not out and is_image_post(data):
        url = data.get("url_overridden_by_dest") or data.get("url")
        if url:
            out.append(Media(PLATFORM, url, post_id, "image", None, _preview_source(data), *source))
    return out


def media_fetch_urls(data: dict[str, Any]) -> Iterator[str]:
    """Every image/video URL a submission shows (to capture): media, previews, thumbnail and
    the DASH/HLS playlists of a video."""
    for m in post_media(data, ("", "")):
        yield m.url
        if m.preview_url:
            yield m.preview_url
    for image in (data.get("preview") or {}).get("images") or []:
        if isinstance(image, dict) and (image.get("source") or {}).get("url"):
            yield image["source"]["url"]
    thumb = data.get("thumbnail")
    if isinstance(thumb, str) and thumb.startswith(("http://", "https://")):
        yield thumb
    video = reddit_video(data)
    if video:
        for key in ("dash_url", "hls_url"):
            if video.get(key):
                yield video[key]


def dash_segments(mpd: str, mpd_url: str) -> list[str]:
    """Absolute URLs of the ``<BaseURL>`` files of a DASH manifest (the audio track of a
    v.redd.it video lives only there)."""
    return list(dict.fromkeys(urljoin(mpd_url, m) for m in MPD_BASE_RE.findall(mpd)))


def post_item(data: dict[str, Any], origin: str, source: tuple[str, str]) -> Post | None:
    """A ``posts`` row from a submission (t3 data); text = title, blank line, selftext."""
    name = data.get("name") or (f"t3_{data['id']}" if data.get("id") else None)
    if not isinstance(name, str):
        return None
    title, body = data.get("title") or "", data.get("selftext") or ""
    crosspost = data.get("crosspost_parent")
    return Post(
        platform=PLATFORM, post_id=name, url=page_url(origin, data.get("permalink") or ""),
        author=data.get("author"), author_id=data.get("author_fullname"),
        created_at=iso_utc(data.get("created_utc")),
        text=f"{title}\n\n{body}" if body else title,
        content_html=data.get("selftext_html"),
        repost_of_id=crosspost if isinstance(crosspost, str) else None,
        reply_count=data.get("num_comments"), like_count=data.get("score"),
        media=[m.url for m in post_media(data, source)],
        raw=data, source_url=source[0], source_timestamp=source[1],
    )


def comment_item(data: dict[str, Any], origin: str, source: tuple[str, str]) -> Post | None:
    """A ``posts`` row from a comment (t1 data); raw = the comment without its replies (they
    are rows of their own)."""
    cid = data.get("id")
    name = data.get("name") or (f"t1_{cid}" if cid else None)
    if not isinstance(name, str):
        return None
    permalink = data.get("permalink")
    if not permalink and isinstance(data.get("link_id"), str) and cid:
        permalink = f"/comments/{id36_of(data['link_id'])}/_/{cid}/"
    return Post(
        platform=PLATFORM, post_id=name, url=page_url(origin, permalink or ""),
        author=data.get("author"), author_id=data.get("author_fullname"),
        created_at=iso_utc(data.get("created_utc")), text=data.get("body") or "",
        content_html=data.get("body_html"), reply_to_id=data.get("parent_id"),
        like_count=data.get("score"),
        raw={k: v for k, v in data.items() if k != "replies"},
        source_url=source[0], source_timestamp=source[1],
    )


def account_item(data: dict[str, Any], origin: str, source: tuple[str, str]) -> Account | None:
    """An ``accounts`` row from ``/user/NAME/about.json`` (t2 data); None for suspended
    accounts, which have no id."""
    uid, name = data.get("id"), data.get("name")
    if not isinstance(uid, str) or not isinstance(name, str):
        return None
    profile = data.get("subreddit") if isinstance(data.get("subreddit"), dict) else {}
    return Account(
        platform=PLATFORM, account_id=f"t2_{uid}", handle=name,
        display_name=profile.get("title") or None,
        url=page_url(origin, f"/user/{name}/"), created_at=iso_utc(data.get("created_utc")),
        description=profile.get("public_description") or None,
        avatar_url=data.get("icon_img") or None, raw=data,
        source_url=source[0], source_timestamp=source[1],
    )


def error_reason(status: int, body: Any) -> str:
    """What an error answer says happened: ``private``, ``banned``, ``quarantined``... (the
    ``reason`` of Reddit's error JSON), else ``not_found``/``forbidden``/``http_<status>``."""
    if isinstance(body, dict) and isinstance(body.get("reason"), str) and body["reason"]:
        return body["reason"]
    return {404: "not_found", 403: "forbidden"}.get(status, f"http_{status}")
