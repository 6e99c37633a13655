"""Datasette plugin for ``socialark browse``: replay links per row, and ``/`` opens on posts.

Any row that names its capture (``collection``, ``source_url``, ``source_timestamp``: posts,
accounts, media, or a query selecting those columns) gets its ``post_id`` and ``source_url``
cells rendered as links to the replay of that capture, ``{replay_base}/{collection}/{timestamp}/
{url}`` (the same URL ``socialark search`` prints). Configuration comes from the metadata written
by ``socialark browse``: ``plugins["socialark-replay"] = {"replay_base": ..., "home": ...}``.

Loaded by Datasette from a file path (``--plugins-dir``), so it imports only Datasette and
``storage`` (on ``PYTHONPATH``, set by ``socialark browse``).
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from storage.search import DEFAULT_REPLAY_BASE, replay_url

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


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str,
                datasette: Any) -> Markup | None:
    if column not in LINKED_COLUMNS or value in (None, ""):
        return None
    href = row_replay_url(row, _config(datasette).get("replay_base") or DEFAULT_REPLAY_BASE)
    if href is None:
        return None
    return Markup('<a class="socialark-replay" href="{}" title="replay the capture this row '
                  'came from">{}</a>').format(escape(href), escape(str(value)))


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    home = _config(datasette).get("home")
    if not home:
        return []

    async def open_on_posts() -> Response:
        return Response.redirect(home)

    return [(r"^/$", open_on_posts)]
