"""Real-HTTP checks of the platform emulators (tests/emulators/) against PLATFORMS.md §2, §3, §9."""

from __future__ import annotations

import hashlib
import http.client
import json
import struct
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from urllib.parse import quote, urlsplit

import pytest

from tests.emulators.bluesky import BlueskyEmulator
from tests.emulators.dagcbor import CID
from tests.emulators.dataset import FLAVORS, build_dataset
from tests.emulators.mastodon import MastodonEmulator
from tests.emulators.mastodon_render import TRUTH_KEYS

cbor2 = pytest.importorskip("cbor2")


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, object]:
    status, hdrs, body = fetch(url, headers)
    return status, hdrs, json.loads(body)


def next_link(headers: Message) -> str | None:
    for part in (headers.get("Link") or "").split(", "):
        if part.endswith('rel="next"'):
            return part[1:part.index(">")]
    return None


def assert_png(data: bytes) -> tuple[int, int]:
    """Structural PNG check: signature, chunk CRCs, IHDR, and IDAT inflating to the right size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, kinds = 8, b"", []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc
        kinds.append(kind)
        if kind == b"IHDR":
            width, height = struct.unpack(">II", payload[:8])
        if kind == b"IDAT":
            idat += payload
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


@pytest.fixture(scope="module", params=FLAVORS)
def masto(request: pytest.FixtureRequest) -> Iterator[MastodonEmulator]:
    with MastodonEmulator(flavor=request.param, seed=1) as emu:
        yield emu


@pytest.fixture
def fresh_masto() -> Iterator[MastodonEmulator]:
    with MastodonEmulator(seed=2) as emu:
        yield emu


@pytest.fixture(scope="module")
def bsky() -> Iterator[BlueskyEmulator]:
    with BlueskyEmulator(seed=1) as emu:
        yield emu


def alice_id(emu: MastodonEmulator) -> str:
    path = ("/api/v1/account_by_username/alice" if emu.flavor == "gab"
            else "/api/v1/accounts/lookup?acct=alice")
    status, _, acc = get_json(emu.base_url + path)
    assert status == 200
    return acc["id"]  # type: ignore[index]


# --- Mastodon family -----------------------------------------------------------------------

def test_link_pagination_returns_exactly_alices_250_statuses(masto: MastodonEmulator) -> None:
    url: str | None = f"{masto.base_url}/api/v1/accounts/{alice_id(masto)}/statuses?limit=40"
    ids: list[str] = []
    sizes = []
    while url:
        status, headers, page = get_json(url)
        assert status == 200
        sizes.append(len(page))  # type: ignore[arg-type]
        ids += [s["id"] for s in page]  # type: ignore[union-attr]
        if page:
            assert f"min_id={page[0]['id']}" in headers["Link"]  # type: ignore[index]
        url = next_link(headers)
    assert len(ids) == 250
    assert ids == masto.dataset.by_username("alice").status_ids  # type: ignore[union-attr]
    assert sizes == [40] * 6 + [10]  # next only on a full page; the short page ends it


def test_link_header_carries_filters_and_host(masto: MastodonEmulator) -> None:
    acc = alice_id(masto)
    url = f"{masto.base_url}/api/v1/accounts/{acc}/statuses?exclude_reblogs=true&limit=30"
    _, headers, page = get_json(url, {"Host": "social.example:8443"})
    nxt = next_link(headers)
    assert nxt is not None and nxt.startswith("http://social.example:8443/api/v1/accounts/")
    assert "exclude_reblogs=true" in nxt and "limit=30" in nxt
    assert all(s["url"].startswith("http://social.example:8443/") for s in page)  # type: ignore[union-attr]
    got: list[str] = []
    url2: str | None = url
    while url2:
        _, headers, page = get_json(url2)
        got += [s["id"] for s in page]  # type: ignore[union-attr]
        url2 = next_link(headers)
    expected = [s.id for s in masto.dataset.timeline(acc) if not s.reblog_of_id]
    assert got == expected and len(expected) == 225


def test_min_id_returns_the_window_just_newer(fresh_masto: MastodonEmulator) -> None:
    ds = fresh_masto.dataset
    alice = ds.by_username("alice")
    ids = alice.status_ids  # type: ignore[union-attr]
    url = f"{fresh_masto.base_url}/api/v1/accounts/{alice.id}/statuses?min_id={ids[100]}&limit=5"  # type: ignore[union-attr]
    _, _, page = get_json(url)
    assert [s["id"] for s in page] == ids[95:100]  # type: ignore[union-attr]


def collect_thread(base: str, root_id: str) -> tuple[set[str], int]:
    """PLATFORMS.md §2.5 algorithm: re-fetch /context of nodes with unseen replies."""
    seen: dict[str, dict] = {}
    queue, fetches = [root_id], 0
    while queue:
        _, _, ctx = get_json(f"{base}/api/v1/statuses/{queue.pop()}/context")
        fetches += 1
        for s in ctx["descendants"]:  # type: ignore[index]
            seen[s["id"]] = s
        kids: dict[str, int] = {}
        for s in seen.values():
            kids[s["in_reply_to_id"]] = kids.get(s["in_reply_to_id"], 0) + 1
        queue = [i for i, s in seen.items() if s["replies_count"] > kids.get(i, 0)][:1]
    return set(seen), fetches


def test_context_caps_force_refetching_deep_replies(fresh_masto: MastodonEmulator) -> None:
    ds, base = fresh_masto.dataset, fresh_masto.base_url
    thread = set(ds.thread_chain_ids) | set(ds.thread_wide_ids)
    _, _, ctx = get_json(f"{base}/api/v1/statuses/{ds.thread_root_id}/context")
    assert len(ctx["descendants"]) == 60 < len(thread)  # type: ignore[index]
    _, _, authed = get_json(f"{base}/api/v1/statuses/{ds.thread_root_id}/context",
                            {"Authorization": "Bearer token"})
    assert {s["id"] for s in authed["descendants"]} == thread  # type: ignore[index]
    found, fetches = collect_thread(base, ds.thread_root_id)
    assert found == thread and fetches > 1
    # Depth cap: from c15 only 20 levels (c16..c35) come back.
    _, _, mid = get_json(f"{base}/api/v1/statuses/{ds.thread_chain_ids[14]}/context")
    assert [s["id"] for s in mid["descendants"]] == ds.thread_chain_ids[15:35]  # type: ignore[index]
    # Ancestor cap: the 40 nearest, oldest first; the root is lost.
    _, _, leaf = get_json(f"{base}/api/v1/statuses/{ds.thread_chain_ids[-1]}/context")
    assert [s["id"] for s in leaf["ancestors"]] == ds.thread_chain_ids[4:44]  # type: ignore[index]


def test_deleted_status_and_suspended_account(fresh_masto: MastodonEmulator) -> None:
    ds, base = fresh_masto.dataset, fresh_masto.base_url
    status, _, body = get_json(f"{base}/api/v1/statuses/{ds.deleted_ids[0]}")
    assert (status, body) == (404, {"error": "Record not found"})
    assert fetch(f"{base}/@alice/{ds.deleted_ids[0]}")[0] == 404
    status, _, acc = get_json(f"{base}/api/v1/accounts/lookup?acct=spammer")
    assert status == 200 and acc["suspended"] is True and acc["display_name"] == ""  # type: ignore[index]
    assert get_json(f"{base}/api/v1/accounts/{acc['id']}/statuses")[2] == []  # type: ignore[index]
    assert fetch(f"{base}/@spammer")[0] == 410
    assert get_json(f"{base}/api/v1/accounts/lookup?acct=nobody")[:3:2] == (404, {"error": "Record not found"})


def test_edit_history_and_hashtag_timeline(fresh_masto: MastodonEmulator) -> None:
    ds, base = fresh_masto.dataset, fresh_masto.base_url
    edited = ds.statuses[ds.edited_ids[0]]
    _, _, st = get_json(f"{base}/api/v1/statuses/{edited.id}")
    _, _, hist = get_json(f"{base}/api/v1/statuses/{edited.id}/history")
    assert st["edited_at"] == edited.edited_at and len(hist) == 3  # type: ignore[index,arg-type]
    assert hist[-1]["content"] == st["content"] and hist[0]["content"] != st["content"]  # type: ignore[index]
    url: str | None = f"{base}/api/v1/timelines/tag/archive?limit=40"
    ids: list[str] = []
    while url:
        _, headers, page = get_json(url)
        ids += [s["id"] for s in page]  # type: ignore[union-attr]
        url = next_link(headers)
    assert ids == [s.id for s in ds.tagged("archive")] and len(ids) > 40


def test_media_avatars_and_unicode_content(fresh_masto: MastodonEmulator) -> None:
    ds, base = fresh_masto.dataset, fresh_masto.base_url
    alice = ds.by_username("alice")
    statuses = [s for s in ds.timeline(alice.id) if s.media]  # type: ignore[union-attr]
    _, _, st = get_json(f"{base}/api/v1/statuses/{statuses[0].id}")
    mimes = set()
    for s in statuses:
        for m in s.media:
            status, headers, body = fetch(base + m.path)
            assert status == 200 and body == m.data
            mimes.add(headers["Content-Type"])
            if m.mime == "image/png":
                assert assert_png(body) == (m.width, m.height)
            else:
                assert body.startswith(b"GIF89a") and body.endswith(b";")
            assert_png(fetch(base + m.preview_path)[2])
    assert mimes == {"image/png", "image/gif"}
    assert st["media_attachments"][0]["url"] == base + statuses[0].media[0].path  # type: ignore[index]
    _, _, acc = get_json(f"{base}/api/v1/accounts/{alice.id}")  # type: ignore[union-attr]
    assert_png(fetch(acc["avatar"])[2]) and assert_png(fetch(acc["header"])[2])  # type: ignore[index]
    texts = " ".join(s.text for s in ds.timeline(alice.id))  # type: ignore[union-attr]
    assert "مرحبا" in texts and "档案" in texts and "🏳️‍🌈" in texts
    _, _, page = get_json(f"{base}/api/v1/accounts/{alice.id}/statuses?limit=40")  # type: ignore[union-attr]
    html = " ".join(s["content"] for s in page)  # type: ignore[union-attr]
    assert 'class="mention hashtag"' in html and "&lt;script&gt;" in html


def test_fork_distinguishing_endpoints(masto: MastodonEmulator) -> None:
    ds, base, flavor = masto.dataset, masto.base_url, masto.flavor
    _, _, inst = get_json(f"{base}/api/v1/instance")
    quote_id = ds.quote_ids[0]
    _, _, st = get_json(f"{base}/api/v1/statuses/{quote_id}")
    quoted = ds.statuses[quote_id].quote_of_id
    v2 = fetch(f"{base}/api/v2/instance")[0]
    if flavor == "mastodon":
        assert inst["version"].startswith("4.") and v2 == 200  # type: ignore[index]
        assert st["quote"]["quoted_status"]["id"] == quoted and "quotes_count" in st  # type: ignore[index]
    elif flavor == "truthsocial":
        assert "TruthSocial" in inst["version"] and v2 == 404  # type: ignore[index]
        assert list(st) == TRUTH_KEYS and st["quote_id"] == quoted  # type: ignore[arg-type,index]
        assert st["url"].endswith(f"/@alice/posts/{quote_id}")  # type: ignore[index]
        assert fetch(f"{base}/@alice/posts/{quote_id}")[0] == 200
        url = f"{base}/api/v1/statuses/{ds.thread_root_id}/context/descendants?sort=oldest"
        ids: list[str] = []
        while url:
            _, headers, page = get_json(url)
            ids += [s["id"] for s in page]  # type: ignore[union-attr]
            url = next_link(headers)  # type: ignore[assignment]
        assert ids == sorted(ds.thread_chain_ids + ds.thread_wide_ids, key=lambda i: (len(i), i))
    elif flavor == "gab":
        assert get_json(f"{base}/api/v1/accounts/lookup?acct=alice")[0] == 404
        alice = ds.by_username("alice")
        _, _, page = get_json(f"{base}/api/v1/accounts/{alice.id}/statuses"  # type: ignore[union-attr]
                              "?only_comments=true&exclude_replies=false&sort_by=newest")
        assert page and all(s["in_reply_to_id"] for s in page)  # type: ignore[union-attr]
        assert st["quote_of_id"] == quoted  # type: ignore[index]
        assert fetch(f"{base}/alice/posts/{quote_id}")[0] == 200
    else:
        assert "Pleroma" in inst["version"] and not quote_id.isdigit()  # type: ignore[index]
        assert st["pleroma"]["content"]["text/plain"].startswith(ds.statuses[quote_id].text)  # type: ignore[index]
        assert fetch(f"{base}/notice/{quote_id}")[0] == 200
        assert get_json(f"{base}/api/v1/accounts/alice")[2]["username"] == "alice"  # type: ignore[index]
    _, _, nodeinfo = get_json(f"{base}/.well-known/nodeinfo")
    _, _, info = get_json(nodeinfo["links"][0]["href"])  # type: ignore[index]
    assert info["software"]["name"] == ("pleroma" if flavor == "pleroma" else "mastodon")  # type: ignore[index]


def test_status_page_is_a_js_shell_with_og_tags(fresh_masto: MastodonEmulator) -> None:
    ds, base = fresh_masto.dataset, fresh_masto.base_url
    sid = ds.by_username("alice").status_ids[1]  # type: ignore[union-attr]
    status, headers, body = fetch(f"{base}/@alice/{sid}")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'property="og:title"' in page and f"/api/v1/statuses/{sid}" in page and "fetch(" in page


def test_mastodon_rate_limit(fresh_masto: MastodonEmulator) -> None:
    base = fresh_masto.base_url
    before = time.time()
    fresh_masto.faults.rate_limit(after=3, window=1.0)
    remaining = []
    for _ in range(3):
        status, headers, _ = fetch(f"{base}/api/v1/instance")
        assert status == 200 and headers["X-RateLimit-Limit"] == "3"
        remaining.append(headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    status, headers, body = fetch(f"{base}/api/v1/instance")
    assert (status, json.loads(body)) == (429, {"error": "Too many requests"})
    assert headers["X-RateLimit-Remaining"] == "0" and headers["Retry-After"] is None
    reset = datetime.strptime(headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(headers["X-RateLimit-Reset"]) == len("2024-09-01T12:05:00.000000Z")
    assert reset.replace(tzinfo=UTC).timestamp() > before  # ISO 8601 UTC, not epoch seconds
    end = fresh_masto.faults.window_end
    assert end is not None
    time.sleep(max(end - time.monotonic(), 0) + 0.05)
    assert fetch(f"{base}/api/v1/instance")[0] == 200
    assert fresh_masto.faults.throttled == 1


def test_server_error_truncate_and_request_log(fresh_masto: MastodonEmulator) -> None:
    base, faults = fresh_masto.base_url, fresh_masto.faults
    faults.server_error(r"/api/v1/instance", times=2, status=503)
    assert [fetch(f"{base}/api/v1/instance")[0] for _ in range(3)] == [503, 503, 200]
    faults.truncate(r"/api/v1/instance$", times=1)
    conn = http.client.HTTPConnection("127.0.0.1", fresh_masto.port, timeout=10)
    conn.request("GET", "/api/v1/instance")
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    faults.slow(r"nodeinfo", seconds=0.05, times=1)
    assert fetch(f"{base}/nodeinfo/2.0", {"User-Agent": "socialark-test"})[0] == 200
    _, method, path, headers = fresh_masto.requests[-1]
    assert (method, path, headers["user-agent"]) == ("GET", "/nodeinfo/2.0", "socialark-test")
    assert [r.time for r in fresh_masto.requests] == sorted(r.time for r in fresh_masto.requests)


def test_keep_alive_reuses_one_connection(fresh_masto: MastodonEmulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fresh_masto.port, timeout=10)
    for path in ("/api/v1/instance", "/api/v1/accounts/lookup?acct=dave"):
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(resp.read())
        sock = conn.sock
    assert conn.sock is sock is not None
    conn.close()


def test_dataset_is_deterministic() -> None:
    a, b, c = build_dataset("mastodon", 7), build_dataset("mastodon", 7), build_dataset("mastodon", 8)
    assert [s.id for s in a.statuses.values()] == [s.id for s in b.statuses.values()]
    assert [s.id for s in a.statuses.values()] != [s.id for s in c.statuses.values()]


# --- Bluesky --------------------------------------------------------------------------------

def xrpc(emu: BlueskyEmulator, nsid: str, query: str = "") -> tuple[int, Message, object]:
    return get_json(f"{emu.base_url}/xrpc/{nsid}?{query}")


def test_bluesky_author_feed_cursor_walk(bsky: BlueskyEmulator) -> None:
    alice = bsky.dataset.actor("alice.test")
    uris, cursor, pages = [], None, 0
    while True:
        q = "actor=alice.test&limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
        status, _, body = xrpc(bsky, "app.bsky.feed.getAuthorFeed", q)
        assert status == 200
        pages += 1
        uris += [i.get("reason", {}).get("uri") or i["post"]["uri"] for i in body["feed"]]  # type: ignore[index]
        cursor = body.get("cursor")  # type: ignore[union-attr]
        if not cursor:
            break
    assert pages == 3 and len(uris) == 250
    assert uris == [r.uri for _, r in bsky.dataset.feed(alice.did)]  # type: ignore[union-attr]
    assert xrpc(bsky, "app.bsky.feed.getAuthorFeed", "actor=alice.test&cursor=%21%21")[2] == {"feed": []}
    _, _, first = xrpc(bsky, "app.bsky.feed.getAuthorFeed", "actor=alice.test&includePins=true&limit=5")
    assert first["feed"][0]["reason"]["$type"] == "app.bsky.feed.defs#reasonPin"  # type: ignore[index]
    assert first["feed"][0]["post"]["uri"] == bsky.dataset.pinned_uri  # type: ignore[index]
    _, _, media = xrpc(bsky, "app.bsky.feed.getAuthorFeed", "actor=alice.test&filter=posts_with_media&limit=100")
    assert media["feed"] and all("images" in str(i["post"]["embed"]) for i in media["feed"])  # type: ignore[index]


def test_bluesky_errors(bsky: BlueskyEmulator) -> None:
    ds = bsky.dataset
    cases = [
        ("app.bsky.actor.getProfile", "actor=nobody.test", "InvalidRequest", "Profile not found"),
        ("app.bsky.actor.getProfile", "actor=mallory.test", "AccountTakedown", "Account has been suspended"),
        ("app.bsky.feed.getAuthorFeed", "actor=eve.test", "AccountDeactivated", "Account is deactivated"),
        ("app.bsky.feed.getPostThread", f"uri={ds.deleted_uri}", "NotFound", f"Post not found: {ds.deleted_uri}"),
    ]
    for nsid, query, error, message in cases:
        assert xrpc(bsky, nsid, query)[::2] == (400, {"error": error, "message": message})
    mallory = ds.actor("mallory.test")
    assert xrpc(bsky, "com.atproto.sync.getRepo", f"did={mallory.did}")[2]["error"] == "RepoTakendown"  # type: ignore[union-attr,index]
    too_many = "&".join(f"uris={quote(ds.thread_root)}" for _ in range(26))
    assert xrpc(bsky, "app.bsky.feed.getPosts", too_many)[0] == 400


def test_bluesky_thread_depth_and_not_found_parent(bsky: BlueskyEmulator) -> None:
    ds = bsky.dataset

    def chain(node: dict) -> list[str]:
        out = []
        while node.get("replies"):
            node = node["replies"][0]
            out.append(node["post"]["uri"])
        return out

    _, _, default = xrpc(bsky, "app.bsky.feed.getPostThread", f"uri={ds.thread_root}")
    assert chain(default["thread"]) == ds.thread_chain[:6]  # type: ignore[index]
    _, _, deep = xrpc(bsky, "app.bsky.feed.getPostThread", f"uri={ds.thread_root}&depth=50")
    assert chain(deep["thread"]) == ds.thread_chain  # type: ignore[index]
    _, _, orphan = xrpc(bsky, "app.bsky.feed.getPostThread", f"uri={ds.orphan_reply}")
    assert orphan["thread"]["parent"] == {  # type: ignore[index]
        "$type": "app.bsky.feed.defs#notFoundPost", "uri": ds.deleted_uri, "notFound": True}
    _, _, leaf = xrpc(bsky, "app.bsky.feed.getPostThread", f"uri={ds.thread_chain[-1]}&parentHeight=3")
    node, ups = leaf["thread"], 0  # type: ignore[index]
    while "parent" in node:
        node, ups = node["parent"], ups + 1
    assert ups == 3


def read_car(data: bytes) -> tuple[dict, dict[bytes, bytes]]:
    def varint(pos: int) -> tuple[int, int]:
        n = shift = 0
        while True:
            byte = data[pos]
            n |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                return n, pos

    length, pos = varint(0)
    header = cbor2.loads(data[pos:pos + length])
    pos += length
    blocks = {}
    while pos < len(data):
        length, pos = varint(pos)
        cid, block = data[pos:pos + 36], data[pos + 36:pos + length]
        assert cid[:4] in (b"\x01\x71\x12\x20", b"\x01\x55\x12\x20")
        assert hashlib.sha256(block).digest() == cid[4:]
        blocks[cid] = block
        pos += length
    return header, blocks


def test_bluesky_discovery_car_export_and_blobs(bsky: BlueskyEmulator) -> None:
    ds = bsky.dataset
    _, _, resolved = xrpc(bsky, "com.atproto.identity.resolveHandle", "handle=alice.test")
    did = resolved["did"]  # type: ignore[index]
    _, _, doc = get_json(f"{bsky.plc_url}/{did}")
    assert doc["alsoKnownAs"] == ["at://alice.test"]  # type: ignore[index]
    pds = next(s["serviceEndpoint"] for s in doc["service"] if s["id"] == "#atproto_pds")  # type: ignore[index]
    assert pds == bsky.pds_url
    status, headers, body = fetch(f"{pds}/xrpc/com.atproto.sync.getRepo?did={did}")
    assert status == 200 and headers["Content-Type"] == "application/vnd.ipld.car"
    header, blocks = read_car(body)
    assert header["version"] == 1
    commit = cbor2.loads(blocks[header["roots"][0].value[1:]])
    assert commit["did"] == did and commit["version"] == 3

    keys: dict[str, bytes] = {}

    def walk(cid: bytes | None) -> None:
        if cid is None:
            return
        node = cbor2.loads(blocks[cid])
        walk(node["l"].value[1:] if node["l"] else None)
        prev = b""
        for e in node["e"]:
            key = prev[:e["p"]] + e["k"]
            keys[key.decode()] = e["v"].value[1:]
            prev = key
            walk(e["t"].value[1:] if e["t"] else None)

    walk(commit["data"].value[1:])
    assert list(keys) == sorted(keys)  # MST in-order walk yields sorted keys
    alice = ds.actor(did)
    assert set(keys) == {f"{r.collection}/{r.rkey}" for r in alice.records if not r.deleted}  # type: ignore[union-attr]
    rec = ds.posts[ds.quote_uris[1]].record
    value = cbor2.loads(blocks[keys[f"{rec.collection}/{rec.rkey}"]])
    assert value["text"] == rec.value["text"]
    blob_cid = value["embed"]["media"]["images"][0]["image"]["ref"].value[1:]
    status, _, blob = fetch(f"{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={CID(blob_cid)}")
    assert status == 200 and hashlib.sha256(blob).digest() == blob_cid[4:]
    assert_png(blob)
    _, _, view = xrpc(bsky, "app.bsky.feed.getPosts", f"uris={quote(rec.uri)}")
    thumb = view["posts"][0]["embed"]["media"]["images"][0]["thumb"]  # type: ignore[index]
    assert fetch(thumb)[2] == blob


def test_bluesky_list_records_ends_with_empty_page(bsky: BlueskyEmulator) -> None:
    alice = bsky.dataset.actor("alice.test")
    rkeys, cursor, last_body = [], "", None
    while True:
        q = f"repo={alice.did}&collection=app.bsky.feed.post&limit=100" + (f"&cursor={cursor}" if cursor else "")  # type: ignore[union-attr]
        _, _, last_body = xrpc(bsky, "com.atproto.repo.listRecords", q)
        rkeys += [r["uri"].rsplit("/", 1)[1] for r in last_body["records"]]  # type: ignore[index]
        if "cursor" not in last_body:  # type: ignore[operator]
            break
        cursor = last_body["cursor"]  # type: ignore[index]
    assert last_body == {"records": []}
    expected = [r.rkey for r in alice.records if r.collection == "app.bsky.feed.post" and not r.deleted]  # type: ignore[union-attr]
    assert rkeys == sorted(expected, reverse=True)


def test_bluesky_rate_limit_and_pages() -> None:
    with BlueskyEmulator(seed=3) as emu:
        emu.faults.rate_limit(after=2, window=30)
        ok = fetch(f"{emu.base_url}/xrpc/app.bsky.actor.getProfile?actor=alice.test")
        assert ok[0] == 200 and ok[1]["RateLimit-Policy"] == "2;w=30"
        fetch(f"{emu.base_url}/xrpc/app.bsky.actor.getProfile?actor=alice.test")
        status, headers, body = fetch(f"{emu.base_url}/xrpc/app.bsky.actor.getProfile?actor=bob.test")
        assert status == 429
        assert json.loads(body) == {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
        assert headers["RateLimit-Remaining"] == "0" and headers["RateLimit-Limit"] == "2"
        assert int(headers["RateLimit-Reset"]) > time.time()
        emu.faults.clear()
        rkey = emu.dataset.thread_root.rsplit("/", 1)[1]
        status, headers, body = fetch(f"{emu.base_url}/profile/alice.test/post/{rkey}")
        assert status == 200 and f'href="{emu.dataset.thread_root}"' in body.decode()
        assert urlsplit(emu.base_url).hostname == "127.0.0.1"
