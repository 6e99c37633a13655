"""Datasette plugin for ``socialark browse``: replay links per row, and ``/`` opens on posts.

Any row that names its capture (``collection``, ``source_url``, ``source_timestamp``: posts,
accounts, media, or a query selecting those columns) gets its ``post_id`` and ``source_url``
cells rendered as links to the replay of that capture, ``{replay_base}/{collection}/{timestamp}/
{url}`` (the same URL ``socialark search`` prints as ``api``). A post's ``url`` cell links to the
replay of the newest capture of the post's page when there is one (``page`` in ``socialark
search``; same lookup), and stays the plain live link otherwise. Configuration comes from the
metadata written by ``socialark browse``: ``plugins["socialark-replay"] = {"replay_base": ...,
"home": ...}``.

Loaded by Datasette from a file path (``--plugins-dir``), so it imports only Datasette and
``storage`` (on ``PYTHONPATH``, set by ``socialark browse``).
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup

from storage.search import DEFAULT_REPLAY_BASE, ReplayLinks, replay_url

PLUGIN = "socialark-replay"
LINKED_COLUMNS = ("post_id", "source_url")
CAPTURE_KEYS = ("collection", "source_url", "source_timestamp")


def _config(datasette: Any) -> dict[str, Any]:
    return datasette.plugin_config(PLUGIN) or {}


def _value(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError, TypeError):
        return None


def row_replay_url(row: Any, base: str) -> str | None:
    """Replay URL of the capture a row was extracted from, or None if the row does not name one."""
    collection, url, timestamp = (_value(row, k) for k in CAPTURE_KEYS)
    if not (collection and url and timestamp):
        return None
    return replay_url(base, str(collection), str(timestamp), str(url))


def _link(href: str, text: str, css: str, title: str) -> Markup:
    return Markup('<a class="{}" href="{}" title="{}">{}</a>').format(css, href, title, text)


def _page_link(row: Any, value: str, database: str, datasette: Any, base: str) -> Any:
    """An awaitable: the post page's replay link, or None (default rendering) if never captured."""
    collection = _value(row, "collection")

    async def inner() -> Markup | None:
        ts = await datasette.get_database(database).execute_fn(
            lambda conn: ReplayLinks(conn, base).page_timestamp(str(collection), value))
        if not ts:
            return None
        return _link(replay_url(base, str(collection), ts, value), value, "socialark-page-replay",
                     "replay the archived page of this post")

    return inner


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str,
                datasette: Any) -> Any:
    if value in (None, "") or not isinstance(value, str | int):
        return None
    base = _config(datasette).get("replay_base") or DEFAULT_REPLAY_BASE
    if column == "url" and table == "posts" and _value(row, "collection"):
        return _page_link(row, str(value), database, datasette, base)
    if column not in LINKED_COLUMNS:
        return None
    href = row_replay_url(row, base)
    if href is None:
        return None
    return _link(href, str(value), "socialark-replay", "replay the capture this row came from")


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    home = _config(datasette).get("home")
    if not home:
        return []

    async def open_on_posts() -> Response:
        return Response.redirect(home)

    return [(r"^/$", open_on_posts)]
