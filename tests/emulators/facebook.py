"""A Facebook-like page emulator: posts as ``[role="article"]``, more loaded by scrolling through
``POST /api/graphql/``, a login dialog without the ``c_user``/``xs`` session cookies.

* ``/<page>``: the page's header and its first ``FIRST`` posts in a ``[role="feed"]``; with the
  session, scrolling to the end makes the page script ``POST /api/graphql/`` (form body:
  ``fb_dtsg``, ``doc_id``, ``variables={"id", "cursor"}``) and append the posts of the answer
  (``{"data": {"node": {"timeline_feed_units": {"edges": [...], "page_info": {...}}}}}``);
  without it the first posts are shown under a "You must log in to continue." dialog and the
  API answers an error.
* ``/<page>/posts/<id>``: one post (the permalink page).
* images on a second host (``/v/t39/<key>.jpg``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from tests.emulators._base import Emulator, Request, Response
from tests.emulators.x import JPEG, XMediaHost, cookies_of

C_USER, XS = "100001234", "42%3Axs-session"
PAGE = "archivepage"
PAGE_NAME = "The Archive Page"
FIRST, PER_CALL = 3, 3
T0 = datetime(2024, 6, 1, 9, 0, 0, tzinfo=UTC)


@dataclass
class FbPost:
    id: str
    text: str
    hours: int
    images: list[str] = field(default_factory=list)
    reactions: int = 0
    comments: int = 0

    @property
    def utime(self) -> int:
        return int((T0 - timedelta(hours=self.hours)).timestamp())

    @property
    def created_iso(self) -> str:
        return (T0 - timedelta(hours=self.hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


POSTS = [FbPost(str(900 + i), f"Post {i} of the archive page" + (" with photos" if i % 3 == 0
                                                                 else ""),
                hours=i * 5, images=[f"IMG{i}a", f"IMG{i}b"] if i % 3 == 0 else [],
                reactions=i * 4, comments=i % 4) for i in range(10)]
BY_ID = {p.id: p for p in POSTS}


class FacebookEmulator(Emulator):
    name = "facebook"

    def __init__(self) -> None:
        super().__init__()
        self.media = XMediaHost(host="127.0.0.2")
        self.graphql_calls: list[dict[str, Any]] = []

    def start(self) -> FacebookEmulator:
        self.media.start()
        return super().start()

    def stop(self) -> None:
        super().stop()
        self.media.stop()

    def image_url(self, key: str) -> str:
        return f"{self.media.base_url}/v/t39.30808-6/{key}_n.jpg?stp=dst-jpg&_nc_cat=1"

    def article(self, p: FbPost) -> str:
        imgs = "".join(f'<img src="{self.image_url(k)}" alt="May be an image">' for k in p.images)
        permalink = f"/{PAGE}/posts/{p.id}"
        return (
            f'<div role="article" aria-posinset="{p.id}" aria-describedby="m{p.id}">'
            f'<h3><span><a href="/{PAGE}" role="link"><strong>{PAGE_NAME}</strong></a></span></h3>'
            f'<span><a href="{permalink}" role="link"><abbr data-utime="{p.utime}">'
            f'{p.hours}h</abbr></a></span>'
            f'<div data-ad-preview="message" id="m{p.id}"><div dir="auto">'
            f'{html.escape(p.text)}</div></div>{imgs}'
            f'<div><span aria-label="All reactions: {p.reactions}">{p.reactions}</span>'
            f'<span role="button">{p.comments} comments</span></div></div>')

    def route(self, req: Request) -> Response:
        cookies = cookies_of(req)
        authed = cookies.get("c_user") == C_USER and cookies.get("xs") == XS
        path = req.path
        if path == "/robots.txt":
            return Response(body=b"User-agent: *\nAllow: /\n", content_type="text/plain")
        if path == "/api/graphql/" and req.method == "POST":
            return self._graphql(req, authed)
        if path == f"/{PAGE}":
            feed = "".join(self.article(p) for p in POSTS[:FIRST])
            dialog = ("" if authed else
                      '<div role="dialog" aria-label="Log in"><h2>See more from '
                      f'{PAGE_NAME}</h2><div>You must log in to continue.</div>'
                      '<input name="email"><input type="password" name="pass"></div>')
            return Response.html(SHELL.format(title=f"{PAGE_NAME} | Facebook", feed=feed,
                                              dialog=dialog, authed=json.dumps(authed)))
        if path.startswith(f"/{PAGE}/posts/") and path.rsplit("/", 1)[1] in BY_ID:
            post = BY_ID[path.rsplit("/", 1)[1]]
            if not authed:
                return Response(status=302, content_type="text/html", headers=[
                    ("Location", f"/login/?next={req.target}")])
            return Response.html(SHELL.format(title=f"{PAGE_NAME} | Facebook",
                                              feed=self.article(post), dialog="",
                                              authed="false"))
        if path.startswith("/login"):
            return Response.html('<title>Log into Facebook</title><h2>Log into Facebook</h2>'
                                 '<form><input name="email"><input type="password" name="pass">'
                                 '<button>Log in</button></form>')
        if path.endswith(".jpg"):
            return Response(body=JPEG, content_type="image/jpeg")
        return Response.html("<title>Page not found</title>This content isn't available",
                             status=404)

    def _graphql(self, req: Request, authed: bool) -> Response:
        if not authed:
            return Response.json({"errors": [{"message": "Please log in to continue.",
                                              "code": 1357001}]})
        form = {k: v[0] for k, v in parse_qs(self._body(req)).items()}
        self.graphql_calls.append(form)
        variables = json.loads(form.get("variables") or "{}")
        start = int(variables.get("cursor") or FIRST)
        chunk = POSTS[start:start + PER_CALL]
        end = start + len(chunk)
        return Response.json({"data": {"node": {"__typename": "Page", "id": PAGE,
                              "timeline_feed_units": {
                                  "edges": [{"node": {"id": p.id, "html": self.article(p)}}
                                            for p in chunk],
                                  "page_info": {"has_next_page": end < len(POSTS),
                                                "end_cursor": str(end)}}}}})

    @staticmethod
    def _body(req: Request) -> str:
        return req.body.decode("utf-8", "replace")


SHELL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<div id="mount"><div role="main"><h1>The Archive Page</h1><div role="feed">{feed}</div>
<div id="feed-end" style="height:1200px"></div></div>{dialog}</div>
<script>
(() => {{
  if (!{authed}) return;
  let cursor = null, loading = false, done = false;
  function more() {{
    if (loading || done) return;
    loading = true;
    const body = new URLSearchParams({{fb_dtsg: 'NAcM-token', doc_id: '7318391154915462',
      fb_api_req_friendly_name: 'ProfileCometTimelineFeedRefetchQuery',
      variables: JSON.stringify({{id: 'archivepage', count: 3, cursor}})}});
    fetch('/api/graphql/', {{method: 'POST', credentials: 'include', body,
      headers: {{'content-type': 'application/x-www-form-urlencoded',
                 'x-fb-friendly-name': 'ProfileCometTimelineFeedRefetchQuery'}}}})
      .then(r => r.json()).then(d => {{
        const feed = d.data.node.timeline_feed_units;
        const box = document.querySelector('[role=feed]');
        for (const e of feed.edges) box.insertAdjacentHTML('beforeend', e.node.html);
        cursor = feed.page_info.end_cursor; done = !feed.page_info.has_next_page;
        loading = false;
      }});
  }}
  window.addEventListener('scroll', () => {{
    if (innerHeight + scrollY >= document.body.scrollHeight - 1300) more();
  }});
}})();
</script></body></html>"""
