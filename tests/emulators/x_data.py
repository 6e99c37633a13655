"""The X emulator's data: accounts and posts, rendered as X's web GraphQL answers.

``alice`` has ``TIMELINE_SIZE`` entries, newest first: plain posts, photos, a long post
(``note_tweet``), a video (three mp4 bitrates and an HLS playlist), a repost and a quote of
``bob``'s posts (the quote wrapped in ``TweetWithVisibilityResults``), a deleted post
(``TweetTombstone``) and a withheld one; post ``ROOT_ID`` has a thread (alice's reply and bob's
reply), served by ``TweetDetail``. Every created_at is fixed, so expectations are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

USERS = {
    "alice": {"rest_id": "1001", "name": "Alice Archive", "description": "I post things"},
    "bob": {"rest_id": "1002", "name": "Bob", "description": "Reposted"},
}
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
ROOT_ID = "2001"
LONG_TEXT = ("This is a long post. " * 30).strip()
DELETED_ID = "2090"
WITHHELD_ID = "2091"
PAGE_SIZE = 5


@dataclass
class XPost:
    id: str
    author: str
    text: str
    minutes: int  # after T0
    reply_to: str | None = None
    repost_of: str | None = None
    quote_of: str | None = None
    photos: list[str] = field(default_factory=list)  # media keys
    video: str | None = None
    hls_only: bool = False  # the video offers only its HLS playlist (no mp4 variant)
    long: bool = False
    visibility_wrapped: bool = False
    lang: str = "en"

    @property
    def created(self) -> str:
        return (T0 + timedelta(minutes=self.minutes)).strftime("%a %b %d %H:%M:%S +0000 %Y")

    @property
    def created_iso(self) -> str:
        return (T0 + timedelta(minutes=self.minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_posts() -> dict[str, XPost]:
    posts = [
        XPost("3001", "bob", "Bob's original, reposted by alice", 1),
        XPost("3002", "bob", "Bob's post that alice quotes", 2),
        XPost(ROOT_ID, "alice", "Root of a thread, with two photos", 10, photos=["P1", "P2"]),
        XPost("2002", "alice", LONG_TEXT, 11, long=True),
        XPost("2003", "alice", "A video", 12, video="V1"),
        XPost("2007", "alice", "A video offered only as HLS", 17, video="V2", hls_only=True),
        XPost("2004", "alice", "RT @bob: Bob's original, reposted by alice", 13, repost_of="3001"),
        XPost("2005", "alice", "Quoting bob", 14, quote_of="3002", visibility_wrapped=True),
        XPost("2006", "alice", "Replying to my own thread", 15, reply_to=ROOT_ID),
        XPost("3003", "bob", "Bob replies in the thread", 16, reply_to=ROOT_ID, lang="de"),
    ]
    posts += [XPost(str(2010 + i), "alice", f"Filler post number {i} about archive work", 20 + i)
              for i in range(12)]
    return {p.id: p for p in posts}


POSTS = build_posts()


def timeline_ids(handle: str) -> list[str]:
    """The profile timeline (newest first): posts, reposts and quotes, not replies of others;
    the deleted and withheld entries sit in the middle."""
    ids = [p.id for p in sorted(POSTS.values(), key=lambda p: -p.minutes)
           if p.author == handle and p.id != "2006"]
    if handle == "alice":
        ids.insert(4, DELETED_ID)
        ids.insert(7, WITHHELD_ID)
    return ids


class Render:
    """GraphQL JSON for the posts, with media URLs on the media and video hosts."""

    def __init__(self, media_base: str, video_base: str) -> None:
        self.media_base = media_base
        self.video_base = video_base

    def user(self, handle: str) -> dict[str, Any]:
        u = USERS[handle]
        return {
            "__typename": "User", "id": f"VXNlcjo{u['rest_id']}", "rest_id": u["rest_id"],
            "core": {"screen_name": handle, "name": u["name"],
                     "created_at": "Tue Apr 21 06:49:15 +0000 2009"},
            "avatar": {"image_url": f"{self.media_base}/profile_images/{handle}_normal.jpg"},
            "legacy": {"screen_name": handle, "name": u["name"], "description": u["description"],
                       "followers_count": 10, "friends_count": 5,
                       "statuses_count": len(timeline_ids(handle)),
                       "created_at": "Tue Apr 21 06:49:15 +0000 2009",
                       "profile_image_url_https":
                           f"{self.media_base}/profile_images/{handle}_normal.jpg"},
        }

    def photo_url(self, key: str) -> str:
        return f"{self.media_base}/media/{key}.jpg"

    def mp4_url(self, key: str, bitrate: int) -> str:
        return f"{self.video_base}/ext_tw_video/{key}/pu/vid/{bitrate // 1000}k/{key}.mp4"

    def media(self, p: XPost) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"type": "photo", "id_str": k, "media_key": f"3_{k}", "ext_alt_text": f"alt {k}",
             "media_url_https": self.photo_url(k)} for k in p.photos]
        if p.video:
            k = p.video
            out.append({
                "type": "video", "id_str": k, "media_key": f"7_{k}",
                "media_url_https": f"{self.media_base}/ext_tw_video_thumb/{k}/pu/img/{k}.jpg",
                "video_info": {"duration_millis": 5000, "variants": [
                    {"content_type": "application/x-mpegURL",
                     "url": f"{self.video_base}/ext_tw_video/{k}/pu/pl/{k}.m3u8"},
                    *({"bitrate": b, "content_type": "video/mp4", "url": self.mp4_url(k, b)}
                      for b in (() if p.hls_only else (256000, 2176000, 832000))),
                ]},
            })
        return out

    def tweet(self, post_id: str) -> dict[str, Any]:
        if post_id == DELETED_ID:
            return {"__typename": "TweetTombstone", "tombstone": {"__typename": "TextTombstone",
                    "text": {"text": "This Post was deleted by the Post author. Learn more"}}}
        if post_id == WITHHELD_ID:
            return {"__typename": "TweetTombstone", "tombstone": {"__typename": "TextTombstone",
                    "text": {"text": "This Post from @alice has been withheld in Germany in "
                                     "response to a legal demand. Learn more"}}}
        p = POSTS[post_id]
        legacy: dict[str, Any] = {
            "id_str": p.id, "user_id_str": USERS[p.author]["rest_id"], "created_at": p.created,
            "full_text": p.text[:275] + "…" if p.long else p.text, "lang": p.lang,
            "reply_count": 1 if p.id == ROOT_ID else 0, "retweet_count": int(p.id) % 7,
            "favorite_count": int(p.id) % 11, "quote_count": 0,
            "conversation_id_str": p.reply_to or p.id,
            "entities": {"media": self.media(p)[:1]} if p.photos else {},
        }
        media = self.media(p)
        if media:
            legacy["extended_entities"] = {"media": media}
        if p.reply_to:
            legacy["in_reply_to_status_id_str"] = p.reply_to
            legacy["in_reply_to_screen_name"] = POSTS[p.reply_to].author
        if p.quote_of:
            legacy["quoted_status_id_str"] = p.quote_of
            legacy["is_quote_status"] = True
        result: dict[str, Any] = {
            "__typename": "Tweet", "rest_id": p.id,
            "core": {"user_results": {"result": self.user(p.author)}},
            "legacy": legacy,
        }
        if p.long:
            result["note_tweet"] = {"is_expandable": True, "note_tweet_results": {
                "result": {"id": f"Tm90ZVR3ZWV0O{p.id}", "text": p.text}}}
        if p.repost_of:
            legacy["retweeted_status_result"] = {"result": self.tweet(p.repost_of)}
        if p.quote_of:
            result["quoted_status_result"] = {"result": self.tweet(p.quote_of)}
        if p.visibility_wrapped:
            return {"__typename": "TweetWithVisibilityResults", "tweet": result,
                    "tweetInterstitial": {"__typename": "ContextualTweetInterstitial"}}
        return result

    def entry(self, post_id: str) -> dict[str, Any]:
        return {"entryId": f"tweet-{post_id}", "sortIndex": post_id, "content": {
            "entryType": "TimelineTimelineItem", "__typename": "TimelineTimelineItem",
            "itemContent": {"itemType": "TimelineTweet", "__typename": "TimelineTweet",
                            "tweet_results": {"result": self.tweet(post_id)}}}}

    @staticmethod
    def cursor(value: str, kind: str) -> dict[str, Any]:
        return {"entryId": f"cursor-{kind.lower()}-{value}", "sortIndex": "0", "content": {
            "entryType": "TimelineTimelineCursor", "__typename": "TimelineTimelineCursor",
            "value": value, "cursorType": kind}}

    def page(self, ids: list[str], cursor: str | None) -> dict[str, Any]:
        """One page of a timeline: ``PAGE_SIZE`` entries after ``cursor`` and a Bottom cursor
        (an empty page ends it, as on X)."""
        start = int(cursor.split("-")[-1]) if cursor else 0
        chunk = ids[start:start + PAGE_SIZE]
        entries = [self.entry(i) for i in chunk]
        entries.append(self.cursor(f"DAABCgABF-{start + len(chunk)}", "Bottom"))
        entries.insert(0, self.cursor("DAABCgABF-top", "Top"))
        return {"instructions": [{"type": "TimelineClearCache"},
                                 {"type": "TimelineAddEntries", "entries": entries}]}

    def detail(self, focal: str) -> dict[str, Any]:
        """``TweetDetail``: the focal post, then each reply as a conversation module."""
        entries = [self.entry(focal)]
        for p in sorted(POSTS.values(), key=lambda p: p.minutes):
            if p.reply_to == focal:
                entries.append({"entryId": f"conversationthread-{p.id}", "sortIndex": p.id,
                                "content": {"entryType": "TimelineTimelineModule",
                                            "__typename": "TimelineTimelineModule",
                                            "items": [{"entryId": f"conversationthread-{p.id}"
                                                                  f"-tweet-{p.id}",
                                                       "item": self.entry(p.id)["content"]}]}})
        return {"instructions": [{"type": "TimelineAddEntries", "entries": entries}]}
