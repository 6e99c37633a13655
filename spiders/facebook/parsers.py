"""Posts of a rendered Facebook page's DOM (pure: HTML in, dicts out).

Each post is a ``[role="article"]`` (comments are nested articles: only top-level ones are
posts). Inside: the author is the first ``h2``/``h3``/``strong`` link, the permalink the first
link to ``/posts/``, ``/permalink.php``, ``/photo``, ``/videos/`` or ``story_fbid``, the time
``abbr[data-utime]`` (epoch seconds; else the link's ``aria-label``/``title`` as shown), the
text ``[data-ad-preview="message"]`` (else ``[dir="auto"]`` blocks), images every ``img``
whose URL looks like a content CDN (``scontent``, ``/v/t``, ``fbcdn``) and reaction/comment
counts where the page shows them ("All reactions: 12", "3 comments").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from parsel import Selector

PERMALINK = re.compile(r"/posts/|/permalink\.php|story_fbid=|/photo|/videos/")
CONTENT_IMAGE = re.compile(r"scontent|/v/t\d|fbcdn")
REACTIONS = re.compile(r"all reactions:?\s*([\d.,]+\s*[km]?)", re.I)
COMMENTS = re.compile(r"([\d.,]+\s*[km]?)\s+comments?\b", re.I)


def count(text: str | None) -> int | None:
    """``"1.2K"`` → 1200, ``"3"`` → 3, None when absent."""
    if not text:
        return None
    t = text.strip().lower().replace(",", "")
    mult = 1000 if t.endswith("k") else 1_000_000 if t.endswith("m") else 1
    try:
        return int(float(t.rstrip("km").strip()) * mult)
    except ValueError:
        return None


def post_id(permalink: str) -> str | None:
    parts = urlsplit(permalink)
    query = parse_qs(parts.query)
    if "story_fbid" in query:
        return query["story_fbid"][0]
    m = re.search(r"/(?:posts|videos|photos?)/(?:[^/]+/)?([\w.-]+)/?$", parts.path)
    return m.group(1) if m else None


def articles(html: str, page_url: str) -> list[dict[str, Any]]:
    """Every top-level post of the rendered page, in page order."""
    sel = Selector(text=html)
    out = []
    for art in sel.xpath('//*[@role="article"][not(ancestor::*[@role="article"])]'):
        links = [urljoin(page_url, h) for h in art.css("a::attr(href)").getall()]
        permalink = next((u for u in links if PERMALINK.search(u)), None)
        pid = post_id(permalink) if permalink else None
        if not pid:
            continue
        author = (art.css("h2 a ::text, h3 a ::text, strong a ::text").get() or "").strip()
        author_link = art.css("h2 a::attr(href), h3 a::attr(href)").get()
        utime = art.css("abbr[data-utime]::attr(data-utime)").get()
        created = (datetime.fromtimestamp(int(utime), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                   if utime and utime.isdigit() else None)
        message = art.css('[data-ad-preview="message"]')
        blocks = message if message else art.css('[dir="auto"]')
        text = "\n".join(" ".join(t.strip() for t in b.css("::text").getall() if t.strip())
                         for b in blocks).strip()
        images = [urljoin(page_url, s) for s in art.css("img::attr(src)").getall()
                  if CONTENT_IMAGE.search(s)]
        labels = " ".join(art.css("[aria-label]::attr(aria-label)").getall())
        shown = " ".join(art.css("::text").getall())
        reactions = REACTIONS.search(labels)
        comments = COMMENTS.search(shown)
        out.append({
            "post_id": pid, "url": permalink.split("?", 1)[0] if "/posts/" in permalink
            else permalink, "author": author or None,
            "author_id": urlsplit(urljoin(page_url, author_link)).path.strip("/") or None
            if author_link else None,
            "created_at": created, "text": text, "images": images,
            "like_count": count(reactions.group(1)) if reactions else None,
            "reply_count": count(comments.group(1)) if comments else None,
        })
    return out
