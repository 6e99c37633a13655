"""Mastodon-family emulator: vanilla Mastodon 4.4, Truth Social, Gab, Pleroma (PLATFORMS.md §2).

    with MastodonEmulator(flavor="mastodon", seed=1) as emu:
        emu.base_url, emu.dataset, emu.requests, emu.faults

Run standalone: ``python -m tests.emulators.mastodon [--flavor F] [--port N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tests.emulators._base import Emulator, Request, Response, serve_until_interrupted
from tests.emulators.dataset import FLAVORS, Account, MastodonDataset, Status, build_dataset, id_key
from tests.emulators.faults import RateLimitState
from tests.emulators.images import png
from tests.emulators.mastodon_render import (
    MISSING_AVATAR,
    MISSING_HEADER,
    account_json,
    history_json,
    shell_html,
    status_json,
    status_path,
)

# Unauthenticated /context caps (Mastodon 4.0+); with a Bearer token: 4096 each, no depth cap.
ANCESTORS_LIMIT, DESCENDANTS_LIMIT, DESCENDANTS_DEPTH = 40, 60, 20
AUTH_CONTEXT_LIMIT = 4096
DEFAULT_LIMIT, MAX_LIMIT = 20, 40
FILTER_PARAMS = ("exclude_replies", "exclude_reblogs", "only_media", "tagged", "pinned",
                 "only_comments", "sort_by", "local", "remote", "any[]", "all[]", "none[]")

INSTANCE_VERSION = {
    "mastodon": "4.4.0",
    "truthsocial": "3.4.1 (compatible; TruthSocial 1.0.0)",  # [U]
    "gab": "2.8.4 (compatible; Gab Social 1.0.0)",  # [U]
    "pleroma": "2.7.2 (compatible; Pleroma 2.6.2)",
}
NODEINFO_SOFTWARE = {"mastodon": "mastodon", "truthsocial": "mastodon", "gab": "mastodon",
                     "pleroma": "pleroma"}

NOT_FOUND = {"error": "Record not found"}


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t", "yes", "on")


class MastodonEmulator(Emulator):
    name = "mastodon-emulator"

    def __init__(self, flavor: str = "mastodon", seed: int = 1, port: int = 0) -> None:
        super().__init__(port=port)
        self.flavor = flavor
        self.dataset: MastodonDataset = build_dataset(flavor, seed)
        self._missing = png(16, 16, 999)
        self._routes: list[tuple[re.Pattern[str], Callable[..., Response]]] = [
            (re.compile(p), h) for p, h in self._route_table()
        ]

    def _route_table(self) -> list[tuple[str, Callable[..., Response]]]:
        return [
            (r"^/api/v1/instance/?$", self.instance_v1),
            (r"^/api/v2/instance/?$", self.instance_v2),
            (r"^/\.well-known/nodeinfo$", self.nodeinfo_index),
            (r"^/nodeinfo/2\.0$", self.nodeinfo),
            (r"^/\.well-known/webfinger$", self.webfinger),
            (r"^/api/v1/accounts/lookup$", self.lookup),
            (r"^/api/v1/account_by_username/([^/]+)$", self.account_by_username),
            (r"^/api/v1/accounts/([^/]+)/statuses$", self.account_statuses),
            (r"^/api/v1/accounts/([^/]+)$", self.account),
            (r"^/api/v1/statuses$", self.statuses_multi),
            (r"^/api/v1/statuses/([^/]+)/context/descendants$", self.truth_descendants),
            (r"^/api/v1/statuses/([^/]+)/context$", self.context),
            (r"^/api/v1/statuses/([^/]+)/history$", self.history),
            (r"^/api/v1/statuses/([^/]+)/reblogged_by$", self.reblogged_by),
            (r"^/api/v1/statuses/([^/]+)/favourited_by$", self.favourited_by),
            (r"^/api/v1/statuses/([^/]+)$", self.status),
            (r"^/api/v1/timelines/tag/([^/]+)$", self.tag_timeline),
            (r"^/api/v1/timelines/public$", self.public_timeline),
            (r"^/(?:system|avatars|headers)/.+\.(?:png|gif)$", self.media_file),
            (r"^/@([^/@]+)/posts/([^/]+)$", self.status_page),
            (r"^/@([^/@]+)/([^/]+)$", self.status_page),
            (r"^/notice/([^/]+)$", self.notice_page),
            (r"^/([^/@]+)/posts/([^/]+)$", self.status_page),
            (r"^/(?:@|users/)([^/@]+)$", self.profile_page),
        ]

    # plumbing -----------------------------------------------------------------------------
    def route(self, req: Request) -> Response:
        for pattern, handler in self._routes:
            m = pattern.match(req.path)
            if m:
                return handler(req, *m.groups())
        return Response.html("<h1>The page you are looking for isn't here.</h1>", status=404)

    def rate_limited_response(self, req: Request) -> Response:
        return Response.json({"error": "Too many requests"}, status=429)

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        reset = datetime.fromtimestamp(state.reset_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return [
            ("X-RateLimit-Limit", str(state.limit)),
            ("X-RateLimit-Remaining", str(state.remaining)),
            ("X-RateLimit-Reset", reset),
        ]

    def _find_account(self, key: str) -> Account | None:
        ds = self.dataset
        acc = ds.accounts.get(key)
        if acc is None and self.flavor == "pleroma":
            acc = ds.by_username(key)  # Pleroma accepts nicknames here [U]
        return acc

    # discovery ----------------------------------------------------------------------------
    def instance_v1(self, req: Request) -> Response:
        ds = self.dataset
        host = req.headers.get("host", "127.0.0.1")
        return Response.json({
            "uri": host, "title": f"Emulated {self.flavor}", "short_description": "Test instance",
            "description": "Deterministic emulator for socialark tests", "email": "admin@example.org",
            "version": INSTANCE_VERSION[self.flavor], "urls": {"streaming_api": f"ws://{host}"},
            "stats": {"user_count": len(ds.accounts), "status_count": len(ds.statuses),
                      "domain_count": 1},
            "thumbnail": None, "languages": ["en"], "registrations": False,
            "approval_required": False, "invites_enabled": False,
            "configuration": {"statuses": {"max_characters": 500, "max_media_attachments": 4}},
            "contact_account": None, "rules": [],
        })

    def instance_v2(self, req: Request) -> Response:
        if self.flavor != "mastodon":
            return Response.html("<h1>Not found</h1>", status=404)
        host = req.headers.get("host", "127.0.0.1")
        return Response.json({
            "domain": host, "title": "Emulated mastodon", "version": INSTANCE_VERSION["mastodon"],
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "Deterministic emulator for socialark tests",
            "usage": {"users": {"active_month": len(self.dataset.accounts)}},
            "thumbnail": {"url": req.base + MISSING_HEADER}, "languages": ["en"],
            "configuration": {"urls": {"streaming": f"ws://{host}"},
                              "statuses": {"max_characters": 500}},
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "contact": {"email": "admin@example.org", "account": None}, "rules": [],
        })

    def nodeinfo_index(self, req: Request) -> Response:
        return Response.json({"links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
            "href": f"{req.base}/nodeinfo/2.0"}]})

    def nodeinfo(self, req: Request) -> Response:
        version = INSTANCE_VERSION[self.flavor].split("Pleroma ")[-1].rstrip(")")
        return Response.json({
            "version": "2.0",
            "software": {"name": NODEINFO_SOFTWARE[self.flavor], "version": version},
            "protocols": ["activitypub"], "services": {"outbound": [], "inbound": []},
            "usage": {"users": {"total": len(self.dataset.accounts)},
                      "localPosts": len(self.dataset.statuses)},
            "openRegistrations": False, "metadata": {},
        })

    def webfinger(self, req: Request) -> Response:
        resource = req.arg("resource") or ""
        name = resource.removeprefix("acct:").split("@")[0]
        acc = self.dataset.by_username(name)
        if acc is None:
            return Response(status=404, body=b"", content_type="application/jrd+json")
        host = req.headers.get("host", "127.0.0.1")
        return Response.json({
            "subject": f"acct:{acc.username}@{host}",
            "aliases": [f"{req.base}/@{acc.username}", f"{req.base}/users/{acc.username}"],
            "links": [
                {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
                 "href": f"{req.base}/@{acc.username}"},
                {"rel": "self", "type": "application/activity+json",
                 "href": f"{req.base}/users/{acc.username}"},
            ],
        }, content_type="application/jrd+json; charset=utf-8")

    # accounts -----------------------------------------------------------------------------
    def lookup(self, req: Request) -> Response:
        acct = req.arg("acct")
        if self.flavor == "gab":
            return Response.json(NOT_FOUND, status=404)  # reported Gab behaviour [R]
        if not acct:
            return Response.json({"error": "param is missing or the value is empty: acct"}, 400)
        acc = self.dataset.by_username(acct.split("@")[0])
        if acc is None:
            return Response.json(NOT_FOUND, status=404)
        return Response.json(account_json(acc, req.base, self.dataset))

    def account_by_username(self, req: Request, name: str) -> Response:
        if self.flavor != "gab":  # Gab-only route: a routing 404 elsewhere
            return Response.html("<h1>The page you are looking for isn't here.</h1>", 404)
        acc = self.dataset.by_username(name)
        if acc is None:
            return Response.json(NOT_FOUND, status=404)
        return Response.json(account_json(acc, req.base, self.dataset))

    def account(self, req: Request, key: str) -> Response:
        acc = self._find_account(key)
        if acc is None:
            return Response.json(NOT_FOUND, status=404)
        return Response.json(account_json(acc, req.base, self.dataset))

    def account_statuses(self, req: Request, key: str) -> Response:
        acc = self._find_account(key)
        if acc is None:
            return Response.json(NOT_FOUND, status=404)
        if acc.suspended:
            return Response.json([])
        items = self.dataset.timeline(acc.id)
        if _truthy(req.arg("pinned")):
            return Response.json([status_json(s, req.base, self.dataset)
                                  for s in items if s.pinned])
        if _truthy(req.arg("only_comments")):  # Gab: replies are "comments"
            items = [s for s in items if s.in_reply_to_id]
        elif _truthy(req.arg("exclude_replies")):
            # Mastodon keeps self-replies (threads) when excluding replies.
            items = [s for s in items if not s.in_reply_to_id or s.in_reply_to_account_id == acc.id]
        if _truthy(req.arg("exclude_reblogs")):
            items = [s for s in items if not s.reblog_of_id]
        if _truthy(req.arg("only_media")):
            items = [s for s in items if s.media]
        tagged = req.arg("tagged")
        if tagged:
            items = [s for s in items if tagged in s.tags]
        return self._paginated(req, items)

    def _paginated(self, req: Request, items: list[Status]) -> Response:
        """Mastodon id pagination + Link header (next only on a full page, prev = min_id)."""
        try:
            limit = min(abs(int(req.arg("limit") or DEFAULT_LIMIT)), MAX_LIMIT) or DEFAULT_LIMIT
        except ValueError:
            limit = DEFAULT_LIMIT
        max_id, since_id, min_id = req.arg("max_id"), req.arg("since_id"), req.arg("min_id")
        if max_id:
            items = [s for s in items if id_key(s.id) < id_key(max_id)]
        if since_id:
            items = [s for s in items if id_key(s.id) > id_key(since_id)]
        if min_id:
            newer = [s for s in items if id_key(s.id) > id_key(min_id)]
            page = newer[-limit:]  # the oldest `limit` newer than min_id, still newest first
        else:
            page = items[:limit]
        body = [status_json(s, req.base, self.dataset) for s in page]
        links = []
        carry = {k: v[0] for k, v in req.query.items() if k == "limit" or k in FILTER_PARAMS}
        if page and len(page) == limit:
            links.append(f'<{self._url(req, carry, max_id=page[-1].id)}>; rel="next"')
        if page:
            links.append(f'<{self._url(req, carry, min_id=page[0].id)}>; rel="prev"')
        headers = [("Link", ", ".join(links))] if links else []
        return Response.json(body, headers=headers)

    @staticmethod
    def _url(req: Request, carry: dict[str, str], **core: str) -> str:
        params = dict(sorted({**carry, **core}.items()))  # Rails' to_query sorts keys
        return f"{req.base}{req.path}?{urlencode(params)}"

    # statuses -----------------------------------------------------------------------------
    def status(self, req: Request, status_id: str) -> Response:
        st = self.dataset.visible(status_id)
        if st is None:
            return Response.json(NOT_FOUND, status=404)
        return Response.json(status_json(st, req.base, self.dataset))

    def statuses_multi(self, req: Request) -> Response:
        found = [self.dataset.visible(i) for i in req.args("id[]")]
        return Response.json([status_json(s, req.base, self.dataset) for s in found if s])

    def context(self, req: Request, status_id: str) -> Response:
        st = self.dataset.visible(status_id)
        if st is None:
            return Response.json(NOT_FOUND, status=404)
        authed = req.headers.get("authorization", "").startswith("Bearer ")
        a_limit = AUTH_CONTEXT_LIMIT if authed else ANCESTORS_LIMIT
        d_limit = AUTH_CONTEXT_LIMIT if authed else DESCENDANTS_LIMIT
        depth = None if authed else DESCENDANTS_DEPTH
        return Response.json({
            "ancestors": [status_json(s, req.base, self.dataset) for s in self._ancestors(st, a_limit)],
            "descendants": [status_json(s, req.base, self.dataset)
                            for s in self.descendants(st.id, d_limit, depth)],
        })

    def _ancestors(self, st: Status, limit: int) -> list[Status]:
        """The ``limit`` nearest ancestors, returned oldest first (the root is lost first)."""
        out: list[Status] = []
        cur = st
        while cur.in_reply_to_id and len(out) < limit:
            parent = self.dataset.visible(cur.in_reply_to_id)
            if parent is None:
                break
            out.append(parent)
            cur = parent
        return list(reversed(out))

    def descendants(self, status_id: str, limit: int, depth: int | None) -> list[Status]:
        """Depth-first (thread order) descendants, at most ``depth`` levels, first ``limit``."""
        out: list[Status] = []

        def walk(parent_id: str, level: int) -> None:
            for child in self.dataset.children(parent_id):
                if len(out) >= limit:
                    return
                out.append(child)
                if depth is None or level < depth:
                    walk(child.id, level + 1)

        walk(status_id, 1)
        return out

    def truth_descendants(self, req: Request, status_id: str) -> Response:
        """Truth Social ``/context/descendants?sort=oldest|newest`` with offset Link paging [U]."""
        st = self.dataset.visible(status_id)
        if st is None or self.flavor != "truthsocial":
            return Response.json(NOT_FOUND, status=404)
        items = self.descendants(st.id, AUTH_CONTEXT_LIMIT, None)
        items.sort(key=lambda s: id_key(s.id), reverse=req.arg("sort") == "newest")
        limit = min(int(req.arg("limit") or DEFAULT_LIMIT), MAX_LIMIT)
        offset = int(req.arg("offset") or 0)
        page = items[offset:offset + limit]
        headers = []
        if offset + limit < len(items):
            carry = {"sort": req.arg("sort") or "oldest", "limit": str(limit)}
            headers.append(("Link", f'<{self._url(req, carry, offset=str(offset + limit))}>; rel="next"'))
        return Response.json([status_json(s, req.base, self.dataset) for s in page],
                             headers=headers)

    def history(self, req: Request, status_id: str) -> Response:
        st = self.dataset.visible(status_id)
        if st is None:
            return Response.json(NOT_FOUND, status=404)
        return Response.json(history_json(st, req.base, self.dataset))

    def reblogged_by(self, req: Request, status_id: str) -> Response:
        if self.dataset.visible(status_id) is None:
            return Response.json(NOT_FOUND, status=404)
        boosters = [self.dataset.accounts[s.account_id] for s in self.dataset.statuses.values()
                    if s.reblog_of_id == status_id and not s.deleted]
        return Response.json([account_json(a, req.base, self.dataset) for a in boosters])

    def favourited_by(self, req: Request, status_id: str) -> Response:
        if self.dataset.visible(status_id) is None:
            return Response.json(NOT_FOUND, status=404)
        return Response.json([])  # favourites are counts only in this dataset

    def tag_timeline(self, req: Request, tag: str) -> Response:
        items = self.dataset.tagged(tag.lower())
        if _truthy(req.arg("only_media")):
            items = [s for s in items if s.media]
        return self._paginated(req, items)

    def public_timeline(self, req: Request) -> Response:
        ds = self.dataset
        items = sorted((s for s in ds.statuses.values() if ds.visible(s.id)),
                       key=lambda s: id_key(s.id), reverse=True)
        return self._paginated(req, items)

    # files and pages ----------------------------------------------------------------------
    def media_file(self, req: Request) -> Response:
        if req.path in (MISSING_AVATAR, MISSING_HEADER):
            return Response(body=self._missing, content_type="image/png")
        hit = self.dataset.files.get(req.path)
        if hit is None:
            return Response.html("<h1>Not found</h1>", status=404)
        data, mime = hit
        return Response(body=data, content_type=mime,
                        headers=[("Cache-Control", "public, max-age=315576000, immutable")])

    def profile_page(self, req: Request, name: str) -> Response:
        acc = self.dataset.by_username(name)
        if acc is None:
            return Response.html("<h1>The page you are looking for isn't here.</h1>", 404)
        if acc.suspended:
            return Response.html("<h1>This account is no longer available.</h1>", 410)
        api = f"{req.base}/api/v1/accounts/{acc.id}/statuses"
        return Response.html(shell_html(
            req.base, f"{acc.display_name} (@{acc.username})", acc.note, f"{req.base}/@{name}",
            api, image=req.base + acc.avatar_path, alternate=f"{req.base}/users/{name}"))

    def notice_page(self, req: Request, status_id: str) -> Response:
        st = self.dataset.visible(status_id)
        if st is None:
            return Response.html("<h1>Not found</h1>", 404)
        return self.status_page(req, self.dataset.accounts[st.account_id].username, status_id)

    def status_page(self, req: Request, name: str, status_id: str) -> Response:
        ds = self.dataset
        acc = ds.by_username(name)
        if acc is not None and acc.suspended:
            return Response.html("<h1>This account is no longer available.</h1>", 410)
        st = ds.visible(status_id)
        if acc is None or st is None or st.account_id != acc.id or st.reblog_of_id:
            return Response.html("<h1>The page you are looking for isn't here.</h1>", 404)
        canonical = req.base + status_path(self.flavor, acc, st)
        image = req.base + (st.media[0].path if st.media else acc.avatar_path)
        return Response.html(shell_html(
            req.base, f"{acc.display_name} (@{acc.username})", st.text, canonical,
            f"{req.base}/api/v1/statuses/{st.id}", image=image,
            alternate=f"{req.base}/users/{acc.username}/statuses/{st.id}"))

    def sample_targets(self) -> dict[str, Any]:
        ds = self.dataset
        alice = ds.by_username("alice")
        assert alice
        b = self.base_url
        return {
            "profile": f"{b}/@alice",
            "post_page": b + status_path(self.flavor, alice, ds.statuses[alice.status_ids[1]]),
            "lookup": f"{b}/api/v1/accounts/lookup?acct=alice",
            "statuses": f"{b}/api/v1/accounts/{alice.id}/statuses?limit=40",
            "thread": f"{b}/api/v1/statuses/{ds.thread_root_id}/context",
            "hashtag": f"{b}/api/v1/timelines/tag/archive",
            "deleted": f"{b}/api/v1/statuses/{ds.deleted_ids[0]}",
            "suspended": f"{b}/@spammer",
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a Mastodon-family emulator.")
    parser.add_argument("--flavor", choices=FLAVORS, default="mastodon")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with MastodonEmulator(flavor=args.flavor, seed=args.seed, port=args.port) as emu:
        serve_until_interrupted(emu, args.flavor)


if __name__ == "__main__":
    main()
