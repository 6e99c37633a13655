"""AppView "views" (hydrated JSON) derived from the Bluesky dataset's records (PLATFORMS.md §3.5)."""

from __future__ import annotations

from typing import Any

from tests.emulators.bluesky_data import BlueskyDataset, BskyAccount, Post, Record

DEFS = "app.bsky.feed.defs"


def cdn(base: str, preset: str, did: str, cid: str) -> str:
    # Real CDN: https://cdn.bsky.app/img/{preset}/plain/{did}/{cid}@jpeg; the emulator serves the
    # original PNG, hence @png.
    return f"{base}/img/{preset}/plain/{did}/{cid}@png"


def profile_basic(acc: BskyAccount, base: str) -> dict[str, Any]:
    return {
        "did": acc.did,
        "handle": acc.handle,
        "displayName": acc.display_name,
        "avatar": cdn(base, "avatar", acc.did, acc.avatar.cid),
        "associated": {"chat": {"allowIncoming": "following"}},
        "viewer": {"muted": False, "blockedBy": False},
        "labels": [],
        "createdAt": acc.created_at,
    }


def profile_detailed(acc: BskyAccount, base: str, ds: BlueskyDataset) -> dict[str, Any]:
    profile = acc.records[0].value
    data = {
        **profile_basic(acc, base),
        "description": acc.description,
        "banner": cdn(base, "banner", acc.did, acc.banner.cid),
        "followersCount": acc.followers_count,
        "followsCount": acc.follows_count,
        "postsCount": sum(1 for r in acc.records if r.collection == "app.bsky.feed.post"
                          and not r.deleted),
        "indexedAt": acc.created_at,
    }
    if "pinnedPost" in profile:
        data["pinnedPost"] = profile["pinnedPost"]
    return data


def _images_view(post: Post, base: str) -> dict[str, Any]:
    return {"$type": "app.bsky.embed.images#view", "images": [
        {"thumb": cdn(base, "feed_thumbnail", post.record.did, b.cid),
         "fullsize": cdn(base, "feed_fullsize", post.record.did, b.cid),
         "alt": img["alt"], "aspectRatio": img["aspectRatio"]}
        for b, img in zip(post.images, _image_items(post), strict=True)]}


def _image_items(post: Post) -> list[dict[str, Any]]:
    embed = post.record.value.get("embed", {})
    media = embed.get("media", embed)
    return media.get("images", [])


def _quote_view(uri: str, base: str, ds: BlueskyDataset) -> dict[str, Any]:
    quoted = ds.post(uri)
    if quoted is None:
        return {"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": True}
    acc = ds.accounts[quoted.record.did]
    view: dict[str, Any] = {
        "$type": "app.bsky.embed.record#viewRecord", "uri": uri, "cid": quoted.record.cid,
        "author": profile_basic(acc, base), "value": quoted.record.value,
        "labels": [], "likeCount": quoted.like_count, "replyCount": quoted.reply_count,
        "repostCount": quoted.repost_count, "quoteCount": quoted.quote_count,
        "indexedAt": quoted.record.indexed_at,
    }
    if quoted.images:
        view["embeds"] = [_images_view(quoted, base)]
    return view


def embed_view(post: Post, base: str, ds: BlueskyDataset) -> dict[str, Any] | None:
    if post.quote_of and post.images:
        return {"$type": "app.bsky.embed.recordWithMedia#view",
                "record": {"record": _quote_view(post.quote_of, base, ds)},
                "media": _images_view(post, base)}
    if post.quote_of:
        return {"$type": "app.bsky.embed.record#view", "record": _quote_view(post.quote_of, base, ds)}
    if post.images:
        return _images_view(post, base)
    if post.external:
        ext = post.record.value["embed"]["external"]
        return {"$type": "app.bsky.embed.external#view", "external": dict(ext)}
    return None


def post_view(post: Post, base: str, ds: BlueskyDataset) -> dict[str, Any]:
    rec = post.record
    view: dict[str, Any] = {
        "uri": rec.uri, "cid": rec.cid,
        "author": profile_basic(ds.accounts[rec.did], base),
        "record": rec.value,
    }
    embed = embed_view(post, base, ds)
    if embed:
        view["embed"] = embed
    view.update(
        replyCount=post.reply_count, repostCount=post.repost_count, likeCount=post.like_count,
        quoteCount=post.quote_count, bookmarkCount=0, indexedAt=rec.indexed_at,
        viewer={"threadMuted": False, "embeddingDisabled": False}, labels=[],
    )
    return view


def not_found(uri: str) -> dict[str, Any]:
    return {"$type": f"{DEFS}#notFoundPost", "uri": uri, "notFound": True}


def feed_item(record: Record, base: str, ds: BlueskyDataset, pin: bool = False) -> dict[str, Any]:
    """feedViewPost: reposts become the original post + reasonRepost."""
    if record.collection == "app.bsky.feed.repost":
        target = ds.posts[record.value["subject"]["uri"]]
        item: dict[str, Any] = {"post": post_view(target, base, ds)}
        item["reason"] = {"$type": f"{DEFS}#reasonRepost",
                          "by": profile_basic(ds.accounts[record.did], base),
                          "uri": record.uri, "cid": record.cid, "indexedAt": record.indexed_at}
        post = target
    else:
        post = ds.posts[record.uri]
        item = {"post": post_view(post, base, ds)}
        if pin:
            item["reason"] = {"$type": f"{DEFS}#reasonPin"}
    if post.reply_parent and not pin:
        parent, root = ds.post(post.reply_parent), ds.post(post.reply_root or "")
        item["reply"] = {
            "root": post_view(root, base, ds) | {"$type": f"{DEFS}#postView"} if root
            else not_found(post.reply_root or ""),
            "parent": post_view(parent, base, ds) | {"$type": f"{DEFS}#postView"} if parent
            else not_found(post.reply_parent),
        }
    return item


def thread_view(post: Post, base: str, ds: BlueskyDataset, depth: int, height: int) -> dict[str, Any]:
    node: dict[str, Any] = {"$type": f"{DEFS}#threadViewPost", "post": post_view(post, base, ds)}
    if post.reply_parent and height > 0:
        parent = ds.post(post.reply_parent)
        node["parent"] = (thread_view(parent, base, ds, 0, height - 1) if parent
                          else not_found(post.reply_parent))
    if depth > 0:
        node["replies"] = [thread_view(r, base, ds, depth - 1, 0) for r in ds.replies(post.uri)
                           if ds.post(r.uri)]
    return node
