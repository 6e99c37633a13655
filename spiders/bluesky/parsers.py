"""Pure functions over AT Protocol / Bluesky JSON (PLATFORMS.md §3): no Scrapy, no I/O.

Used by the spider (navigation: which URLs to fetch next) and by ``extract.py`` (items), so the
same code runs live and when re-extracting old WARCs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from crawler.items import Account, Media, Post

PLATFORM = "bluesky"
POST = "app.bsky.feed.post"
REASON_REPOST = "app.bsky.feed.defs#reasonRepost"
BSKY_WEB = "https://bsky.app"
# Hosts of Bluesky's own AppView/PDS network; captures from any other host (a mirror, a fork,
# a test emulator) get page URLs on their own origin.
BSKY_HOST_SUFFIXES = ("bsky.app", "bsky.network", "bsky.social")

HANDLE_RE = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]"
                       r"([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
DID_RE = re.compile(r"^did:(plc|web):[a-zA-Z0-9._:%-]+$")
AT_POST_RE = re.compile(r"^at://([^/]+)/app\.bsky\.feed\.post/([a-zA-Z0-9._~:-]+)$")
WEB_POST_RE = re.compile(r"^https?://[^/]+/profile/([^/]+)/post/([a-zA-Z0-9._~:-]+)/?$")


# --- identifiers -------------------------------------------------------------------------------
def normalize_actor(value: str) -> str:
    """A handle (``@alice.bsky.social`` or ``alice.bsky.social``) or a DID; raises ValueError."""
    actor = value.strip().removeprefix("@")
    if DID_RE.match(actor):
        return actor
    if HANDLE_RE.match(actor):
        return actor.lower()
    raise ValueError(f"not a Bluesky handle or DID: {value!r} (examples: alice.bsky.social, "
                     "did:plc:ewvi7nxzyoun6zhxrhs64oiz)")


def parse_post_ref(value: str) -> tuple[str, str]:
    """``at://REPO/app.bsky.feed.post/RKEY`` or ``https://bsky.app/profile/REPO/post/RKEY``
    -> (repo, rkey); repo is a handle or a DID. Raises ValueError."""
    text = value.strip()
    m = AT_POST_RE.match(text) or WEB_POST_RE.match(text)
    if not m:
        raise ValueError(f"not a Bluesky post: {value!r} (examples: at://did:plc:abc/"
                         "app.bsky.feed.post/3l6oveex3ii2l, https://bsky.app/profile/alice."
                         "bsky.social/post/3l6oveex3ii2l)")
    return normalize_actor(m[1]), m[2]


def post_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST}/{rkey}"


def rkey_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def web_base_for(url: str) -> str:
    """The bsky.app-style web origin for posts captured from the API at ``url``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if any(host == s or host.endswith("." + s) for s in BSKY_HOST_SUFFIXES):
        return BSKY_WEB
    return f"{parts.scheme}://{parts.netloc}"


def post_page_url(web: str, handle: str, uri: str) -> str:
    return f"{web.rstrip('/')}/profile/{handle}/post/{rkey_of(uri)}"


def profile_page_url(web: str, handle: str) -> str:
    return f"{web.rstrip('/')}/profile/{handle}"


def pds_from_did_doc(doc: Any) -> str | None:
    """``service[#atproto_pds].serviceEndpoint`` of a DID document."""
    if not isinstance(doc, dict):
        return None
    for service in doc.get("service") or []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            endpoint = service.get("serviceEndpoint")
            return endpoint.rstrip("/") if isinstance(endpoint, str) else None
    return None


def did_doc_url(plc: str, did: str) -> str:
    """did:plc -> the PLC directory; did:web -> ``https://HOST/.well-known/did.json``."""
    if did.startswith("did:web:"):
        return f"https://{did.removeprefix('did:web:').replace('%3A', ':')}/.well-known/did.json"
    return f"{plc.rstrip('/')}/{did}"


# --- times ---------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (no zone = UTC); None if unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def iso_utc(value: Any) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (milliseconds kept when present); None if unparseable."""
    dt = parse_time(value)
    if dt is None:
        return None
    frac = f".{dt.microsecond // 1000:03d}" if dt.microsecond else ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def feed_item_time(item: dict[str, Any]) -> datetime | None:
    """When a feed item entered the feed: the repost time for reposts, else the post's time."""
    reason = item.get("reason") or {}
    if reason.get("$type") == REASON_REPOST:
        return parse_time(reason.get("indexedAt"))
    return parse_time(((item.get("post") or {}).get("record") or {}).get("createdAt"))


# --- views -> items -------------------------------------------------------------------------------
def _images(view: dict[str, Any]) -> list[dict[str, Any]]:
    kind = view.get("$type", "")
    if kind == "app.bsky.embed.images#view":
        return [i for i in view.get("images") or [] if isinstance(i, dict)]
    if kind == "app.bsky.embed.recordWithMedia#view":
        return _images(view.get("media") or {})
    return []


def _video(view: dict[str, Any]) -> dict[str, Any] | None:
    kind = view.get("$type", "")
    if kind == "app.bsky.embed.video#view":
        return view
    if kind == "app.bsky.embed.recordWithMedia#view":
        return _video(view.get("media") or {})
    return None


def embed_media(post: dict[str, Any], source: tuple[str, str]) -> list[Media]:
    """Media rows for a postView's own embed (images, video); not a quoted post's media."""
    uri = post.get("uri")
    view = post.get("embed") or {}
    out = [Media(PLATFORM, img["fullsize"], uri, "image", img.get("alt") or None,
                 img.get("thumb"), *source)
           for img in _images(view) if img.get("fullsize")]
    video = _video(view)
    if video and video.get("playlist"):
        out.append(Media(PLATFORM, video["playlist"], uri, "video", video.get("alt") or None,
                         video.get("thumbnail"), *source))
    return out


def cdn_urls(post: dict[str, Any]) -> Iterator[str]:
    """Every image/video URL a postView shows, quoted posts' media included (to fetch)."""
    view = post.get("embed") or {}
    for img in _images(view):
        yield from (u for u in (img.get("thumb"), img.get("fullsize")) if u)
    video = _video(view)
    if video:
        yield from (u for u in (video.get("playlist"), video.get("thumbnail")) if u)
    external = view.get("external") or {}
    if external.get("thumb"):
        yield external["thumb"]
    quoted = view.get("record") if isinstance(view.get("record"), dict) else {}
    quoted = quoted.get("record", quoted)  # recordWithMedia#view nests the viewRecord once more
    for inner in quoted.get("embeds") or [] if isinstance(quoted, dict) else []:
        yield from cdn_urls({"embed": inner})


def _quote_of(record: dict[str, Any]) -> str | None:
    embed = record.get("embed") or {}
    kind = embed.get("$type", "")
    if kind == "app.bsky.embed.record":
        return (embed.get("record") or {}).get("uri")
    if kind == "app.bsky.embed.recordWithMedia":
        return ((embed.get("record") or {}).get("record") or {}).get("uri")
    return None


def post_item(post: dict[str, Any], web: str, source: tuple[str, str]) -> Post | None:
    """A ``posts`` row from a postView; raw = the postView JSON."""
    uri, record = post.get("uri"), post.get("record")
    author = post.get("author") or {}
    if not isinstance(uri, str) or not isinstance(record, dict):
        return None
    handle = author.get("handle")
    langs = record.get("langs") or []
    return Post(
        platform=PLATFORM, post_id=uri,
        url=post_page_url(web, handle or author.get("did") or "", uri),
        author=handle, author_id=author.get("did"),
        created_at=iso_utc(record.get("createdAt")),
        text=record.get("text") or "",
        reply_to_id=((record.get("reply") or {}).get("parent") or {}).get("uri"),
        quote_of_id=_quote_of(record),
        reply_count=post.get("replyCount"), repost_count=post.get("repostCount"),
        like_count=post.get("likeCount"),
        lang=langs[0] if langs and isinstance(langs[0], str) else None,
        media=[m.url for m in embed_media(post, source)],
        raw=post, source_url=source[0], source_timestamp=source[1],
    )


def repost_item(item: dict[str, Any], web: str, source: tuple[str, str]) -> Post | None:
    """A ``posts`` row for a repost (feedViewPost with reasonRepost and a repost URI).

    post_id = the repost record's AT-URI, author = the reposter, repost_of_id = the reposted
    post, created_at = the AppView's indexedAt of the repost, url = the reposted post's page.
    """
    reason, post = item.get("reason") or {}, item.get("post") or {}
    if reason.get("$type") != REASON_REPOST or not reason.get("uri") or not post.get("uri"):
        return None
    by = reason.get("by") or {}
    author = post.get("author") or {}
    return Post(
        platform=PLATFORM, post_id=reason["uri"],
        url=post_page_url(web, author.get("handle") or author.get("did") or "", post["uri"]),
        author=by.get("handle"), author_id=by.get("did"),
        created_at=iso_utc(reason.get("indexedAt")), text="", repost_of_id=post["uri"],
        raw=item, source_url=source[0], source_timestamp=source[1],
    )


def thread_posts(node: Any) -> Iterator[dict[str, Any]]:
    """Every postView in a threadViewPost tree (parents, then the post, then replies)."""
    if not isinstance(node, dict) or not isinstance(node.get("post"), dict):
        return  # notFoundPost / blockedPost: nothing to keep but the captured JSON
    yield from thread_posts(node.get("parent"))
    yield node["post"]
    for reply in node.get("replies") or []:
        yield from _descendants(reply)


def _descendants(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict) and isinstance(node.get("post"), dict):
        yield node["post"]
        for reply in node.get("replies") or []:
            yield from _descendants(reply)


def truncated_nodes(node: Any) -> Iterator[str]:
    """URIs of thread nodes with replies the AppView did not include (depth cut): re-query."""
    if not isinstance(node, dict) or not isinstance(node.get("post"), dict):
        return
    if "replies" not in node and (node["post"].get("replyCount") or 0) > 0:
        yield node["post"]["uri"]
    for reply in node.get("replies") or []:
        yield from truncated_nodes(reply)


def account_item(profile: dict[str, Any], web: str, source: tuple[str, str]) -> Account | None:
    """An ``accounts`` row from a profileViewDetailed (getProfile)."""
    did = profile.get("did")
    if not isinstance(did, str):
        return None
    handle = profile.get("handle")
    return Account(
        platform=PLATFORM, account_id=did, handle=handle,
        display_name=profile.get("displayName"),
        url=profile_page_url(web, handle or did),
        created_at=iso_utc(profile.get("createdAt")),
        description=profile.get("description"),
        followers_count=profile.get("followersCount"),
        following_count=profile.get("followsCount"),
        posts_count=profile.get("postsCount"),
        avatar_url=profile.get("avatar"), header_url=profile.get("banner"),
        raw=profile, source_url=source[0], source_timestamp=source[1],
    )


# --- records -----------------------------------------------------------------------------------
def blob_cids(value: Any) -> Iterator[str]:
    """CIDs of every blob ref (``{"$type": "blob", "ref": {"$link": CID}}``) in a record."""
    if isinstance(value, dict):
        if value.get("$type") == "blob":
            link = (value.get("ref") or {}).get("$link")
            if isinstance(link, str):
                yield link
            return
        for v in value.values():
            yield from blob_cids(v)
    elif isinstance(value, list):
        for v in value:
            yield from blob_cids(v)


def xrpc_error(body: Any) -> str | None:
    """The XRPC error name of an error body (``{"error": NAME, "message": ...}``).

    The AppView reports unknown actors as a generic ``InvalidRequest``; that one case gets a
    name of its own so a summary says what happened."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    if body["error"] == "InvalidRequest" and body.get("message") == "Profile not found":
        return "ProfileNotFound"
    return body["error"]
