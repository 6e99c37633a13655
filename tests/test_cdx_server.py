"""``socialark serve`` as a real subprocess on a free loopback port, queried over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bench_cdx import (
    TIME_RANGES,
    build_index,
    cases,
    expected_count,
    generate,
    params_for,
    start_server,
)
from storage.db import open_database
from tests.test_cdx import CAPTURES, capture_row


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    data_dir = tmp_path_factory.mktemp("serve")
    data = generate(20_000)
    build_index(data_dir / "index.db", data)
    db = open_database(data_dir / "index.db")
    db["captures"].insert_all(
        capture_row(url, ts, 100_000 + n, status=status, mime=mime, collection=coll)
        for n, (url, ts, status, mime, coll) in enumerate(CAPTURES)
    )
    db.conn.close()
    proc, endpoint = start_server(data_dir)
    try:
        yield endpoint, data
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reads the pipes: a full pipe cannot block the exit


def get(
    endpoint: str, params: dict[str, str] | list[tuple[str, str]] | str
) -> tuple[int, str, str]:
    query = params if isinstance(params, str) else urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(f"{endpoint}?{query}", timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode("utf-8")


def test_every_match_type_and_time_range_on_a_generated_index(server: tuple[str, Any]) -> None:
    endpoint, data = server
    for match_type, todo in cases(data, 4, seed=2).items():
        for from_ts, to_ts in TIME_RANGES.values():
            for case in todo:
                status, _, body = get(endpoint, params_for(case, from_ts, to_ts))
                assert status == 200
                assert body.count("\n") == expected_count(data, case, from_ts, to_ts), (
                    case.url,
                    match_type,
                )


def test_default_output_is_cdxj(server: tuple[str, Any]) -> None:
    endpoint, _ = server
    status, ctype, body = get(endpoint, {"url": "https://www.example.com/about/team"})
    assert status == 200
    assert ctype.startswith("text/x-cdxj")
    key, ts, block = body.rstrip("\n").split(" ", 2)
    assert (key, ts) == ("com,example)/about/team", "20210202000000")
    assert json.loads(block)["status"] == "404"


def test_collection_in_path_or_parameter(server: tuple[str, Any]) -> None:
    endpoint, _ = server
    root = endpoint.rsplit("/", 1)[0]
    everywhere = get(endpoint, {"url": "*.example.com"})[2].splitlines()
    in_path = get(f"{root}/blogs/cdx", {"url": "*.example.com"})[2].splitlines()
    as_param = get(endpoint, {"url": "*.example.com", "collection": "blogs"})[2].splitlines()
    assert len(everywhere) == 7
    assert in_path == as_param
    assert [json.loads(line.split(" ", 2)[2])["url"] for line in in_path] == [
        "http://blog.example.com/post/1",
        "http://a.blog.example.com/x",
    ]


def test_json_text_fields_filters_sort_limit(server: tuple[str, Any]) -> None:
    endpoint, _ = server
    params = [("url", "example.com"), ("matchType", "host"), ("output", "json"), ("sort", "reverse"),
              ("filter", "=status:200"), ("filter", "!~url:https"), ("limit", "1")]  # fmt: skip
    status, ctype, body = get(endpoint, params)
    assert (status, ctype.split(";")[0]) == (200, "text/x-ndjson")
    assert [json.loads(line)["url"] for line in body.splitlines()] == [
        "http://example.com/about?b=2&a=1"
    ]
    status, _, body = get(
        endpoint, {"url": "example.com", "output": "text", "fields": "timestamp,status"}
    )
    assert body.splitlines() == ["20200101000000 200", "20210615120000 200", "20230301000000 301"]


def test_ia_style_json_array_with_fl(server: tuple[str, Any]) -> None:
    endpoint, _ = server
    status, ctype, body = get(
        endpoint, {"url": "example.com", "output": "json", "fl": "original,statuscode"}
    )
    assert (status, ctype.split(";")[0]) == (200, "application/json")
    assert json.loads(body) == [
        ["url", "status"],
        ["http://example.com/", "200"],
        ["https://www.example.com/", "200"],
        ["https://example.com/", "301"],
    ]


def test_pywb_remote_index_source_queries(server: tuple[str, Any]) -> None:
    """The URLs pywb's ``cdx+http://`` source builds: quoted url, closest (maybe empty), sort=closest."""
    endpoint, _ = server
    url = urllib.parse.quote("https://example.com/")
    status, _, body = get(endpoint, f"url={url}&closest=&sort=closest")
    assert status == 200 and len(body.splitlines()) == 3
    status, _, body = get(
        endpoint, f"url={url}&closest=20230101000000&sort=closest&limit=100&matchType=exact"
    )
    assert status == 200
    assert [line.split(" ")[1] for line in body.splitlines()] == [
        "20230301000000",
        "20210615120000",
        "20200101000000",
    ]


def test_nothing_found_is_an_empty_200(server: tuple[str, Any]) -> None:
    endpoint, _ = server
    assert get(endpoint, {"url": "http://nowhere.example/"})[::2] == (200, "")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing url"),
        ({"url": "example.com", "matchType": "subtree"}, "invalid match type"),
        ({"url": "example.com", "from": "2020-01"}, "invalid from"),
        ({"url": "example.com", "limit": "ten"}, "invalid limit"),
        ({"url": "example.com", "sort": "up"}, "invalid sort"),
        ({"url": "example.com", "output": "xml"}, "invalid output"),
        ({"url": "example.com", "filter": "~url:("}, "invalid regular expression"),
        ({"url": "example.com", "fl": "size"}, "unknown field"),
    ],
)
def test_bad_parameters_are_400_with_a_message(
    server: tuple[str, Any], params: dict[str, str], message: str
) -> None:
    status, ctype, body = get(server[0], params)
    assert status == 400
    assert ctype.startswith("text/plain")
    assert message in body
    assert "Traceback" not in body


def test_unknown_path_is_404(server: tuple[str, Any]) -> None:
    root = server[0].rsplit("/", 1)[0]
    status, _, body = get(root + "/a/b/cdx", {"url": "example.com"})
    assert status == 404 and "not found" in body


def test_serve_without_an_index_exits_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from crawler.cli import main

    result = CliRunner().invoke(main, ["serve", "--port", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no index at" in result.output


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _replay(url: str) -> tuple[int, bytes]:
    try:
        request = urllib.request.Request(
            url, headers={"Accept-Encoding": "gzip"}
        )  # else pywb decodes
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as resp:
            return resp.status, resp.read()  # bytes as stored: a gzip body stays gzipped
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_pywb_replays_through_the_cdx_server(tmp_path: Path) -> None:
    """pywb with ``index: cdx+http://.../<coll>/cdx`` and local archive_paths replays every capture
    (revisits included) with the status and payload stored in the WARC."""
    from crawler.replay import default_venv, start_pywb, wayback_path
    from tests.procs import free_port
    from tests.replay_helpers import (
        build_archive,
        expected_from_warc,
        replayable_captures,
    )

    exe = wayback_path(default_venv())
    if not exe.exists():
        pytest.skip(f"pywb is not installed at {exe} (socialark replay --setup)")
    data_dir, foreign = tmp_path / "archive", tmp_path / "foreign"
    db = build_archive(data_dir, "test", foreign_dir=foreign)
    proc, endpoint = start_server(data_dir)
    root = tmp_path / "pywb"
    root.mkdir()
    root_url = endpoint.rsplit("/", 1)[0]
    (root / "config.yaml").write_text(
        f"collections:\n  t:\n    index: cdx+{root_url}/test/cdx\n"
        f"    archive_paths:\n      - {data_dir}/warcs/test/\n      - {foreign}/\n"
    )
    pywb = start_pywb(root, free_port(), exe, log=tmp_path / "pywb.log")
    try:
        captures = replayable_captures(db)
        assert captures
        for capture in captures:
            expected = expected_from_warc(db, capture)
            got = _replay(f"{pywb.base_url}/t/{capture['timestamp']}id_/{capture['url']}")
            assert got == (expected.status, expected.payload), capture["url"]
    finally:
        pywb.stop()
        proc.terminate()
        proc.communicate(timeout=10)  # reads the pipes: a full pipe cannot block the exit
