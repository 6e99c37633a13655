"""Deterministic ground truth for the Bluesky emulator (records are the source of truth;
AppView views are derived from them in ``bluesky_views``).

Layout (same for every seed; the seed changes DIDs, timestamps, counts and image bytes):
* ``alice.test``: exactly 250 author-feed items (posts, 25 replies, 25 reposts, 2 quotes, one
  quote-with-media, one external link card, image posts, unicode + facets), a pinned post, and a
  deleted post (its URI answers NotFound; a reply to it shows ``notFoundPost`` as parent).
* ``bob.test``, ``carol.test``: posts alice replies to / reposts / quotes, and a 12-deep reply
  chain under an alice post (deeper than getPostThread's default depth 6).
* ``dave.test``: 3 posts.  ``mallory.test``: taken down.  ``eve.test``: deactivated.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.dagcbor import CID, RAW, encode, to_ipld
from tests.emulators.dataset import SAMPLES, iso
from tests.emulators.images import png

ALICE_FEED = 250
CHAIN_DEPTH = 12
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
POST, REPOST, PROFILE = "app.bsky.feed.post", "app.bsky.feed.repost", "app.bsky.actor.profile"


def tid(dt: datetime, clock_id: int) -> str:
    """13-char sortable base32 TID: 53-bit µs timestamp + 10-bit clock id."""
    n = (int(dt.timestamp() * 1_000_000) << 10) | (clock_id & 0x3FF)
    out = []
    for _ in range(13):
        n, r = divmod(n, 32)
        out.append(TID_ALPHABET[r])
    return "".join(reversed(out))


@dataclass
class Blob:
    cid: str
    mime: str
    data: bytes = field(repr=False)

    def ref(self) -> dict[str, Any]:
        return {"$type": "blob", "ref": {"$link": self.cid}, "mimeType": self.mime,
                "size": len(self.data)}


@dataclass
class Record:
    did: str
    collection: str
    rkey: str
    value: dict[str, Any]  # record JSON (blob refs as {"$link": …})
    indexed_at: str
    deleted: bool = False

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{self.collection}/{self.rkey}"

    @property
    def block(self) -> bytes:
        return encode(to_ipld(self.value))

    @property
    def cid(self) -> str:
        return str(CID.of(self.block))


@dataclass
class BskyAccount:
    did: str
    handle: str
    display_name: str
    description: str
    created_at: str
    avatar: Blob
    banner: Blob
    status: str = "active"  # active | takendown | deactivated
    followers_count: int = 0
    follows_count: int = 0
    records: list[Record] = field(default_factory=list)


@dataclass
class Post:
    """Ground truth for one post (replies/quotes by URI; counts as the AppView reports)."""

    record: Record
    text: str
    reply_parent: str | None = None
    reply_root: str | None = None
    quote_of: str | None = None
    images: list[Blob] = field(default_factory=list)
    external: str | None = None
    like_count: int = 0
    repost_count: int = 0
    reply_count: int = 0
    quote_count: int = 0

    @property
    def uri(self) -> str:
        return self.record.uri


@dataclass
class BlueskyDataset:
    seed: int
    accounts: dict[str, BskyAccount] = field(default_factory=dict)  # by DID
    posts: dict[str, Post] = field(default_factory=dict)  # by AT-URI, deleted included
    reposts: dict[str, Record] = field(default_factory=dict)  # by AT-URI
    blobs: dict[str, Blob] = field(default_factory=dict)  # by CID
    thread_root: str = ""
    thread_chain: list[str] = field(default_factory=list)
    deleted_uri: str = ""
    orphan_reply: str = ""  # reply whose parent is deleted
    pinned_uri: str = ""
    quote_uris: list[str] = field(default_factory=list)

    def actor(self, key: str) -> BskyAccount | None:
        if key.startswith("did:"):
            return self.accounts.get(key)
        return next((a for a in self.accounts.values() if a.handle == key.lower()), None)

    def post(self, uri: str) -> Post | None:
        p = self.posts.get(uri)
        if p is None or p.record.deleted or self.accounts[p.record.did].status != "active":
            return None
        return p

    def replies(self, uri: str) -> list[Post]:
        kids = [p for p in self.posts.values() if p.reply_parent == uri and not p.record.deleted]
        return sorted(kids, key=lambda p: p.record.rkey)

    def feed(self, did: str) -> list[tuple[str, Record]]:
        """Author feed items newest first as (sortAt, record): posts and reposts."""
        acc = self.accounts[did]
        items = [(r.value["createdAt"], r) for r in acc.records
                 if r.collection in (POST, REPOST) and not r.deleted]
        return sorted(items, key=lambda x: (x[0], x[1].rkey), reverse=True)


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ds = BlueskyDataset(seed=seed)
        self.clock = datetime(2024, 5, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=seed % 89)

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.randint(60, 5400), microseconds=self.rng.randint(0, 999_999))
        return self.clock

    def blob(self, data: bytes, mime: str = "image/png") -> Blob:
        blob = Blob(cid=str(CID.of(data, RAW)), mime=mime, data=data)
        self.ds.blobs[blob.cid] = blob
        return blob

    def account(self, name: str, display: str, status: str = "active") -> BskyAccount:
        digest = hashlib.sha256(f"{name}{self.ds.seed}".encode()).digest()
        did = "did:plc:" + "".join(TID_ALPHABET[b % 32] for b in digest[:24])
        n = len(self.ds.accounts)
        acc = BskyAccount(
            did=did, handle=f"{name}.test", display_name=display,
            description=f"{display} — test account ✨", created_at=iso(datetime(2023, 5, 1 + n, tzinfo=UTC)),
            avatar=self.blob(png(48, 48, 500 + n)), banner=self.blob(png(120, 40, 600 + n)),
            status=status, followers_count=self.rng.randint(3, 800), follows_count=self.rng.randint(3, 200),
        )
        self.ds.accounts[did] = acc
        profile = {"$type": PROFILE, "displayName": display, "description": acc.description,
                   "avatar": acc.avatar.ref(), "banner": acc.banner.ref(), "createdAt": acc.created_at}
        acc.records.append(Record(did, PROFILE, "self", profile, acc.created_at))
        return acc

    def _record(self, acc: BskyAccount, collection: str, value: dict[str, Any]) -> Record:
        dt = self.tick()
        value["createdAt"] = iso(dt)
        rec = Record(acc.did, collection, tid(dt, len(acc.records)), value,
                     iso(dt + timedelta(milliseconds=self.rng.randint(50, 900))))
        acc.records.append(rec)
        return rec

    def post(self, acc: BskyAccount, text: str, *, parent: str | None = None,
             quote: str | None = None, images: int = 0, external: bool = False,
             tag: str | None = None, mention: BskyAccount | None = None) -> Post:
        ds = self.ds
        if mention:
            text = f"@{mention.handle} {text}"
        if tag:
            text = f"{text} #{tag}"
        value: dict[str, Any] = {"$type": POST, "text": text, "langs": ["en"]}
        facets = []
        raw = text.encode()
        if mention:
            end = len(f"@{mention.handle}".encode())
            facets.append({"index": {"byteStart": 0, "byteEnd": end}, "features": [
                {"$type": "app.bsky.richtext.facet#mention", "did": mention.did}]})
        if tag:
            start = raw.rindex(f"#{tag}".encode())
            facets.append({"index": {"byteStart": start, "byteEnd": len(raw)}, "features": [
                {"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
        if facets:
            value["facets"] = facets
        root = None
        if parent:
            parent_post = ds.posts[parent]
            root = parent_post.reply_root or parent
            value["reply"] = {"root": {"uri": root, "cid": ds.posts[root].record.cid},
                              "parent": {"uri": parent, "cid": parent_post.record.cid}}
            parent_post.reply_count += 1
        blobs = [self.blob(png(64, 48, 1000 + len(ds.blobs) + i)) for i in range(images)]
        image_embed = {"$type": "app.bsky.embed.images", "images": [
            {"alt": f"Test image {b.cid[-6:]} ✓", "aspectRatio": {"width": 4, "height": 3},
             "image": b.ref()} for b in blobs]}
        quote_ref = None
        if quote:
            quote_ref = {"$type": "app.bsky.embed.record",
                         "record": {"uri": quote, "cid": ds.posts[quote].record.cid}}
            ds.posts[quote].quote_count += 1
        if quote_ref and blobs:
            value["embed"] = {"$type": "app.bsky.embed.recordWithMedia",
                              "record": quote_ref, "media": image_embed}
        elif quote_ref:
            value["embed"] = quote_ref
        elif blobs:
            value["embed"] = image_embed
        elif external:
            value["embed"] = {"$type": "app.bsky.embed.external", "external": {
                "uri": "https://example.org/harbour", "title": "Harbour — example",
                "description": "A link card"}}
        rec = self._record(acc, POST, value)
        p = Post(record=rec, text=text, reply_parent=parent, reply_root=root, quote_of=quote,
                 images=blobs, external="https://example.org/harbour" if external else None,
                 like_count=self.rng.randint(0, 50))
        ds.posts[rec.uri] = p
        return p

    def repost(self, acc: BskyAccount, target: Post) -> Record:
        rec = self._record(acc, REPOST, {"$type": REPOST, "subject": {
            "uri": target.uri, "cid": target.record.cid}})
        target.repost_count += 1
        self.ds.reposts[rec.uri] = rec
        return rec


def build_bluesky_dataset(seed: int = 1) -> BlueskyDataset:
    b = _Builder(seed)
    ds = b.ds
    alice = b.account("alice", "Alice 🦋")
    bob = b.account("bob", "Bob")
    carol = b.account("carol", "キャロル")
    dave = b.account("dave", "Dave")
    mallory = b.account("mallory", "Mallory", status="takendown")
    b.account("eve", "Eve", status="deactivated")
    for i in range(3):
        b.post(dave, f"Dave's post {i + 1}")
    b.post(mallory, "Taken down post")

    others: list[Post] = []
    count = 0
    i = 0
    while count < ALICE_FEED:
        if i % 4 == 0:
            author = bob if i % 8 == 0 else carol
            others.append(b.post(author, f"{SAMPLES[i % len(SAMPLES)]} ({author.handle} {i})"))
        text = f"{SAMPLES[i % len(SAMPLES)]} — alice {i}"
        if i == 100:
            _thread(b, alice, bob, carol)
        elif i == 150:
            gone = b.post(alice, "This post will be deleted")
            reply = b.post(bob, "Replying to a post that will vanish", parent=gone.uri)
            gone.record.deleted = True
            ds.deleted_uri, ds.orphan_reply = gone.uri, reply.uri
            count -= 1  # the deleted post is not in the feed
        elif i % 10 == 3:
            b.repost(alice, others[-1])
        elif i % 10 == 7:
            b.post(alice, text, parent=others[-1].uri, mention=ds.actor(others[-1].record.did))
        elif i in (40, 140):
            ds.quote_uris.append(b.post(alice, text, quote=others[-1].uri).uri)
        elif i == 60:
            ds.quote_uris.append(b.post(alice, text, quote=others[-1].uri, images=1).uri)
        else:
            p = b.post(alice, text, images=(1 + i % 2) if i % 12 == 5 else 0,
                       external=i % 25 == 11, tag="archive" if i % 3 == 0 else None)
            if i == 30:
                ds.pinned_uri = p.uri
        count += 1
        i += 1
    profile = alice.records[0]
    pinned = ds.posts[ds.pinned_uri]
    profile.value["pinnedPost"] = {"uri": pinned.uri, "cid": pinned.record.cid}
    assert len(ds.feed(alice.did)) == ALICE_FEED
    return ds


def _thread(b: _Builder, alice: BskyAccount, bob: BskyAccount, carol: BskyAccount) -> None:
    root = b.post(alice, "Deep thread root 🧵", tag="archive")
    b.ds.thread_root = root.uri
    parent = root
    for n in range(1, CHAIN_DEPTH + 1):
        parent = b.post(bob if n % 2 else carol, f"chain reply {n}", parent=parent.uri)
        b.ds.thread_chain.append(parent.uri)
