"""Replay through real pywb (a subprocess from its own venv) of what the index says we captured.

pywb's identity mode (``/<coll>/<ts>id_/<url>``) must return exactly the captured payload and
status for every capture, its ``/cdx`` must agree with our index, and ``socialark replay`` must
serve WARCs in place (including a foreign file elsewhere) but never an ``.open`` file.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from crawler.cli import main as cli
from crawler.replay import PywbServer, default_venv, ensure_venv, pywb_replay
from storage.cdxj import iter_cdxj
from storage.db import open_database
from tests.procs import free_port
from tests.replay_helpers import (
    HOST,
    build_archive,
    crawled_core_archive,
    expected_from_warc,
    replayable_captures,
)

COLL = "test"


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET without redirects or content decoding (we compare wire payloads)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip, deflate, br"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("replay") / "data"
    build_archive(data_dir, COLL)
    return data_dir


@pytest.fixture(scope="module")
def pywb(archive: Path) -> Iterator[PywbServer]:
    db = open_database(archive / "index.db")
    with pywb_replay(db, archive, free_port()) as server:
        yield server


def cdx_json(port: int, url: str, coll: str = COLL) -> list[dict[str, str]]:
    status, _, body = get(port, f"/{coll}/cdx?url={quote(url, safe='')}&output=json")
    assert status == 200
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def test_identity_mode_returns_captured_payload_and_status(archive: Path, pywb: PywbServer) -> None:
    db = open_database(archive / "index.db", readonly=True)
    captures = replayable_captures(db)
    kinds = {(c["record_type"], c["status"]) for c in captures}
    assert {("revisit", 200), ("response", 301), ("response", 404)} <= kinds
    for capture in captures:
        expected = expected_from_warc(db, capture)
        status, headers, body = get(pywb.port, f"/{COLL}/{capture['timestamp']}id_/{capture['url']}")
        assert (capture["url"], status) == (capture["url"], expected.status)
        assert body == expected.payload, capture["url"]
        # The capture served is the one asked for (Memento-Datetime), not a fallback capture.
        served = parsedate_to_datetime(headers["memento-datetime"]).strftime("%Y%m%d%H%M%S")
        assert served == capture["timestamp"]


def test_gzip_body_is_served_still_encoded(archive: Path, pywb: PywbServer) -> None:
    db = open_database(archive / "index.db", readonly=True)
    capture = next(c for c in replayable_captures(db) if c["url"].endswith("/gzip"))
    _, headers, body = get(pywb.port, f"/{COLL}/{capture['timestamp']}id_/{capture['url']}")
    assert headers.get("content-encoding") == "gzip"
    assert body[:2] == b"\x1f\x8b"


def test_cdx_api_agrees_with_index(archive: Path, pywb: PywbServer) -> None:
    db = open_database(archive / "index.db", readonly=True)
    ours: dict[str, list[dict[str, str]]] = {}
    for line in iter_cdxj(db):
        urlkey, ts, fields = line.split(" ", 2)
        ours.setdefault(json.loads(fields)["url"], []).append(
            {"urlkey": urlkey, "timestamp": ts, **json.loads(fields)})
    assert ours
    for url, rows in ours.items():
        theirs = cdx_json(pywb.port, url)
        keys = ("urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename")
        assert [{k: r.get(k) for k in keys} for r in theirs] == [{k: r.get(k) for k in keys} for r in rows]


def test_open_files_are_not_replayed(pywb: PywbServer) -> None:
    assert cdx_json(pywb.port, f"{HOST}/in-progress") == []
    status, _, _ = get(pywb.port, f"/{COLL}/20240102040000id_/{HOST}/in-progress")
    assert status == 404


def test_socialark_cdx_agrees_with_pywb(archive: Path, pywb: PywbServer) -> None:
    if "cdx" not in cli.commands:
        pytest.skip("`socialark cdx` is not part of this build yet")
    result = CliRunner().invoke(cli, ["cdx", f"{HOST}/", "--match", "prefix", "--json",
                                      "--data-dir", str(archive)])
    assert result.exit_code == 0, result.output
    text = result.output.strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    # pywb is handed only closed files; `socialark cdx` may also list captures of an .open file.
    ours = sorted((r["timestamp"], r["url"]) for r in rows if not r["url"].endswith("/in-progress"))
    status, _, body = get(pywb.port, f"/{COLL}/cdx?url={quote(HOST + '/', safe='')}&matchType=prefix&output=json")
    theirs = sorted((r["timestamp"], r["url"]) for r in map(json.loads, body.decode().splitlines()))
    assert status == 200
    assert ours == theirs


def test_replay_command_prints_url_and_serves(archive: Path) -> None:
    ensure_venv(default_venv())  # the command would create it too; done first so it starts fast
    port = free_port()
    proc = subprocess.Popen(
        ["socialark", "replay", "--port", str(port), "--collection", COLL, "--data-dir", str(archive)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"Replay: http://127.0.0.1:{port}/{COLL}/"
        status, _, body = get(port, f"/{COLL}/20240102030405id_/{HOST}/")
        assert status == 200
        assert b"Home of the test site" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0


def test_replay_unknown_collection_is_a_usage_error(archive: Path) -> None:
    result = CliRunner().invoke(cli, ["replay", "--collection", "nope", "--data-dir", str(archive)])
    assert result.exit_code == 2
    assert "no captures in collection nope" in result.output


def test_replay_without_index_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["replay", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no index" in result.output


# --- acceptance: crawl the core test site, replay every capture -------------------------------


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "crawl" not in cli.commands:
        pytest.skip("`socialark crawl site` is not part of this build yet")
    return crawled_core_archive(tmp_path_factory)


def test_crawled_site_replays_byte_for_byte(crawled: Path) -> None:
    db = open_database(crawled / "index.db", readonly=True)
    captures = replayable_captures(db)
    assert {c["status"] for c in captures} >= {200, 301, 404}
    assert any(c["record_type"] == "revisit" for c in captures)
    by_key: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
    for capture in captures:
        expected = expected_from_warc(db, capture)
        by_key.setdefault((capture["url"], capture["timestamp"]), []).append(
            (expected.status, expected.payload))
    with pywb_replay(db, crawled, free_port(), ["core"]) as server:
        for (url, ts), candidates in by_key.items():
            status, _, body = get(server.port, f"/core/{ts}id_/{url}")
            # Several captures of one URL in the same second (retries) are all acceptable.
            assert (status, body) in candidates, (url, status, len(body))
        for url in {c["url"] for c in captures}:
            theirs = [(r["timestamp"], r["digest"]) for r in cdx_json(server.port, url, "core")]
            ours = [(c["timestamp"], c["digest"]) for c in captures if c["url"] == url]
            assert sorted(theirs) == sorted(ours), url
