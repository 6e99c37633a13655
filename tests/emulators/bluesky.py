"""Bluesky / AT Protocol emulator (PLATFORMS.md §3): AppView, PDS, PLC directory, CDN and
bsky.app-style HTML pages, all on one port.

    with BlueskyEmulator(seed=1) as emu:
        emu.appview_url  # /xrpc/app.bsky.* and com.atproto.identity.resolveHandle
        emu.pds_url      # /xrpc/com.atproto.repo.* and com.atproto.sync.* (also in DID docs)
        emu.plc_url      # GET {plc_url}/{did} -> DID document (like https://plc.directory)

Run standalone: ``python -m tests.emulators.bluesky [--port N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import re
from collections.abc import Callable
from typing import Any

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.bluesky_data import POST, BlueskyDataset, BskyAccount, build_bluesky_dataset
from tests.emulators.bluesky_views import (
    feed_item,
    post_view,
    profile_detailed,
    thread_view,
)
from tests.emulators.dagcbor import CID, build_mst, car, encode, to_ipld
from tests.emulators.faults import RateLimitState

XRPC_ERRORS = {500: ("InternalServerError", "Internal Server Error"),
               502: ("UpstreamFailure", "Upstream Failure"),
               503: ("NotEnoughResources", "Not Enough Resources")}
FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media",
           "posts_and_author_threads", "posts_with_video")


def xrpc_error(name: str, message: str, status: int = 400) -> Response:
    return Response.json({"error": name, "message": message}, status=status)


def _limit(req: Request, default: int = 50) -> int | Response:
    try:
        value = int(req.arg("limit") or default)
    except ValueError:
        return xrpc_error("InvalidRequest", "limit must be an integer")
    if not 1 <= value <= 100:
        return xrpc_error("InvalidRequest", "limit can not be greater than 100"
                          if value > 100 else "limit can not be less than 1")
    return value


class BlueskyEmulator(Emulator):
    name = "bluesky-emulator"

    def __init__(self, seed: int = 1, port: int = 0) -> None:
        super().__init__(port=port)
        self.dataset: BlueskyDataset = build_bluesky_dataset(seed)
        self._xrpc: dict[str, Callable[[Request], Response]] = {
            "com.atproto.identity.resolveHandle": self.resolve_handle,
            "app.bsky.actor.getProfile": self.get_profile,
            "app.bsky.feed.getAuthorFeed": self.get_author_feed,
            "app.bsky.feed.getPostThread": self.get_post_thread,
            "app.bsky.feed.getPosts": self.get_posts,
            "com.atproto.repo.describeRepo": self.describe_repo,
            "com.atproto.repo.listRecords": self.list_records,
            "com.atproto.repo.getRecord": self.get_record,
            "com.atproto.sync.getRepo": self.get_repo,
            "com.atproto.sync.getBlob": self.get_blob,
        }

    @property
    def appview_url(self) -> str:
        return self.base_url

    @property
    def pds_url(self) -> str:
        return self.base_url

    @property
    def plc_url(self) -> str:
        return self.base_url + "/plc"

    # plumbing -------------------------------------------------------------------------------
    def route(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/xrpc/"):
            handler = self._xrpc.get(path.removeprefix("/xrpc/"))
            if handler is None:
                return xrpc_error("MethodNotImplemented", "Method Not Implemented", 501)
            return handler(req)
        if m := re.match(r"^/plc/(did:plc:[a-z2-7]+)$", path):
            return self.plc(req, m[1])
        if m := re.match(r"^/img/([a-z_]+)/plain/([^/]+)/([a-z2-7]+)@png$", path):
            return self.cdn(m[2], m[3])
        if m := re.match(r"^/profile/([^/]+)/post/([a-z2-7]+)$", path):
            return self.post_page(req, m[1], m[2])
        if m := re.match(r"^/profile/([^/]+)$", path):
            return self.profile_page(req, m[1])
        return Response.html("<h1>Not Found</h1>", status=404)

    def rate_limited_response(self, req: Request) -> Response:
        return xrpc_error("RateLimitExceeded", "Rate Limit Exceeded", 429)

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        return [
            ("RateLimit-Limit", str(state.limit)),
            ("RateLimit-Remaining", str(state.remaining)),
            ("RateLimit-Reset", str(math.ceil(state.reset_epoch))),
            ("RateLimit-Policy", f"{state.limit};w={math.ceil(state.window)}"),
        ]

    def server_error_response(self, req: Request, status: int) -> Response:
        name, message = XRPC_ERRORS.get(status, ("InternalServerError", "Internal Server Error"))
        return xrpc_error(name, message, status)

    def _actor(self, req: Request, param: str = "actor") -> BskyAccount | Response:
        key = req.arg(param)
        if not key:
            return xrpc_error("InvalidRequest", f'Error: Params must have the property "{param}"')
        acc = self.dataset.actor(key)
        if acc is None:
            return xrpc_error("InvalidRequest", "Profile not found")
        if acc.status == "takendown":
            return xrpc_error("AccountTakedown", "Account has been suspended")
        if acc.status == "deactivated":
            return xrpc_error("AccountDeactivated", "Account is deactivated")
        return acc

    # identity / AppView -----------------------------------------------------------------------
    def resolve_handle(self, req: Request) -> Response:
        acc = self.dataset.actor(req.arg("handle") or "")
        if acc is None:
            return xrpc_error("HandleNotFound", "Unable to resolve handle")
        return Response.json({"did": acc.did})

    def plc(self, req: Request, did: str) -> Response:
        acc = self.dataset.accounts.get(did)
        if acc is None:
            return Response.json({"message": f"DID not registered: {did}"}, status=404)
        return Response.json({
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1",
                         "https://w3id.org/security/suites/secp256k1-2019/v1"],
            "id": did,
            "alsoKnownAs": [f"at://{acc.handle}"],
            "verificationMethod": [{
                "id": f"{did}#atproto", "type": "Multikey", "controller": did,
                "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                         "serviceEndpoint": req.base}],
        })

    def get_profile(self, req: Request) -> Response:
        acc = self._actor(req)
        if isinstance(acc, Response):
            return acc
        return Response.json(profile_detailed(acc, req.base, self.dataset))

    def get_author_feed(self, req: Request) -> Response:
        acc = self._actor(req)
        if isinstance(acc, Response):
            return acc
        limit = _limit(req)
        if isinstance(limit, Response):
            return limit
        flt = req.arg("filter") or "posts_with_replies"
        if flt not in FILTERS:
            return xrpc_error("InvalidRequest", f"Invalid filter: {flt}")
        ds = self.dataset
        items = [(key, rec) for key, rec in ds.feed(acc.did) if self._keep(rec, flt, acc)]
        cursor = req.arg("cursor")
        if cursor:
            bound = self._decode_cursor(cursor)
            if bound is None:  # "clearlyBadCursor": empty feed, no error
                return Response.json({"feed": []})
            items = [(k, r) for k, r in items if (k, r.rkey) < bound]
        page, rest = items[:limit], items[limit:]
        feed = []
        if not cursor and req.arg("includePins") in ("true", "1") and ds.pinned_uri:
            pinned = ds.posts[ds.pinned_uri]
            if pinned.record.did == acc.did:
                feed.append(feed_item(pinned.record, req.base, ds, pin=True))
        feed += [feed_item(rec, req.base, ds) for _, rec in page]
        body: dict[str, Any] = {"feed": feed}
        if rest and page:
            key, rec = page[-1]
            body = {"cursor": base64.urlsafe_b64encode(f"{key}::{rec.rkey}".encode()).decode(),
                    "feed": feed}
        return Response.json(body)

    @staticmethod
    def _keep(rec: Any, flt: str, acc: BskyAccount) -> bool:
        is_repost = rec.collection != POST
        reply = None if is_repost else rec.value.get("reply")
        if flt == "posts_no_replies":
            return is_repost or reply is None
        if flt == "posts_with_media":
            embed = {} if is_repost else rec.value.get("embed", {})
            return embed.get("$type") in ("app.bsky.embed.images", "app.bsky.embed.recordWithMedia")
        if flt == "posts_and_author_threads":
            return is_repost or reply is None or reply["parent"]["uri"].startswith(f"at://{acc.did}/")
        if flt == "posts_with_video":
            return False
        return True

    @staticmethod
    def _decode_cursor(cursor: str) -> tuple[str, str] | None:
        try:
            key, rkey = base64.urlsafe_b64decode(cursor.encode()).decode().split("::")
        except (ValueError, UnicodeDecodeError):
            return None
        return key, rkey

    def get_post_thread(self, req: Request) -> Response:
        uri = req.arg("uri")
        if not uri:
            return xrpc_error("InvalidRequest", 'Error: Params must have the property "uri"')
        try:
            depth = int(req.arg("depth") or 6)
            height = int(req.arg("parentHeight") or 80)
        except ValueError:
            return xrpc_error("InvalidRequest", "depth/parentHeight must be integers")
        post = self.dataset.post(uri)
        if post is None:
            return xrpc_error("NotFound", f"Post not found: {uri}")
        thread = thread_view(post, req.base, self.dataset, min(depth, 1000), min(height, 1000))
        return Response.json({"thread": thread})

    def get_posts(self, req: Request) -> Response:
        uris = req.args("uris")
        if len(uris) > 25:
            return xrpc_error("InvalidRequest", "Error: uris must not have more than 25 elements")
        found = [self.dataset.post(u) for u in uris]
        return Response.json({"posts": [post_view(p, req.base, self.dataset) for p in found if p]})

    # PDS --------------------------------------------------------------------------------------
    def _repo(self, key: str | None) -> BskyAccount | Response:
        acc = self.dataset.actor(key or "")
        if acc is None:
            return xrpc_error("RepoNotFound", f"Could not find repo for DID: {key}")
        if acc.status == "takendown":
            return xrpc_error("RepoTakendown", f"Repo has been takendown: {acc.did}")
        if acc.status == "deactivated":
            return xrpc_error("RepoDeactivated", f"Repo has been deactivated: {acc.did}")
        return acc

    def describe_repo(self, req: Request) -> Response:
        acc = self._repo(req.arg("repo"))
        if isinstance(acc, Response):
            return acc
        did_doc = self.plc(req, acc.did)
        return Response.json({
            "handle": acc.handle, "did": acc.did, "didDoc": json.loads(did_doc.body),
            "collections": sorted({r.collection for r in acc.records if not r.deleted}),
            "handleIsCorrect": True,
        })

    def list_records(self, req: Request) -> Response:
        """Newest first (``reverse=true``: oldest first); cursor = last rkey returned, present
        whenever the page is non-empty (like the reference PDS), so the end is an empty page."""
        acc = self._repo(req.arg("repo"))
        if isinstance(acc, Response):
            return acc
        limit = _limit(req)
        if isinstance(limit, Response):
            return limit
        collection = req.arg("collection")
        reverse = req.arg("reverse") in ("true", "1")
        recs = sorted((r for r in acc.records if r.collection == collection and not r.deleted),
                      key=lambda r: r.rkey, reverse=not reverse)
        cursor = req.arg("cursor")
        if cursor:
            recs = [r for r in recs if (r.rkey > cursor if reverse else r.rkey < cursor)]
        page = recs[:limit]
        body: dict[str, Any] = {"records": [{"uri": r.uri, "cid": r.cid, "value": r.value}
                                            for r in page]}
        if page:
            body["cursor"] = page[-1].rkey
        return Response.json(body)

    def get_record(self, req: Request) -> Response:
        acc = self._repo(req.arg("repo"))
        if isinstance(acc, Response):
            return acc
        coll, rkey = req.arg("collection"), req.arg("rkey")
        rec = next((r for r in acc.records if r.collection == coll and r.rkey == rkey
                    and not r.deleted), None)
        if rec is None:
            return xrpc_error("RecordNotFound", f"Could not locate record: at://{acc.did}/{coll}/{rkey}")
        return Response.json({"uri": rec.uri, "cid": rec.cid, "value": rec.value})

    def get_repo(self, req: Request) -> Response:
        acc = self._repo(req.arg("did"))
        if isinstance(acc, Response):
            return acc
        store: dict[CID, bytes] = {}
        leaves: dict[str, CID] = {}
        for rec in acc.records:
            if rec.deleted:
                continue
            block = encode(to_ipld(rec.value))
            cid = CID.of(block)
            store[cid] = block
            leaves[f"{rec.collection}/{rec.rkey}"] = cid
        data = build_mst(leaves, store)
        rev = max(r.rkey for r in acc.records if r.rkey != "self")
        commit = encode({"did": acc.did, "version": 3, "data": data, "rev": rev, "prev": None,
                         "sig": bytes(64)})  # dummy signature: spiders must not verify offline
        commit_cid = CID.of(commit)
        blocks = [(commit_cid, commit), *store.items()]
        return Response(body=car([commit_cid], blocks), content_type="application/vnd.ipld.car")

    def get_blob(self, req: Request) -> Response:
        acc = self._repo(req.arg("did"))
        if isinstance(acc, Response):
            return acc
        blob = self.dataset.blobs.get(req.arg("cid") or "")
        if blob is None:
            return xrpc_error("BlobNotFound", "Blob not found")
        return Response(body=blob.data, content_type=blob.mime,
                        headers=[("Content-Security-Policy", "default-src 'none'; sandbox"),
                                 ("X-Content-Type-Options", "nosniff")])

    # CDN and HTML -----------------------------------------------------------------------------
    def cdn(self, did: str, cid: str) -> Response:
        blob = self.dataset.blobs.get(cid)
        if blob is None or did not in self.dataset.accounts:
            return Response(status=404, body=b"Not Found", content_type="text/plain")
        return Response(body=blob.data, content_type=blob.mime,
                        headers=[("Cache-Control", "public, max-age=604800")])

    def _page(self, req: Request, title: str, desc: str, at_uri: str, api: str,
              image: str | None) -> Response:
        e = html.escape
        og_image = f'<meta property="og:image" content="{e(image)}">' if image else ""
        return Response.html(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{e(title)}</title>
<meta property="og:title" content="{e(title)}">
<meta property="og:description" content="{e(desc)}">{og_image}
<link rel="alternate" href="{e(at_uri)}">
</head><body><div id="root" data-api="{e(api)}">Loading…</div>
<noscript>This is a heavily interactive web application, and JavaScript is required.</noscript>
<script>
fetch(document.getElementById("root").dataset.api).then(r => r.json()).then(d => {{
  const root = document.getElementById("root");
  const posts = d.thread ? [d.thread.post] : (d.feed || []).map(i => i.post);
  root.innerHTML = "";
  for (const p of posts) {{
    const el = document.createElement("article");
    el.textContent = p.author.handle + ": " + p.record.text;
    for (const img of (p.embed && p.embed.images) || []) {{
      const i = document.createElement("img"); i.src = img.thumb; i.alt = img.alt; el.appendChild(i);
    }}
    root.appendChild(el);
  }}
}});
</script></body></html>""")

    def post_page(self, req: Request, actor: str, rkey: str) -> Response:
        acc = self.dataset.actor(actor)
        uri = f"at://{acc.did}/{POST}/{rkey}" if acc else ""
        post = self.dataset.post(uri) if acc else None
        if acc is None or post is None:
            return Response.html("<h1>Post not found</h1>", status=404)
        api = f"{req.base}/xrpc/app.bsky.feed.getPostThread?uri={uri}"
        image = f"{req.base}/img/feed_fullsize/plain/{acc.did}/{post.images[0].cid}@png" \
            if post.images else None
        return self._page(req, f"{acc.display_name} (@{acc.handle})", post.text, uri, api, image)

    def profile_page(self, req: Request, actor: str) -> Response:
        acc = self.dataset.actor(actor)
        if acc is None:
            return Response.html("<h1>Profile not found</h1>", status=404)
        api = f"{req.base}/xrpc/app.bsky.feed.getAuthorFeed?actor={acc.did}"
        image = f"{req.base}/img/avatar/plain/{acc.did}/{acc.avatar.cid}@png"
        return self._page(req, f"{acc.display_name} (@{acc.handle})", acc.description,
                          f"at://{acc.did}", api, image)

    def sample_targets(self) -> dict[str, str]:
        ds = self.dataset
        alice = ds.actor("alice.test")
        assert alice
        b = self.base_url
        rkey = ds.thread_root.rsplit("/", 1)[1]
        return {
            "resolve": f"{b}/xrpc/com.atproto.identity.resolveHandle?handle=alice.test",
            "profile": f"{b}/xrpc/app.bsky.actor.getProfile?actor=alice.test",
            "feed": f"{b}/xrpc/app.bsky.feed.getAuthorFeed?actor={alice.did}&limit=100",
            "thread": f"{b}/xrpc/app.bsky.feed.getPostThread?uri={ds.thread_root}",
            "did_doc": f"{self.plc_url}/{alice.did}",
            "car": f"{b}/xrpc/com.atproto.sync.getRepo?did={alice.did}",
            "page": f"{b}/profile/alice.test/post/{rkey}",
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Bluesky emulator.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with BlueskyEmulator(seed=args.seed, port=args.port) as emu:
        serve_until_interrupted(emu, "bluesky", [f"appview_url {emu.appview_url}",
                                                 f"pds_url     {emu.pds_url}",
                                                 f"plc_url     {emu.plc_url}"])


if __name__ == "__main__":
    main()
