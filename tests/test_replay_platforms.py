"""Platform captures replay: a Mastodon post's API JSON served by pywb equals what was captured."""

from __future__ import annotations

import http.client
import json
import sqlite3
from pathlib import Path

from crawler.extraction import decode_body, read_record
from crawler.replay import pywb_replay
from storage.db import open_database
from tests.conftest import socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.procs import free_port


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_mastodon_api_json_replays_as_captured(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with MastodonEmulator(seed=2) as emu:
        root = emu.dataset.thread_root_id
        proc = socialark("crawl", "mastodon", "--instance", emu.base_url, "--status", root,
                         "--delay", "0", "--collection", "masto", data_dir=data_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
    with sqlite3.connect(data_dir / "index.db") as conn:
        rows = conn.execute(
            "SELECT c.url, c.timestamp, c.offset, c.length, f.path FROM captures c"
            " JOIN warc_files f ON f.name = c.filename WHERE c.record_type = 'response'"
            " AND c.mime = 'application/json' AND c.status = 200 AND c.url LIKE '%/api/v1/statuses/%'"
        ).fetchall()
    assert rows, "the crawl captured status API responses"
    db = open_database(data_dir / "index.db")
    with pywb_replay(db, data_dir, free_port()) as server:
        for url, ts, offset, length, path in rows:
            record = read_record(Path(path), offset, length)
            head, payload = record.http()  # type: ignore[misc]
            captured = json.loads(decode_body(payload, (head.get(b"Content-Encoding") or b"").decode() or None))
            status, headers, body = _get(server.port, f"/masto/{ts}id_/{url}")
            assert status == 200, url
            served = decode_body(body, headers.get("content-encoding"))
            assert json.loads(served) == captured, url
            # and the post as a reader would fetch it through replay (rewritten mode)
            status, _, _ = _get(server.port, f"/masto/{ts}/{url}")
            assert status == 200
