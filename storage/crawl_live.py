"""Live state of a running crawl, kept in its ``crawls`` row for ``socialark status``.

While a crawl runs, ``crawls.stats`` holds ``{"paused_hosts": [...]}`` (merged into whatever
was there; the final stats replace it when the crawl ends). Each entry is a host the crawl is
not sending to: ``{"host", "reason", "until" (epoch seconds), "until_iso"}``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


def write_paused_hosts(db_path: Path, crawl_id: str, pauses: list[dict[str, Any]],
                       timeout: float = 1.0) -> bool:
    """Record the paused hosts of a running crawl; False when the index was busy (try later).

    A short timeout of its own: this runs on the crawl's reactor thread and must never wait
    long behind another writer."""
    try:
        conn = sqlite3.connect(str(db_path), timeout=timeout)
    except sqlite3.Error:
        return False
    try:
        with conn:
            conn.execute(
                "UPDATE crawls SET stats = json_set(COALESCE(stats, '{}'), '$.paused_hosts',"
                " json(?)) WHERE crawl_id = ? AND state = 'running'",
                [json.dumps(pauses), crawl_id],
            )
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def paused_hosts(stats: str | None, now: float) -> list[dict[str, Any]]:
    """The pauses in a ``crawls.stats`` value that have not ended by ``now``."""
    if not stats:
        return []
    try:
        entries = json.loads(stats).get("paused_hosts") or []
    except (ValueError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict) and float(e.get("until") or 0) > now]
