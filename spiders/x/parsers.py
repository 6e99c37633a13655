"""X's web GraphQL answers → plain dicts (pure functions, no Scrapy).

Shapes, as the x.com web app receives them (and Zeeschuimer/twscrape read them):
``UserByScreenName``: ``data.user.result`` (a ``User``); ``UserTweets`` (and
``UserTweetsAndReplies``, ``UserMedia``): ``data.user.result.timeline_v2.timeline`` (or
``.timeline.timeline``); ``TweetDetail``: ``data.threaded_conversation_with_injections_v2``;
``SearchTimeline``: ``data.search_by_raw_query.search_timeline.timeline``. A timeline has
``instructions[]``; ``TimelineAddEntries`` holds ``entries[]`` whose ``content`` is a
``TimelineTimelineItem`` (``itemContent.tweet_results.result``), a ``TimelineTimelineModule``
(``items[].item.itemContent.tweet_results.result``: a conversation) or a
``TimelineTimelineCursor``; ``TimelinePinEntry`` holds one ``entry``.

A tweet result is a ``Tweet``, a ``TweetWithVisibilityResults`` (``.tweet`` is the Tweet), a
``TweetTombstone`` (deleted, or hidden: ``tombstone.text.text``) or a ``TweetUnavailable``
(``reason``: ``Suspended``, ``Protected``, withheld...). A Tweet's ``legacy`` holds the classic
v1.1 fields; ``note_tweet.note_tweet_results.result.text`` is the whole text of a long post;
``retweeted_status_result`` / ``quoted_status_result`` hold the reposted / quoted tweet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

OPERATIONS = ("UserByScreenName", "UserTweets", "UserTweetsAndReplies", "UserMedia",
              "TweetDetail", "TweetResultByRestId", "SearchTimeline")


def x_time(value: str | None) -> str | None:
    """``Wed Oct 10 20:19:24 +0000 2018`` → ``2018-10-10T20:19:24Z``."""
    if not value:
        return None
    try:
        dt = datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def timeline_of(data: Any) -> dict[str, Any] | None:
    """The ``{instructions: [...]}`` object of any timeline answer, or None."""
    d = _get(data, "data")
    for path in (("user", "result", "timeline_v2", "timeline"),
                 ("user", "result", "timeline", "timeline"),
                 ("threaded_conversation_with_injections_v2",),
                 ("search_by_raw_query", "search_timeline", "timeline")):
        t = _get(d, *path)
        if isinstance(t, dict) and isinstance(t.get("instructions"), list):
            return t
    return None


def _entry_results(entry: dict[str, Any]) -> Iterator[dict[str, Any]]:
    content = entry.get("content") or {}
    result = _get(content, "itemContent", "tweet_results", "result")
    if isinstance(result, dict):
        yield result
    for item in content.get("items") or []:
        result = _get(item, "item", "itemContent", "tweet_results", "result")
        if isinstance(result, dict):
            yield result


def timeline_results(timeline: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every tweet result of a timeline, in order (pinned entries included)."""
    for ins in timeline.get("instructions") or []:
        if not isinstance(ins, dict):
            continue
        if ins.get("type") == "TimelineAddEntries" or "entries" in ins:
            for entry in ins.get("entries") or []:
                if isinstance(entry, dict):
                    yield from _entry_results(entry)
        elif isinstance(ins.get("entry"), dict):  # TimelinePinEntry, TimelineReplaceEntry
            yield from _entry_results(ins["entry"])


def bottom_cursor(timeline: dict[str, Any]) -> str | None:
    for ins in timeline.get("instructions") or []:
        for entry in (ins or {}).get("entries") or []:
            content = (entry or {}).get("content") or {}
            if content.get("cursorType") == "Bottom":
                return content.get("value")
    return None


def user_fields(user: dict[str, Any]) -> dict[str, Any] | None:
    """A ``User`` result as account fields (legacy fields, or the newer ``core`` ones)."""
    if not isinstance(user, dict) or user.get("__typename") not in (None, "User"):
        return None
    legacy = user.get("legacy") or {}
    core = user.get("core") or {}
    handle = core.get("screen_name") or legacy.get("screen_name")
    if not user.get("rest_id") or not handle:
        return None
    return {
        "account_id": str(user["rest_id"]), "handle": handle,
        "display_name": core.get("name") or legacy.get("name"),
        "created_at": x_time(core.get("created_at") or legacy.get("created_at")),
        "description": legacy.get("description"),
        "followers_count": legacy.get("followers_count"),
        "following_count": legacy.get("friends_count"),
        "posts_count": legacy.get("statuses_count"),
        "avatar_url": _get(user, "avatar", "image_url") or legacy.get("profile_image_url_https"),
        "header_url": legacy.get("profile_banner_url"),
    }


def unwrap(result: dict[str, Any]) -> dict[str, Any]:
    """A ``TweetWithVisibilityResults`` → its Tweet; anything else as is."""
    if result.get("__typename") == "TweetWithVisibilityResults" and isinstance(
            result.get("tweet"), dict):
        return result["tweet"]
    return result


def unavailable(result: dict[str, Any]) -> tuple[str, str] | None:
    """``(outcome, reason)`` for a tombstone or an unavailable tweet, else None.

    ``missing`` for deleted posts, ``blocked`` for withheld, protected or suspended ones."""
    kind = result.get("__typename")
    if kind == "TweetTombstone":
        text = (_get(result, "tombstone", "text", "text") or "").lower()
        if "deleted" in text:
            return "missing", "deleted"
        return "blocked", "withheld" if "withheld" in text else "tombstone"
    if kind == "TweetUnavailable":
        reason = str(result.get("reason") or "unavailable").lower()
        return "blocked", reason
    return None


def best_mp4(media: dict[str, Any]) -> str | None:
    """The highest-bitrate mp4 variant of a video or GIF (None when only HLS is offered)."""
    variants = [v for v in _get(media, "video_info", "variants") or []
                if isinstance(v, dict) and v.get("content_type") == "video/mp4" and v.get("url")]
    if not variants:
        return None
    return max(variants, key=lambda v: int(v.get("bitrate") or 0))["url"]


def hls_playlist(media: dict[str, Any]) -> str | None:
    for v in _get(media, "video_info", "variants") or []:
        if isinstance(v, dict) and v.get("content_type") == "application/x-mpegURL":
            return v.get("url")
    return None


def orig_image(url: str) -> str:
    """``.../media/ABC.jpg`` → ``.../media/ABC.jpg?name=orig`` (the original upload)."""
    return f"{url.split('?', 1)[0]}?name=orig"


def media_of(legacy: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{url, media_type, preview_url, description}]``: photos at ``name=orig``, videos and
    GIFs as their best mp4 (or HLS playlist when no mp4 is offered)."""
    out = []
    entities = legacy.get("extended_entities") or legacy.get("entities") or {}
    for m in entities.get("media") or []:
        if not isinstance(m, dict) or not m.get("media_url_https"):
            continue
        kind = m.get("type") or "photo"
        if kind == "photo":
            url = orig_image(m["media_url_https"])
            preview = None
        else:
            url = best_mp4(m) or hls_playlist(m)
            preview = m["media_url_https"]
        if url:
            out.append({"url": url, "media_type": "image" if kind == "photo" else kind,
                        "preview_url": preview, "description": m.get("ext_alt_text")})
    return out


def tweet_fields(tweet: dict[str, Any]) -> dict[str, Any] | None:
    """A ``Tweet`` result as post fields, with its author's account fields under ``author``.

    The reposted and quoted tweets are returned under ``nested`` (to be stored as posts too)."""
    tweet = unwrap(tweet)
    legacy = tweet.get("legacy")
    if tweet.get("__typename") not in (None, "Tweet") or not isinstance(legacy, dict):
        return None
    post_id = str(tweet.get("rest_id") or legacy.get("id_str") or "")
    if not post_id:
        return None
    author = user_fields(_get(tweet, "core", "user_results", "result") or {})
    note = _get(tweet, "note_tweet", "note_tweet_results", "result", "text")
    retweeted = _get(tweet, "retweeted_status_result", "result") or _get(
        legacy, "retweeted_status_result", "result")
    quoted = _get(tweet, "quoted_status_result", "result")
    nested = [r for r in (retweeted, quoted) if isinstance(r, dict)]
    repost_of = None
    if isinstance(retweeted, dict):
        repost_of = str(unwrap(retweeted).get("rest_id") or "") or None
    quote_of = legacy.get("quoted_status_id_str") or (
        str(unwrap(quoted).get("rest_id") or "") or None if isinstance(quoted, dict) else None)
    return {
        "post_id": post_id,
        "author": author["handle"] if author else None,
        "author_id": author["account_id"] if author else legacy.get("user_id_str"),
        "author_account": author,
        "created_at": x_time(legacy.get("created_at")),
        "text": note or legacy.get("full_text") or "",
        "reply_to_id": legacy.get("in_reply_to_status_id_str"),
        "repost_of_id": repost_of,
        "quote_of_id": quote_of,
        "reply_count": legacy.get("reply_count"),
        "repost_count": legacy.get("retweet_count"),
        "like_count": legacy.get("favorite_count"),
        "lang": legacy.get("lang"),
        "media": media_of(legacy),
        "nested": nested,
        "long": note is not None,
    }
