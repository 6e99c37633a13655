"""An x.com-like emulator: a logged-in SPA over GraphQL, media and video hosts, a 429 window.

* Pages (``/<handle>``, ``/<handle>/status/<id>``, ``/search?q=``) need cookie ``auth_token``;
  without it they answer 302 to ``/i/flow/login``. The shell loads ``/static/main.js``, which
  reads ``ct0`` from ``document.cookie`` and calls ``/i/api/graphql/<queryId>/<Operation>`` with
  ``x-csrf-token`` (must equal ``ct0``), a Bearer ``authorization`` and JSON ``variables`` /
  ``features`` query parameters, renders ``article[data-testid=tweet]`` elements with
  ``name=small`` images, and loads the next page of a timeline (Bottom cursor) when scrolled to
  the end. A failing call renders "Something went wrong. Try reloading." (as x.com does).
* GraphQL answers carry ``x-rate-limit-limit/remaining/reset`` (epoch); ``TweetDetail`` has a
  small window (``detail_limit`` per ``detail_window`` seconds) past which it answers 429.
  ``violations`` counts requests that arrived while the window was already spent (a crawler
  that honours the headers makes none; the first 429 of a window is not one).
* Media (``/media/<key>.jpg?name=...``) on a second host, mp4 and HLS on a third.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import quote

from tests.emulators._base import Emulator, Request, Response
from tests.emulators.x_data import USERS, Render, timeline_ids

AUTH_TOKEN = "a0a0authtoken"
CT0 = "c7c7csrf"
BEARER = "Bearer AAAAAAAAAAAAAAAAAAAAANRILgAAAAAAnNwIzUejRCOuH5E6I8xnZz4puTs"
QUERY_IDS = {"UserByScreenName": "xc8f1g7BYqr6VTzTbvNlGw", "UserTweets": "E3opETHurmVJflFsUBVuUQ",
             "TweetDetail": "nBS-WpgA6ZG0CyNHD517JQ", "SearchTimeline": "gkjsKepM6gl_HmFWoWKfgg"}
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def cookies_of(req: Request) -> dict[str, str]:
    out = {}
    for part in req.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


SHELL = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>X</title></head>
<body><div id="react-root"><main id="primary"></main><div id="end"></div></div>
<script>window.__QUERY_IDS__ = {qids}; window.__BEARER__ = {bearer};</script>
<script src="/static/main.js"></script></body></html>"""

LOGIN = """<!DOCTYPE html><html><head><title>Log in to X / X</title></head><body>
<div id="react-root"><h1>Sign in to X</h1><input autocomplete="username" name="text">
<input type="password" name="password"></div></body></html>"""

MAIN_JS = r"""
(() => {
  const main = document.getElementById('primary');
  const ct0 = (document.cookie.match(/(?:^|; )ct0=([^;]*)/) || [])[1] || '';
  const feat = JSON.stringify({responsive_web_graphql_timeline_navigation_enabled: true});
  function gql(op, variables) {
    const url = '/i/api/graphql/' + window.__QUERY_IDS__[op] + '/' + op + '?variables=' +
      encodeURIComponent(JSON.stringify(variables)) + '&features=' + encodeURIComponent(feat);
    return fetch(url, {credentials: 'include', headers: {
      'authorization': window.__BEARER__, 'x-csrf-token': ct0,
      'x-twitter-active-user': 'yes', 'x-twitter-auth-type': 'OAuth2Session'}})
      .then(r => { if (r.status !== 200) throw new Error('HTTP ' + r.status); return r.json(); });
  }
  function broken() {
    main.innerHTML = '<div data-testid="error">Something went wrong. Try reloading.</div>';
  }
  function tweetOf(res) {
    if (res.__typename === 'TweetWithVisibilityResults') res = res.tweet;
    return res;
  }
  function render(res) {
    const t = tweetOf(res);
    const el = document.createElement('article');
    if (t.__typename === 'TweetTombstone') {
      el.setAttribute('data-testid', 'tombstone');
      el.textContent = t.tombstone.text.text;
      main.appendChild(el); return;
    }
    const user = t.core.user_results.result;
    const handle = (user.core || user.legacy).screen_name;
    el.setAttribute('data-testid', 'tweet');
    const text = t.note_tweet ? t.note_tweet.note_tweet_results.result.text : t.legacy.full_text;
    el.innerHTML = '<a class="permalink" href="/' + handle + '/status/' + t.rest_id + '">' +
      '<time datetime="">' + t.legacy.created_at + '</time></a><div lang="' + t.legacy.lang +
      '" data-testid="tweetText"></div>';
    el.querySelector('[data-testid=tweetText]').textContent = text;
    const media = (t.legacy.extended_entities || {}).media || [];
    for (const m of media) {
      const img = document.createElement('img');
      img.src = m.media_url_https + '?format=jpg&name=small';
      el.appendChild(img);
    }
    main.appendChild(el);
  }
  function entriesOf(timeline) {
    const out = {results: [], bottom: null, count: 0};
    for (const ins of timeline.instructions) {
      for (const e of ins.entries || []) {
        const c = e.content;
        if (c.cursorType === 'Bottom') out.bottom = c.value;
        if (c.itemContent) { out.results.push(c.itemContent.tweet_results.result); out.count++; }
        for (const it of c.items || []) { out.results.push(it.item.itemContent.tweet_results.result); out.count++; }
      }
    }
    return out;
  }
  function paged(op, vars, pick) {
    let cursor = null, loading = false, done = false;
    function next() {
      if (loading || done) return;
      loading = true;
      const v = Object.assign({}, vars, cursor ? {cursor} : {});
      gql(op, v).then(data => {
        const got = entriesOf(pick(data));
        got.results.forEach(render);
        if (!got.count || !got.bottom) done = true;
        cursor = got.bottom; loading = false;
        if (!done && document.body.scrollHeight <= innerHeight + scrollY + 50) next();
      }).catch(broken);
    }
    window.addEventListener('scroll', () => {
      if (innerHeight + scrollY >= document.body.scrollHeight - 50) next();
    });
    next();
  }
  const path = location.pathname.split('/').filter(Boolean);
  if (path[0] === 'search') {
    const q = new URLSearchParams(location.search).get('q');
    paged('SearchTimeline', {rawQuery: q, count: 5, product: 'Latest'},
          d => d.data.search_by_raw_query.search_timeline.timeline);
  } else if (path[1] === 'status') {
    gql('TweetDetail', {focalTweetId: path[2], with_rux_injections: false})
      .then(d => entriesOf(d.data.threaded_conversation_with_injections_v2).results.forEach(render))
      .catch(broken);
  } else if (path.length === 1) {
    gql('UserByScreenName', {screen_name: path[0]}).then(d => {
      const user = d.data.user.result;
      const h = document.createElement('h2');
      h.textContent = user.legacy.name + ' @' + path[0];
      main.appendChild(h);
      paged('UserTweets', {userId: user.rest_id, count: 5, includePromotedContent: true},
            d => d.data.user.result.timeline_v2.timeline);
    }).catch(broken);
  }
})();
"""


class XMediaHost(Emulator):
    """pbs.twimg.com / video.twimg.com stand-in: any path answers a small body."""

    name = "x-media"

    def route(self, req: Request) -> Response:
        if req.path.endswith(".jpg"):
            return Response(body=JPEG + req.path.encode(), content_type="image/jpeg")
        if req.path.endswith(".mp4"):
            return Response(body=b"\x00\x00\x00\x18ftypmp42" + req.path.encode() * 50,
                            content_type="video/mp4")
        if req.path.endswith(".m3u8"):
            key = req.path.rsplit("/", 1)[1][:-5]
            if "/pl/" in req.path:  # master playlist → one variant playlist
                body = f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=832000\n/ext_tw_video/{key}/pu/v/{key}.m3u8\n"
            else:  # variant playlist → two segments
                body = ("#EXTM3U\n#EXT-X-TARGETDURATION:3\n"
                        + "".join(f"#EXTINF:3.0,\nseg{i}.ts\n" for i in range(2))
                        + "#EXT-X-ENDLIST\n")
            return Response(body=body.encode(), content_type="application/x-mpegURL")
        if req.path.endswith(".ts"):
            return Response(body=b"G" + req.path.encode() * 20, content_type="video/mp2t")
        return Response(status=404, body=b"", content_type="text/plain")


class XEmulator(Emulator):
    name = "x"

    def __init__(self, detail_limit: int = 3, detail_window: float = 2.0) -> None:
        super().__init__()
        self.media = XMediaHost(host="127.0.0.2")
        self.video = XMediaHost(host="127.0.0.3")
        self.detail_limit, self.detail_window = detail_limit, detail_window
        self._window_start = 0.0
        self._window_count = 0
        self._rl_lock = threading.Lock()
        self.violations = 0
        self.throttled = 0
        self.gql_calls: list[tuple[str, dict[str, Any]]] = []
        self.detail_log: list[tuple[float, int, int]] = []  # (time, call in window, status)

    def start(self) -> XEmulator:
        self.media.start()
        self.video.start()
        super().start()
        self.render = Render(self.media.base_url, self.video.base_url)
        return self

    def stop(self) -> None:
        super().stop()
        self.media.stop()
        self.video.stop()

    # -- rate limit of TweetDetail -----------------------------------------------------------
    def _detail_budget(self) -> tuple[bool, list[tuple[str, str]]]:
        with self._rl_lock:
            now = time.time()
            if now >= self._window_start + self.detail_window:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            over = self._window_count > self.detail_limit
            if self._window_count > self.detail_limit + 1:
                self.violations += 1  # sent after a 429 announced the reset
            if over:
                self.throttled += 1
            self.detail_log.append((now, self._window_count, 429 if over else 200))
            remaining = max(self.detail_limit - self._window_count, 0)
            reset = int(self._window_start + self.detail_window) + 1
        return over, [("x-rate-limit-limit", str(self.detail_limit)),
                      ("x-rate-limit-remaining", str(remaining)),
                      ("x-rate-limit-reset", str(reset))]

    # -- routes ------------------------------------------------------------------------------
    def route(self, req: Request) -> Response:
        path = req.path
        cookies = cookies_of(req)
        authed = cookies.get("auth_token") == AUTH_TOKEN
        if path == "/i/flow/login":
            return Response.html(LOGIN)
        if path == "/static/main.js":
            return Response(body=MAIN_JS.encode(), content_type="application/javascript")
        if path == "/robots.txt":
            return Response(body=b"User-agent: *\nAllow: /\n", content_type="text/plain")
        if path.startswith("/i/api/graphql/"):
            return self._graphql(req, cookies)
        parts = [p for p in path.split("/") if p]
        page = (len(parts) == 1 and parts[0] in USERS) or parts[:1] == ["search"] or (
            len(parts) == 3 and parts[1] == "status" and parts[0] in USERS)
        if not page:
            return Response.html("<title>Page not found / X</title>Hmm...this page doesn\u2019t "
                                 "exist. Try searching for something else.", status=404)
        if not authed:
            return Response(status=302, content_type="text/html", headers=[
                ("Location", f"/i/flow/login?redirect_after_login={quote(req.target)}")])
        return Response.html(SHELL.format(qids=json.dumps(QUERY_IDS), bearer=json.dumps(BEARER)))

    def _graphql(self, req: Request, cookies: dict[str, str]) -> Response:
        op = req.path.rsplit("/", 1)[1]
        if cookies.get("auth_token") != AUTH_TOKEN:
            return Response.json({"errors": [{"code": 32, "message":
                                              "Could not authenticate you."}]}, status=401)
        if not cookies.get("ct0") or req.headers.get("x-csrf-token") != cookies["ct0"]:
            return Response.json({"errors": [{"code": 353, "message":
                                              "This request requires a matching csrf cookie "
                                              "and header."}]}, status=403)
        if not req.headers.get("authorization", "").startswith("Bearer "):
            return Response.json({"errors": [{"code": 215, "message": "Bad Authentication "
                                              "data."}]}, status=400)
        variables = json.loads(req.arg("variables") or "{}")
        self.gql_calls.append((op, variables))
        headers: list[tuple[str, str]] = []
        if op == "TweetDetail":
            over, headers = self._detail_budget()
            if over:
                return Response.json({"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
                                     status=429, headers=headers)
        r = self.render
        if op == "UserByScreenName":
            data: Any = {"data": {"user": {"result": r.user(variables["screen_name"])}}}
        elif op == "UserTweets":
            handle = next(h for h, u in USERS.items() if u["rest_id"] == variables["userId"])
            data = {"data": {"user": {"result": {"__typename": "User", "timeline_v2": {
                "timeline": r.page(timeline_ids(handle), variables.get("cursor"))}}}}}
        elif op == "TweetDetail":
            data = {"data": {"threaded_conversation_with_injections_v2":
                             r.detail(variables["focalTweetId"])}}
        elif op == "SearchTimeline":
            from tests.emulators.x_data import POSTS

            q = str(variables.get("rawQuery", "")).lower()
            ids = [p.id for p in sorted(POSTS.values(), key=lambda p: -p.minutes)
                   if q in p.text.lower()]
            data = {"data": {"search_by_raw_query": {"search_timeline": {
                "timeline": r.page(ids, variables.get("cursor"))}}}}
        else:
            return Response.json({"errors": [{"message": "unknown operation"}]}, status=404)
        return Response.json(data, headers=headers)
