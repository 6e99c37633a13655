"""Captures of a post written in any order give the rows a rebuild (oldest first) gives.

A live crawl extracts items concurrently (``CONCURRENT_ITEMS``), so a listing captured a second
after the user page that also shows a post can reach the index first. ``index --rebuild`` reads
captures oldest first. Both must leave the same ``posts`` row, ``post_versions`` and deletion
(a Reddit test failed in CI when a post's tombstone arrived newest first).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storage.db import open_database
from storage.items_store import store_items

ALIVE, EDITED, TOMB = "Harbour flood photos", "Harbour flood photos (edited)", "[removed]"


def capture(second: int, body: str, url: str) -> tuple[str, dict[str, Any]]:
    ts = f"202612020540{second:02d}"
    raw = {"id": "abc", "selftext": body, "title": "t"}
    return "posts", {"platform": "reddit", "post_id": "t3_abc", "text": body,
                     "raw": json.dumps(raw), "source_url": url, "source_timestamp": ts}


def rows(path: Path) -> tuple[list[Any], list[Any]]:
    with sqlite3.connect(path) as conn:
        post = conn.execute("SELECT text, source_url, source_timestamp, deleted_at,"
                            " deleted_source_url FROM posts").fetchall()
        versions = conn.execute(
            "SELECT version, text, tombstone, first_seen, last_seen, source_url,"
            " source_timestamp FROM post_versions ORDER BY version").fetchall()
    return post, versions


def write(path: Path, captures: list[tuple[str, dict[str, Any]]]) -> tuple[list[Any], list[Any]]:
    db = open_database(path)
    for item in captures:  # one transaction per capture, as the live index commits them
        store_items(db, [(item[0], dict(item[1]))], "default")
    db.conn.close()
    return rows(path)


SCENARIOS = {
    "same text three times": [(1, ALIVE, "/user"), (2, ALIVE, "/new"), (3, ALIVE, "/hot")],
    "only ever a tombstone": [(41, TOMB, "/user"), (42, TOMB, "/new")],
    "alive, then removed twice": [(1, ALIVE, "/user"), (2, TOMB, "/new"), (3, TOMB, "/hot")],
    "alive twice, then removed": [(1, ALIVE, "/user"), (2, ALIVE, "/new"), (3, TOMB, "/hot")],
    "edited": [(1, ALIVE, "/user"), (2, EDITED, "/new"), (3, EDITED, "/hot")],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_arrival_order_gives_the_oldest_first_rows(name: str, tmp_path: Path) -> None:
    caps = [capture(s, body, f"http://127.0.0.1:1{url}") for s, body, url in SCENARIOS[name]]
    expected = write(tmp_path / "oldest-first.db", caps)
    assert expected[1], "versions were recorded"
    for n, order in enumerate(itertools.permutations(caps)):
        assert write(tmp_path / f"order{n}.db", list(order)) == expected, order


def test_a_late_tombstone_does_not_delete_a_post_seen_alive_after_it(tmp_path: Path) -> None:
    """Alive at :01 and :03, the tombstone of :02 arrives last: deleted, then seen again."""
    a1, t2, a3 = (capture(1, ALIVE, "http://h/u"), capture(2, TOMB, "http://h/n"),
                  capture(3, ALIVE, "http://h/h"))
    post, versions = write(tmp_path / "late.db", [a1, a3, t2])
    assert post[0][0] == ALIVE and post[0][3] is None  # not deleted
    # The tombstone is in the history. (A rebuild would also split the first version around
    # it, alive again at :03; which capture showed :03 is not kept, so live keeps one version.)
    assert [v[1] for v in versions] == [ALIVE, TOMB]
