"""Real-HTTP checks of the Telegram, Reddit, Discourse and ID-enumeration emulators against
PLATFORMS.md §4-§7 and the §9 matrix."""

from __future__ import annotations

import http.client
import json
import re
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from parsel import Selector

from tests.emulators.discourse import DiscourseEmulator
from tests.emulators.idsite import IdSiteEmulator
from tests.emulators.reddit import RedditEmulator
from tests.emulators.telegram import TelegramEmulator, abbreviate


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get_json(url: str) -> tuple[int, Message, Any]:
    status, headers, body = fetch(url)
    return status, headers, json.loads(body)


def raw_get(url: str) -> http.client.HTTPResponse:
    """GET without following redirects."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = b"".join(data[m.end():m.end() + struct.unpack(">I", data[m.start() - 4:m.start()])[0]]
                    for m in re.finditer(b"IDAT", data))
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


def bg_url(style: str) -> str:
    m = re.search(r"background-image:url\('([^']+)'\)", style)
    assert m, style
    return m[1]


# --- Telegram -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tg() -> Iterator[TelegramEmulator]:
    with TelegramEmulator(seed=1) as emu:
        yield emu


def test_telegram_before_paging_reaches_first_message(tg: TelegramEmulator) -> None:
    ch = tg.dataset.channel("harbourwatch")
    assert ch is not None and len(ch.messages) == 120 and ch.deleted_ids and ch.album_members
    url: str | None = f"{tg.base_url}/s/HarbourWatch"
    seen: list[int] = []
    pages = 0
    while url:
        status, _, body = fetch(url)
        assert status == 200
        sel = Selector(text=body.decode())
        ids = [int(p.split("/")[1]) for p in sel.css("div.tgme_widget_message::attr(data-post)").getall()]
        assert ids == sorted(ids) and 0 < len(ids) <= 20
        assert not set(ids) & set(seen)
        seen = ids + seen
        pages += 1
        more = sel.css("a.tme_messages_more[data-before]")
        assert sel.css("div.tgme_channel_info_header_title span::text").get() == ch.title
        if more:
            assert more.attrib["data-before"] == str(ids[0])
            url = urljoin(url, more.attrib["href"])
        else:
            url = None
    assert pages == 6
    assert seen == ch.visible_ids and seen[0] == 1
    assert not set(seen) & set(ch.deleted_ids) and not set(seen) & set(ch.album_members)


def test_telegram_after_paging_and_message_markup(tg: TelegramEmulator) -> None:
    ch = tg.dataset.channel("harbourwatch")
    assert ch is not None
    url: str | None = f"{tg.base_url}/s/HarbourWatch?after=0"
    seen: list[int] = []
    while url:
        sel = Selector(text=fetch(url)[2].decode())
        seen += [int(p.split("/")[1]) for p in sel.css(".tgme_widget_message::attr(data-post)").getall()]
        nxt = sel.css("a.tme_messages_more[data-after]::attr(href)").get()
        url = urljoin(url, nxt) if nxt else None
    assert seen == ch.visible_ids
    # Every feature of §4.2 appears, matching ground truth.
    for msg in ch.messages.values():
        sel = Selector(text=fetch(f"{tg.base_url}/HarbourWatch/{msg.id}?embed=1&mode=tme")[2].decode())
        card = sel.css("div.tgme_widget_message")
        assert card.attrib["data-post"] == f"HarbourWatch/{msg.id}"
        assert card.css("time::attr(datetime)").get() == msg.date
        assert card.css(".tgme_widget_message_views::text").get() == abbreviate(msg.views)
        photos = card.css("a.tgme_widget_message_photo_wrap::attr(style)").getall()
        assert len(photos) == len(msg.photo_paths)
        if len(msg.photo_paths) > 1:
            singles = card.css("a.grouped_media_wrap::attr(href)").getall()
            assert [s.rsplit("/", 1)[1] for s in singles] == [f"{i}?single" for i in msg.album_ids]
        assert bool(card.css("video.tgme_widget_message_video")) == bool(msg.video_path)
        assert bool(card.css("a.tgme_widget_message_link_preview")) == bool(msg.link_preview)
        assert bool(card.css(".tgme_widget_message_forwarded_from")) == bool(msg.forwarded_from)
        assert bool(card.css(".tgme_widget_message_edited")) == msg.edited
        reply = card.css("a.tgme_widget_message_reply::attr(href)").get()
        assert reply == (f"{tg.base_url}/HarbourWatch/{msg.reply_to_id}" if msg.reply_to_id else None)
        if not msg.service:
            text = "".join(card.css(".js-message_text ::text").getall())
            assert text == msg.text_plain.replace("\n", "")  # <br/> has no text node
    views = {abbreviate(m.views) for m in ch.messages.values()}
    assert any(v.endswith("K") for v in views) and any(v.endswith("M") for v in views)


def test_telegram_media_files(tg: TelegramEmulator) -> None:
    ch = tg.dataset.channel("harbourwatch")
    assert ch is not None
    album = next(m for m in ch.messages.values() if len(m.photo_paths) > 1)
    video = next(m for m in ch.messages.values() if m.video_path)
    sel = Selector(text=fetch(f"{tg.base_url}/s/HarbourWatch/{album.id}")[2].decode())
    card = sel.css(f'div.tgme_widget_message[data-post="HarbourWatch/{album.id}"]')
    for style in card.css("a.tgme_widget_message_photo_wrap::attr(style)").getall():
        status, headers, data = fetch(bg_url(style))
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert png_size(data) == (40, 30)
    sel = Selector(text=fetch(f"{tg.base_url}/HarbourWatch/{video.id}?embed=1")[2].decode())
    status, headers, data = fetch(sel.css("video::attr(src)").get())
    assert status == 200 and headers["Content-Type"] == "video/mp4" and data[4:8] == b"ftyp"
    assert png_size(fetch(bg_url(sel.css("i.tgme_widget_message_video_thumb::attr(style)").get()))[2])


def test_telegram_expiring_media_urls() -> None:
    with TelegramEmulator(seed=3, media_ttl=3600) as emu:
        sel = Selector(text=fetch(f"{emu.base_url}/s/tinychan")[2].decode())
        photo = fetch(emu.base_url + "/tinychan")[2].decode()
        src = Selector(text=photo).css("img.tgme_page_photo_image::attr(src)").get()
        assert "expires=" in src and "token=" in src
        assert fetch(src)[0] == 200
        assert fetch(src.replace("token=", "token=0"))[0] == 403
        assert len(sel.css("div.tgme_widget_message")) == 5
        emu.media_ttl = -60.0  # already expired when issued
        src = Selector(text=fetch(emu.base_url + "/tinychan")[2].decode()).css(
            "img.tgme_page_photo_image::attr(src)").get()
        assert fetch(src)[0] == 403


def test_telegram_errors_private_and_deleted(tg: TelegramEmulator) -> None:
    ch = tg.dataset.channel("harbourwatch")
    assert ch is not None
    for name in ("secretchan", "no_such_channel"):
        resp = raw_get(f"{tg.base_url}/s/{name}")
        assert resp.status == 302 and resp.getheader("Location") == f"{tg.base_url}/{name}"
        status, _, body = fetch(f"{tg.base_url}/s/{name}")  # follows the redirect
        assert status == 200 and b"tgme_channel_info" not in body and b"tgme_page" in body
    assert b"Channel is private" in fetch(f"{tg.base_url}/secretchan")[2]
    for gone in ch.deleted_ids[:3]:
        status, _, body = fetch(f"{tg.base_url}/HarbourWatch/{gone}?embed=1&mode=tme")
        assert status == 200
        assert Selector(text=body.decode()).css(".tgme_widget_message_error::text").get() == "Post not found"
    member, first = next(iter(ch.album_members.items()))
    body = fetch(f"{tg.base_url}/HarbourWatch/{member}?embed=1")[2].decode()
    assert f'data-post="HarbourWatch/{first}"' in body
    landing = Selector(text=fetch(f"{tg.base_url}/HarbourWatch")[2].decode())
    assert landing.css(".tgme_page_extra::text").get() == "12 345 subscribers"


def test_telegram_rate_limit_429() -> None:
    with TelegramEmulator(seed=1) as emu:
        emu.faults.rate_limit(after=2, window=600)
        statuses = [fetch(f"{emu.base_url}/s/tinychan")[0] for _ in range(4)]
        assert statuses == [200, 200, 429, 429] and emu.faults.throttled == 2


# --- Reddit ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rd() -> Iterator[RedditEmulator]:
    with RedditEmulator(seed=1) as emu:
        yield emu


def test_reddit_listing_paging(rd: RedditEmulator) -> None:
    sub = rd.dataset.sub("harbourtown")
    assert sub is not None and len(sub.post_ids) == 260
    seen: list[str] = []
    after: str | None = None
    pages = []
    while True:
        q = {"limit": 100, "raw_json": 1, "count": len(seen), **({"after": after} if after else {})}
        status, _, body = get_json(f"{rd.base_url}/r/harbourtown/new.json?{urlencode(q)}")
        assert status == 200 and body["kind"] == "Listing"
        data = body["data"]
        assert data["dist"] == len(data["children"])
        seen += [c["data"]["name"] for c in data["children"]]
        pages.append(data)
        after = data["after"]
        if after is None:
            break
        assert after == seen[-1]
    assert [len(p["children"]) for p in pages] == [100, 100, 60]
    assert pages[0]["before"] is None and pages[1]["before"] == pages[1]["children"][0]["data"]["name"]
    newest_first = sorted(sub.post_ids, key=lambda i: -rd.dataset.posts[i].created_utc)
    assert seen == [f"t3_{i}" for i in newest_first]
    # `before` walks back; `limit` is clamped to 100.
    back = get_json(f"{rd.base_url}/r/harbourtown/new.json?limit=100&count=100&before={seen[100]}")[2]
    assert [c["data"]["name"] for c in back["data"]["children"]] == seen[:100]
    assert len(get_json(f"{rd.base_url}/r/harbourtown/top.json?limit=500")[2]["data"]["children"]) == 100
    hot = get_json(f"{rd.base_url}/r/harbourtown/hot.json")[2]["data"]["children"]
    assert len(hot) == 25 and hot[0]["data"]["stickied"]


def test_reddit_raw_json_and_user_listings(rd: RedditEmulator) -> None:
    ds = rd.dataset
    post = next(p for p in ds.posts.values() if "&" in p.selftext)
    escaped = get_json(f"{rd.base_url}/by_id/t3_{post.id}.json")[2]["data"]["children"][0]["data"]
    raw = get_json(f"{rd.base_url}/by_id/t3_{post.id}.json?raw_json=1")[2]["data"]["children"][0]["data"]
    assert raw["selftext"] == post.selftext and "&amp;" in escaped["selftext"]
    assert raw["selftext_html"].startswith("<!-- SC_OFF --><div class=\"md\">")
    assert escaped["selftext_html"].startswith("&lt;!-- SC_OFF --&gt;")
    mine = {p.fullname for p in ds.posts.values() if p.author == "alice_archives"}
    got = get_json(f"{rd.base_url}/user/alice_archives/submitted.json?limit=100&raw_json=1")[2]
    assert {c["data"]["name"] for c in got["data"]["children"]} == mine and got["data"]["after"] is None
    comments = get_json(f"{rd.base_url}/user/bob_boats/comments.json?limit=25")[2]["data"]
    assert all(c["kind"] == "t1" and c["data"]["author"] == "bob_boats" for c in comments["children"])
    assert comments["children"] and comments["after"] is not None
    assert get_json(f"{rd.base_url}/user/spam_king/about.json")[2]["data"]["is_suspended"] is True
    assert get_json(f"{rd.base_url}/user/nobody_here/about.json")[0] == 404


def _collect(things: list[dict[str, Any]], found: dict[str, dict[str, Any]],
             stubs: list[dict[str, Any]]) -> None:
    for t in things:
        if t["kind"] == "more":
            stubs.append(t["data"])
            continue
        found[t["data"]["id"]] = t["data"]
        if t["data"]["replies"]:
            _collect(t["data"]["replies"]["data"]["children"], found, stubs)


def test_reddit_comment_tree_expands_to_ground_truth(rd: RedditEmulator) -> None:
    ds = rd.dataset
    post = ds.posts[ds.deep_post_id]
    truth = {c.id: c for c in ds.comments_of(post.id)}
    assert len(truth) >= 200
    status, _, body = get_json(f"{rd.base_url}/r/harbourtown/comments/{post.id}/x.json?raw_json=1")
    assert status == 200 and len(body) == 2 and body[0]["data"]["children"][0]["data"]["id"] == post.id
    found: dict[str, dict[str, Any]] = {}
    stubs: list[dict[str, Any]] = []
    _collect(body[1]["data"]["children"], found, stubs)
    assert len(found) == 200
    kinds = {"continue": 0, "more": 0}
    pending = list(stubs)
    while pending:
        stub = pending.pop()
        if stub["id"] == "_":
            assert stub["count"] == 0 and stub["children"] == [] and stub["name"] == "t1__"
            kinds["continue"] += 1
            parent = stub["parent_id"].removeprefix("t1_")
            sub = get_json(f"{rd.base_url}/comments/{post.id}/_/{parent}.json?raw_json=1")[2]
            new_stubs: list[dict[str, Any]] = []
            _collect(sub[1]["data"]["children"], found, new_stubs)
            pending += new_stubs
            continue
        kinds["more"] += 1
        assert stub["count"] >= len(stub["children"]) > 0
        for i in range(0, len(stub["children"]), 100):
            q = urlencode({"api_type": "json", "link_id": post.fullname, "raw_json": 1,
                           "children": ",".join(stub["children"][i:i + 100])})
            things = get_json(f"{rd.base_url}/api/morechildren.json?{q}")[2]["json"]["data"]["things"]
            for t in things:
                if t["kind"] == "more":
                    pending.append(t["data"])
                else:
                    assert t["data"]["replies"] == ""
                    found[t["data"]["id"]] = t["data"]
    assert kinds["continue"] >= 1 and kinds["more"] >= 3
    assert set(found) == set(truth)
    for cid, data in found.items():
        assert data["parent_id"] == truth[cid].parent_id and data["body"] == truth[cid].body
    assert {d["author"] for d in found.values()} >= {"[deleted]"}
    assert any(d["body"] == "[removed]" for d in found.values())
    # §5.2 errors of morechildren.
    assert get_json(f"{rd.base_url}/api/morechildren.json?children=abc")[2] == {"message": "Forbidden", "error": 403}
    many = ",".join(list(truth)[:101])
    assert fetch(f"{rd.base_url}/api/morechildren.json?link_id={post.fullname}&children={many}")[0] == 400


def test_reddit_media_gallery_video_and_html(rd: RedditEmulator) -> None:
    ds = rd.dataset
    gallery = get_json(f"{rd.base_url}/comments/{ds.gallery_post_id}.json?raw_json=1")[2][0]
    g = gallery["data"]["children"][0]["data"]
    assert g["is_gallery"] and len(g["gallery_data"]["items"]) == 3
    for item in g["gallery_data"]["items"]:
        meta = g["media_metadata"][item["media_id"]]
        assert meta["status"] == "valid" and meta["m"] == "image/png"
        assert png_size(fetch(meta["s"]["u"])[2]) == (meta["s"]["x"], meta["s"]["y"])
    v = get_json(f"{rd.base_url}/by_id/t3_{ds.video_post_id}.json?raw_json=1")[2]["data"]["children"][0]["data"]
    assert v["is_video"] and v["domain"] == "v.redd.it"
    status, headers, data = fetch(v["media"]["reddit_video"]["fallback_url"])
    assert status == 200 and headers["Content-Type"] == "video/mp4" and data[4:8] == b"ftyp"
    assert b"DASH_480.mp4" in fetch(v["media"]["reddit_video"]["dash_url"])[2]
    img = get_json(f"{rd.base_url}/by_id/t3_{ds.image_post_ids[0]}.json?raw_json=1")[2]["data"]["children"][0]["data"]
    assert img["domain"] == "i.redd.it" and png_size(fetch(img["url"])[2])
    assert png_size(fetch(img["preview"]["images"][0]["source"]["url"])[2])
    post = ds.posts[ds.deep_post_id]
    status, _, page = fetch(rd.base_url + post.permalink)
    sel = Selector(text=page.decode())
    assert status == 200 and sel.css("div.thing.link::attr(data-fullname)").get() == post.fullname
    assert len(sel.css("div.thing.comment")) == len(ds.comments_of(post.id))


def test_reddit_errors() -> None:
    with RedditEmulator(seed=1) as emu:
        b = emu.base_url
        status, _, body = get_json(f"{b}/r/secretclub/new.json")
        assert (status, body) == (403, {"reason": "private", "message": "Forbidden", "error": 403})
        status, _, body = get_json(f"{b}/r/gonesub/about.json")
        assert (status, body) == (404, {"reason": "banned", "message": "Not Found", "error": 404})
        status, _, body = get_json(f"{b}/r/edgysub/hot.json")
        assert status == 403 and body["reason"] == "quarantined"
        assert get_json(f"{b}/comments/zzzzzzz.json")[:3:2] == (404, {"message": "Not Found", "error": 404})


def test_reddit_rate_limit_headers_and_429() -> None:
    with RedditEmulator(seed=1, default_limit=50, default_window=600) as emu:
        b = emu.base_url
        remaining = []
        for path in ("/r/quietsub/new.json", "/r/nonexistent/new.json", "/r/quietsub/about.json"):
            _, headers, _ = fetch(b + path)
            remaining.append(float(headers["x-ratelimit-remaining"]))
            assert int(headers["x-ratelimit-reset"]) > 0 and headers["x-ratelimit-used"].isdigit()
        assert remaining == [49.0, 48.0, 47.0]
        emu.faults.rate_limit(after=2, window=600)
        results = [fetch(b + "/r/quietsub/new.json") for _ in range(3)]
        assert [r[0] for r in results] == [200, 200, 429]
        assert [r[1]["x-ratelimit-remaining"] for r in results] == ["1.0", "0.0", "0.0"]
        assert json.loads(results[2][2]) == {"message": "Too Many Requests", "error": 429}
        assert int(results[2][1]["x-ratelimit-used"]) == 2


# --- Discourse ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dc() -> Iterator[DiscourseEmulator]:
    with DiscourseEmulator(seed=1) as emu:
        yield emu


def test_discourse_latest_paging(dc: DiscourseEmulator) -> None:
    ds = dc.dataset
    url: str | None = f"{dc.base_url}/latest.json"
    ids: list[int] = []
    while url:
        status, _, body = get_json(url)
        assert status == 200
        ids += [t["id"] for t in body["topic_list"]["topics"]]
        more = body["topic_list"].get("more_topics_url")
        url = dc.base_url + more.replace("/latest", "/latest.json", 1) if more else None
    public = {t.id for t in ds.topics.values() if ds.public(t.id)}
    assert len(ids) == len(set(ids)) == len(public) == 70 and set(ids) == public
    cat = get_json(f"{dc.base_url}/c/photos/2.json?page=1")[2]["topic_list"]
    assert all(t["category_id"] == 2 for t in cat["topics"]) and "more_topics_url" not in cat
    assert get_json(f"{dc.base_url}/c/staff-lounge/3.json")[:3:2] == (
        403, {"errors": ["You are not permitted to view the requested resource."],
              "error_type": "invalid_access"})
    assert get_json(f"{dc.base_url}/t/1.json")[2]["error_type"] == "not_found"


def test_discourse_post_stream_batches_reach_every_post(dc: DiscourseEmulator) -> None:
    ds = dc.dataset
    tid = ds.big_topic_id
    status, _, topic = get_json(f"{dc.base_url}/t/{tid}.json")
    assert status == 200 and topic["chunk_size"] == 20
    stream = topic["post_stream"]["stream"]
    got = {p["id"]: p for p in topic["post_stream"]["posts"]}
    assert stream == ds.stream(tid) and len(stream) == 137 and len(got) == 20
    missing = [i for i in stream if i not in got]
    batches = 0
    while missing:
        q = "&".join(f"post_ids[]={i}" for i in missing[:30])  # more than the server honours
        body = get_json(f"{dc.base_url}/t/{tid}/posts.json?{q}")[2]
        assert body["id"] == tid
        assert len(body["post_stream"]["posts"]) == min(20, len(missing))
        got.update({p["id"]: p for p in body["post_stream"]["posts"]})
        missing = [i for i in stream if i not in got]
        batches += 1
    assert batches == 6 and list(got) != [] and set(got) == set(stream)
    assert [got[i]["post_number"] for i in stream] == sorted(got[i]["post_number"] for i in stream)
    assert not set(ds.hidden_post_ids) & set(got)
    gone = got[ds.user_deleted_post_ids[0]]
    assert gone["user_deleted"] and gone["deleted_at"] and gone["cooked"] == "<p>(post deleted by author)</p>"
    printed = get_json(f"{dc.base_url}/t/{topic['slug']}/{tid}.json?print=true")[2]
    assert [p["id"] for p in printed["post_stream"]["posts"]] == stream
    imgs = Selector(text=got[stream[0]]["cooked"]).css("img::attr(src)").getall()
    assert imgs and all("/uploads/default/original/1X/" in s for s in imgs)
    assert png_size(fetch(imgs[0])[2]) == (32, 24)
    gif_link = next(Selector(text=p["cooked"]).css("a.attachment::attr(href)").get()
                    for p in got.values() if "attachment" in p["cooked"])
    assert fetch(gif_link)[2][:6] == b"GIF89a"
    avatar = dc.base_url + got[stream[0]]["avatar_template"].replace("{size}", "48")
    assert png_size(fetch(avatar)[2]) == (48, 48)
    raw = get_json(f"{dc.base_url}/posts/{stream[1]}.json")[2]
    assert raw["raw"] == ds.posts[stream[1]].raw


def test_discourse_latest_posts_before_paging(dc: DiscourseEmulator) -> None:
    ds = dc.dataset
    url = f"{dc.base_url}/posts.json"
    seen: list[int] = []
    while True:
        batch = [p["id"] for p in get_json(url)[2]["latest_posts"]]
        if not batch:
            break
        assert batch == sorted(batch, reverse=True) and not set(batch) & set(seen)
        seen += batch
        url = f"{dc.base_url}/posts.json?before={batch[-1]}"
    expected = {i for t in ds.topics.values() if ds.public(t.id) for i in ds.stream(t.id)}
    assert set(seen) == expected


def test_discourse_crawler_view_pages(dc: DiscourseEmulator) -> None:
    topic = dc.dataset.topics[dc.dataset.big_topic_id]
    url: str | None = f"{dc.base_url}/t/{topic.slug}/{topic.id}"
    numbers: list[int] = []
    while url:
        sel = Selector(text=fetch(url)[2].decode())
        numbers += [int(n) for n in sel.css("div.crawler-post meta[itemprop=position]::attr(content)").getall()]
        nxt = sel.css("a[rel=next]::attr(href)").get()
        url = urljoin(url, nxt) if nxt else None
    assert numbers == [dc.dataset.posts[i].post_number for i in dc.dataset.stream(topic.id)]


def test_discourse_429_forms() -> None:
    with DiscourseEmulator(seed=1) as emu:
        emu.faults.rate_limit(after=1, window=600)
        assert fetch(f"{emu.base_url}/latest.json")[0] == 200
        status, headers, body = fetch(f"{emu.base_url}/latest.json")
        assert status == 429 and headers["Content-Type"].startswith("text/plain")
        assert headers["Discourse-Rate-Limit-Error-Code"] == "ip_10_secs_limit"
        wait = int(headers["Retry-After"])
        assert 0 < wait <= 600 and f"Please retry again in {wait} seconds." in body.decode()
        emu.rate_limit_style = "json"
        status, headers, body = fetch(f"{emu.base_url}/t/{emu.dataset.big_topic_id}.json")
        data = json.loads(body)
        assert status == 429 and data["error_type"] == "rate_limit"
        assert data["extras"]["wait_seconds"] == int(headers["Retry-After"]) > 0
        emu.faults.clear()
        assert fetch(f"{emu.base_url}/latest.json")[0] == 200


# --- ID-enumeration site --------------------------------------------------------------------------
def test_idsite_enumeration_gaps() -> None:
    with IdSiteEmulator(seed=1) as emu:
        ds = emu.dataset
        found = []
        for n in range(ds.first_id, ds.last_id + 6):
            status, _, body = fetch(f"{emu.base_url}/post/{n}")
            if status == 200:
                found.append(n)
                sel = Selector(text=body.decode())
                post = ds.posts[n]
                assert sel.css("title::text").get() == post.title
                assert sel.css("a.author--name::text").get() == post.author_name
                assert sel.css(".card--body p::text").get() == post.text
            else:
                assert status == 404 and len(body) < 100
        assert found == ds.existing_ids and ds.missing_ids
        assert 0.3 < len(found) / (ds.last_id - ds.first_id + 1) < 0.8
        post = ds.posts[ds.existing_ids[3]]
        sel = Selector(text=fetch(f"{emu.base_url}/p/{post.hex_id}")[2].decode())
        assert sel.css(".card--post-container::attr(data-id)").get() == str(post.id)
        assert png_size(fetch(sel.css("img.mc-image::attr(src)").get())[2]) == (24, 18)
        assert fetch(f"{emu.base_url}/v3/uuidConversion/post/{post.id}")[2].decode() == post.hex_id
        api = get_json(f"{emu.base_url}/api/post/{post.id}")[2]
        assert api["post"]["_id"] == post.hex_id and api["post"]["createdAt"] == post.created_at
        assert fetch(f"{emu.base_url}/api/post/{ds.missing_ids[0]}")[0] == 404
        emu.faults.rate_limit(after=1, window=600)
        fetch(f"{emu.base_url}/post/{post.id}")
        status, headers, _ = fetch(f"{emu.base_url}/post/{post.id}")
        assert status == 429 and headers["x-ratelimit-remaining"] == "0"
        assert int(headers["x-ratelimit-reset"]) > 1_700_000_000
