"""JSON/HTML renderers for the Reddit emulator: t3/t1/t5/t2 things, Listings and comment trees
with both kinds of "more" stubs (PLATFORMS.md §5.3-5.5, §5.8)."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.emulators.reddit_data import Comment, Post, RedditDataset

NESTED_CAP = 8  # replies shown per comment below top level before a "load more" stub
MAX_DEPTH = 9  # deepest level shown by default (``depth=10`` → levels 0-9); deeper: "continue this thread"


def listing(children: list[dict[str, Any]], after: str | None = None, before: str | None = None,
            dist: int | None = None) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"after": after, "dist": dist, "modhash": "",
                                        "geo_filter": "", "children": children, "before": before}}


def md_html(text: str) -> str:
    """Reddit's rendered markdown (kept minimal: paragraphs, escaped)."""
    paras = "".join(f"<p>{html.escape(p, quote=False)}</p>\n" for p in text.split("\n\n") if p)
    return f'<!-- SC_OFF --><div class="md">{paras}</div><!-- SC_ON -->'


def _sig(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def preview_url(base: str, key: str) -> str:
    return f"{base}/preview/{key}.png?width=640&format=png&auto=webp&s={_sig(key)}"


def post_json(p: Post, base: str, ds: RedditDataset) -> dict[str, Any]:
    sub = ds.sub(p.subreddit)
    assert sub is not None
    author = ds.user(p.author)
    url = base + p.permalink
    domain = f"self.{p.subreddit}"
    extra: dict[str, Any] = {"is_video": False, "media": None, "secure_media": None}
    if p.kind == "image" and p.media_key:
        url, domain = f"{base}/i/{p.media_key}.png", "i.redd.it"
        extra["preview"] = {"images": [{
            "source": {"url": preview_url(base, p.media_key), "width": 48, "height": 36},
            "resolutions": [{"url": preview_url(base, p.media_key).replace("640", "108"),
                             "width": 108, "height": 81}],
            "variants": {}, "id": p.media_key}], "enabled": True}
    elif p.kind == "link" and p.link_url:
        url, domain = p.link_url, "example.org"
    elif p.kind == "gallery":
        url, domain = f"{base}/gallery/{p.id}", "reddit.com"
        extra["is_gallery"] = True
        extra["gallery_data"] = {"items": [{"media_id": mid, "id": 1000 + n, "caption": cap}
                                           for n, (mid, cap) in enumerate(p.gallery)]}
        extra["media_metadata"] = {mid: {
            "status": "valid", "e": "Image", "m": "image/png", "id": mid,
            "p": [{"y": 81, "x": 108, "u": preview_url(base, mid).replace("640", "108")}],
            "s": {"y": 36, "x": 48, "u": preview_url(base, mid)}} for mid, _ in p.gallery}
    elif p.kind == "video" and p.media_key:
        v = f"{base}/v/{p.media_key}"
        url, domain = v, "v.redd.it"
        video = {"reddit_video": {
            "bitrate_kbps": 1200, "fallback_url": f"{v}/DASH_480.mp4?source=fallback",
            "has_audio": True, "height": 480, "width": 854, "duration": 2,
            "scrubber_media_url": f"{v}/DASH_96.mp4", "dash_url": f"{v}/DASHPlaylist.mpd?a=1&v=1",
            "hls_url": f"{v}/HLSPlaylist.m3u8?a=1&v=1", "is_gif": False,
            "transcoding_status": "completed"}}
        extra.update(is_video=True, media=video, secure_media=video)
    return {
        "id": p.id, "name": p.fullname, "title": p.title, "author": p.author,
        "author_fullname": f"t2_{author.id}" if author else None,
        "subreddit": sub.name, "subreddit_id": f"t5_{sub.id}",
        "subreddit_name_prefixed": f"r/{sub.name}", "subreddit_subscribers": sub.subscribers,
        "created": p.created_utc, "created_utc": p.created_utc, "edited": p.edited,
        "is_self": p.kind == "self", "selftext": p.selftext,
        "selftext_html": md_html(p.selftext) if p.kind == "self" and p.selftext else None,
        "url": url, "permalink": p.permalink, "domain": domain,
        **({"url_overridden_by_dest": url} if p.kind in ("image", "link", "video") else {}),
        "thumbnail": f"{base}/thumbs/{p.media_key}.png" if p.kind == "image" else "self",
        "score": p.score, "ups": p.score, "downs": 0, "upvote_ratio": p.upvote_ratio,
        "num_comments": sum(1 for c in ds.comments.values() if c.link_id == p.id),
        "num_crossposts": 0, "over_18": False, "spoiler": False, "locked": p.locked,
        "archived": False, "stickied": p.stickied, "pinned": False, "distinguished": None,
        "removed_by_category": p.removed_by_category, "link_flair_text": p.flair,
        "author_flair_text": None, "view_count": None, "is_gallery": False, **extra,
    }


def comment_json(c: Comment, ds: RedditDataset, depth: int, replies: Any) -> dict[str, Any]:
    post = ds.posts[c.link_id]
    return {"kind": "t1", "data": {
        "id": c.id, "name": c.fullname, "author": c.author,
        "author_fullname": f"t2_{ds.users[c.author.lower()].id}" if c.author.lower() in ds.users else None,
        "body": c.body, "body_html": md_html(c.body), "created": c.created_utc,
        "created_utc": c.created_utc, "edited": c.edited, "score": c.score, "ups": c.score,
        "parent_id": c.parent_id, "link_id": post.fullname, "subreddit": post.subreddit,
        "subreddit_name_prefixed": f"r/{post.subreddit}", "permalink": f"{post.permalink}{c.id}/",
        "depth": depth, "is_submitter": c.author == post.author, "stickied": False,
        "distinguished": None, "controversiality": 0, "collapsed": c.deleted is not None,
        "score_hidden": False, "replies": replies}}


def user_comment_json(c: Comment, ds: RedditDataset, base: str) -> dict[str, Any]:
    thing = comment_json(c, ds, c.depth, "")
    post = ds.posts[c.link_id]
    thing["data"].update(link_title=post.title, link_author=post.author,
                         link_permalink=base + post.permalink)
    return thing


SORTS: dict[str, Callable[[Comment], Any]] = {
    "confidence": lambda c: (-c.score, c.id), "top": lambda c: (-c.score, c.id),
    "new": lambda c: (-c.created_utc, c.id), "old": lambda c: (c.created_utc, c.id),
    "controversial": lambda c: (abs(c.score), c.id), "qa": lambda c: (-c.score, c.id),
}


@dataclass
class TreeRenderer:
    """Renders a comment forest with a total budget, a per-parent cap below top level and a
    depth limit, producing the two kinds of "more" stubs (§5.5)."""

    ds: RedditDataset
    sort: str = "confidence"
    budget: int = 200
    max_depth: int = MAX_DEPTH
    depth_offset: int = 0  # subtract from absolute depth (focused comment views start at 0)

    def ordered(self, ids: list[str]) -> list[Comment]:
        key = SORTS.get(self.sort, SORTS["confidence"])
        return sorted((self.ds.comments[i] for i in ids), key=key)

    def children(self, parent: str, ids: list[str], depth: int) -> list[dict[str, Any]]:
        """Things for the replies of ``parent`` (a fullname) whose rendered depth is ``depth``."""
        if not ids:
            return []
        if depth > self.max_depth:
            return [{"kind": "more", "data": {"count": 0, "name": "t1__", "id": "_",
                                              "parent_id": parent, "depth": depth, "children": []}}]
        out: list[dict[str, Any]] = []
        ordered = self.ordered(ids)
        for n, c in enumerate(ordered):
            if self.budget <= 0 or (depth > 0 and n >= NESTED_CAP):
                out.append(self.more(parent, ordered[n:], depth))
                break
            out.append(self.one(c, depth))
        return out

    def one(self, c: Comment, depth: int) -> dict[str, Any]:
        self.budget -= 1
        kids = self.children(c.fullname, c.reply_ids, depth + 1)
        return comment_json(c, self.ds, depth, listing(kids) if kids else "")

    def more(self, parent: str, rest: list[Comment], depth: int) -> dict[str, Any]:
        count = sum(self.ds.subtree_size(c.id) for c in rest)
        return {"kind": "more", "data": {"count": count, "name": rest[0].fullname, "id": rest[0].id,
                                         "parent_id": parent, "depth": depth,
                                         "children": [c.id for c in rest]}}


def flatten(things: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first flat list (morechildren shape): every t1 gets ``replies: ""``."""
    out: list[dict[str, Any]] = []
    for t in things:
        out.append(t)
        if t["kind"] == "t1" and t["data"]["replies"]:
            kids = t["data"]["replies"]["data"]["children"]
            t["data"]["replies"] = ""
            out.extend(flatten(kids))
    return out


def escape_strings(value: Any) -> Any:
    """What Reddit does without ``raw_json=1``: ``&``, ``<``, ``>`` in every string entity-escaped."""
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, list):
        return [escape_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: escape_strings(v) for k, v in value.items()}
    return value


def post_page_html(p: Post, base: str, ds: RedditDataset) -> str:
    """old.reddit-style server-rendered page with the whole comment tree."""

    def comment_html(c: Comment) -> str:
        kids = "".join(comment_html(ds.comments[r]) for r in c.reply_ids)
        return (f'<div class="thing comment" id="thing_{c.fullname}" data-fullname="{c.fullname}" '
                f'data-author="{html.escape(c.author)}" data-permalink="{p.permalink}{c.id}/">'
                f'<div class="entry"><p class="tagline"><a class="author" href="{base}/user/'
                f'{html.escape(c.author)}">{html.escape(c.author)}</a> <span class="score">{c.score} '
                f'points</span> <time datetime="{c.created_utc}"></time></p>'
                f'<form class="usertext"><div class="usertext-body">{md_html(c.body)}</div></form>'
                f'</div><div class="child">{kids}</div></div>')

    data = post_json(p, base, ds)
    comments = "".join(comment_html(ds.comments[c]) for c in p.comment_ids)
    body = md_html(p.selftext) if p.selftext else ""
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(p.title)} : '
            f'{p.subreddit}</title><link rel="canonical" href="{base}{p.permalink}"></head><body>'
            f'<div class="sitetable linklisting"><div class="thing link" id="thing_{p.fullname}" '
            f'data-fullname="{p.fullname}" data-author="{html.escape(p.author)}" '
            f'data-subreddit="{p.subreddit}" data-url="{html.escape(data["url"])}" '
            f'data-permalink="{p.permalink}" data-comments-count="{data["num_comments"]}">'
            f'<a class="title" href="{html.escape(data["url"])}">{html.escape(p.title)}</a>'
            f'<div class="expando"><div class="usertext-body">{body}</div></div></div></div>'
            f'<div class="commentarea"><div class="sitetable nestedlisting">{comments}</div></div>'
            f'</body></html>')
