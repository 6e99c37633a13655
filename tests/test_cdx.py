"""CDX queries over the index: match types, wildcards, time ranges, sorts, filters, fields,
output formats, the query plan, and ``socialark cdx`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from benchmarks.bench_cdx import TIME_RANGES, build_index, cases, expected_count, generate
from crawler.cli import main
from storage.cdx import CdxQueryError, build_sql, format_line, query, search_range
from storage.db import open_database
from storage.surt import surt, urlkey_for_request

CAPTURES = [
    # (url, timestamp, status, mime, collection)
    ("http://example.com/", "20200101000000", 200, "text/html", "news"),
    ("https://www.example.com/", "20210615120000", 200, "text/html", "news"),
    ("https://example.com/", "20230301000000", 301, "text/html", "news"),
    ("http://example.com/about?b=2&a=1", "20210101000000", 200, "text/html", "news"),
    ("http://example.com/about/team", "20210202000000", 404, "text/plain", "news"),
    ("http://example.com:8080/admin", "20210303000000", 200, "application/json", "news"),
    ("http://blog.example.com/post/1", "20220101000000", 200, "text/html", "blogs"),
    ("http://a.blog.example.com/x", "20220202000000", 200, "image/png", "blogs"),
    ("http://example.org/", "20210101000000", 200, "text/html", "news"),
    ("http://examples.com/", "20210101000000", 200, "text/html", "news"),
    ("http://192.168.1.20:8000/status", "20240101000000", 503, "text/html", "ops"),
    ("http://192.168.1.2/", "20240101000000", 200, "text/html", "ops"),
]


def capture_row(url: str, timestamp: str, n: int, **extra: Any) -> dict[str, Any]:
    """A ``captures`` row for ``url`` with its urlkey from ``surt()``."""
    row = {
        "collection": "news",
        "urlkey": surt(url),
        "url": url,
        "timestamp": timestamp,
        "warc_date": f"{timestamp[:4]}-{timestamp[4:6]}-{timestamp[6:8]}T{timestamp[8:10]}:"
        f"{timestamp[10:12]}:{timestamp[12:14]}Z",
        "status": 200,
        "mime": "text/html",
        "digest": f"sha256:DIGEST{n}",
        "length": 100 + n,
        "offset": 1000 * n,
        "filename": "test-00001.warc.gz",
        "record_type": "response",
        "record_id": f"<urn:uuid:{n:08d}>",
    }
    row.update(extra)
    return row


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = open_database(tmp_path / "index.db")
    database["captures"].insert_all(
        capture_row(url, ts, n, status=status, mime=mime, collection=coll)
        for n, (url, ts, status, mime, coll) in enumerate(CAPTURES)
    )
    return database


def urls(rows: Any) -> list[str]:
    return [row["url"] for row in rows]


def test_exact_match_shares_http_https_and_www(db: Any) -> None:
    assert urls(query(db, "https://EXAMPLE.com")) == [
        "http://example.com/",
        "https://www.example.com/",
        "https://example.com/",
    ]


def test_exact_match_canonicalizes_the_query(db: Any) -> None:
    assert urls(query(db, "http://www.example.com/about?a=1&b=2")) == [
        "http://example.com/about?b=2&a=1"
    ]


def test_prefix_match_and_trailing_slash(db: Any) -> None:
    assert urls(query(db, "http://example.com/about", match_type="prefix")) == [
        "http://example.com/about/team",  # '/' sorts before '?'
        "http://example.com/about?b=2&a=1",
    ]
    # a trailing slash is kept, so only paths below /about/ match
    assert urls(query(db, "http://example.com/about/", match_type="prefix")) == [
        "http://example.com/about/team"
    ]


def test_trailing_wildcard_means_prefix(db: Any) -> None:
    assert urls(query(db, "example.com/about/*")) == urls(query(db, "example.com/about/", "prefix"))
    assert search_range("http://example.com/path/file.html*") == (
        "com,example)/path/file.html",
        "com,example)/path/file.htmm",
        "prefix",
    )


def test_host_match_excludes_subdomains_and_ports(db: Any) -> None:
    assert sorted(set(urls(query(db, "example.com", match_type="host")))) == [
        "http://example.com/",
        "http://example.com/about/team",
        "http://example.com/about?b=2&a=1",
        "https://example.com/",
        "https://www.example.com/",
    ]


def test_domain_match_includes_subdomains(db: Any) -> None:
    got = set(urls(query(db, "example.com", match_type="domain")))
    assert "http://blog.example.com/post/1" in got
    assert "http://a.blog.example.com/x" in got
    assert "http://examples.com/" not in got  # same prefix, different domain
    assert "http://example.org/" not in got
    assert "http://example.com:8080/admin" not in got  # as pywb: a port is another host key
    assert len(got) == 7
    assert set(urls(query(db, "*.example.com"))) == got


def test_domain_match_on_a_subdomain_and_a_tld(db: Any) -> None:
    assert urls(query(db, "blog.example.com", match_type="domain")) == [
        "http://blog.example.com/post/1",  # com,example,blog)/ sorts before com,example,blog,a)/
        "http://a.blog.example.com/x",
    ]
    assert search_range("com", "domain")[:2] == ("com,", "com-")
    assert len(list(query(db, "com", match_type="domain"))) == 9  # every .com host, ports too


def test_ip_hosts(db: Any) -> None:
    assert urls(query(db, "http://192.168.1.20:8000/status")) == ["http://192.168.1.20:8000/status"]
    # 192.168.1.2 is not a prefix "domain" of 192.168.1.20
    assert urls(query(db, "192.168.1.2", match_type="domain")) == ["http://192.168.1.2/"]
    assert urls(query(db, "192.168.1.2", match_type="host")) == ["http://192.168.1.2/"]


def test_time_range_is_inclusive_and_padded(db: Any) -> None:
    assert urls(query(db, "example.com", "host", from_ts="2021", to_ts="2021")) == [
        "https://www.example.com/",
        "http://example.com/about/team",
        "http://example.com/about?b=2&a=1",
    ]
    assert urls(query(db, "example.com", from_ts="20210615120000", to_ts="20210615120000")) == [
        "https://www.example.com/"
    ]
    assert urls(query(db, "example.com", to_ts="202012")) == ["http://example.com/"]


def test_reverse_sort(db: Any) -> None:
    forward = urls(query(db, "example.com", "domain"))
    assert urls(query(db, "example.com", "domain", sort="reverse")) == forward[::-1]


def test_closest_sort_and_limit(db: Any) -> None:
    assert urls(query(db, "example.com", closest="2022")) == [
        "https://www.example.com/",  # 2021-06-15: 200 days before
        "https://example.com/",  # 2023-03-01: 424 days after
        "http://example.com/",
    ]
    assert urls(query(db, "example.com", sort="closest", closest="20230201", limit=1)) == [
        "https://example.com/"
    ]


def test_limit(db: Any) -> None:
    assert len(list(query(db, "example.com", "domain", limit=2))) == 2


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("status:40", ["http://example.com/about/team"]),  # contains
        (
            "=status:200",
            ["http://example.com/", "https://www.example.com/", "http://example.com/about?b=2&a=1"],
        ),
        ("!=status:200", ["https://example.com/", "http://example.com/about/team"]),
        (
            "~url:https://",
            ["https://www.example.com/", "https://example.com/"],
        ),  # regex from the start
        ("~url:.*team$", ["http://example.com/about/team"]),
        ("!~mime:text/h", ["http://example.com/about/team"]),
        ("mimetype:plain", ["http://example.com/about/team"]),  # IA alias
    ],
)
def test_filters(db: Any, spec: str, expected: list[str]) -> None:
    assert urls(query(db, "example.com", "host", filters=[spec])) == expected


def test_filters_combine_and_collection(db: Any) -> None:
    assert urls(
        query(
            db, "example.com", "domain", filters=["=status:200", "!mime:image"], collection="blogs"
        )
    ) == ["http://blog.example.com/post/1"]
    assert urls(query(db, "example.com", "domain", collection="nope")) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match_type": "subtree"}, "invalid match type"),
        ({"from_ts": "2021-01"}, "invalid from"),
        ({"to_ts": "123456789012345"}, "invalid to"),
        ({"limit": 0}, "invalid limit"),
        ({"sort": "sideways"}, "invalid sort"),
        ({"sort": "closest"}, "needs a closest"),
        ({"closest": "20xx"}, "invalid closest"),
        ({"filters": ["status"]}, "invalid filter"),
        ({"filters": ["size:1"]}, "unknown field"),
        ({"filters": ["~url:("]}, "invalid regular expression"),
    ],
)
def test_bad_parameters_raise_clear_errors(db: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(CdxQueryError, match=message):
        query(db, "example.com", **kwargs)


def test_wildcard_with_exact_is_an_error(db: Any) -> None:
    with pytest.raises(CdxQueryError, match="wildcard"):
        query(db, "example.com/*", match_type="exact")


def test_query_uses_the_urlkey_timestamp_index(db: Any) -> None:
    for kwargs in (
        {"match_type": "exact"},
        {"match_type": "domain", "from_ts": "2021", "to_ts": "2022", "collection": "news"},
        {"match_type": "host", "filters": ["=status:200"], "sort": "reverse"},
        {"closest": "2022"},
    ):
        sql, params = build_sql("example.com", **kwargs)
        plan = " ".join(
            row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        )
        assert "USING INDEX captures_urlkey_ts (urlkey>? AND urlkey<?)" in plan, plan
        assert " LIKE " not in sql


def test_output_formats(db: Any) -> None:
    row = next(iter(query(db, "http://example.com/about/team")))
    assert format_line(row, "text") == (
        "com,example)/about/team 20210202000000 http://example.com/about/team text/plain 404 "
        "sha256:DIGEST4 104 4000 test-00001.warc.gz"
    )
    key, ts, block = format_line(row, "cdxj").split(" ", 2)
    assert (key, ts) == ("com,example)/about/team", "20210202000000")
    assert json.loads(block) == {
        "url": "http://example.com/about/team",
        "mime": "text/plain",
        "status": "404",
        "digest": "sha256:DIGEST4",
        "length": "104",
        "offset": "4000",
        "filename": "test-00001.warc.gz",
    }
    assert json.loads(format_line(row, "json"))["urlkey"] == "com,example)/about/team"
    assert format_line(row, "text", ["timestamp", "status"]) == "20210202000000 404"
    assert json.loads(format_line(row, "json", ["url", "collection"])) == {
        "url": "http://example.com/about/team",
        "collection": "news",
    }


def test_post_captures_carry_method_and_body(tmp_path: Path) -> None:
    db = open_database(tmp_path / "index.db")
    url = "http://example.com/search"
    key, body = urlkey_for_request(url, "POST", b"q=cats", "application/x-www-form-urlencoded")
    db["captures"].insert(
        capture_row(url, "20240101000000", 1, urlkey=key, method="POST", request_body=body)
    )
    assert list(query(db, url)) == []  # the GET key does not find the POST
    rows = list(query(db, url, match_type="prefix"))
    assert json.loads(format_line(rows[0], "cdxj").split(" ", 2)[2])["requestBody"] == "q=cats"
    assert json.loads(format_line(rows[0], "json"))["method"] == "POST"
    assert urls(query(db, url + "?__wb_method=post&q=cats")) == [url]


# --- the generated index, checked against an independent count ---------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    data = generate(20_000)
    path = tmp_path_factory.mktemp("gen") / "index.db"
    assert build_index(path, data) == data.captures == 20_000
    return data, open_database(path, readonly=True)


@pytest.mark.parametrize("match_type", ["exact", "prefix", "host", "domain"])
@pytest.mark.parametrize("time_range", list(TIME_RANGES))
def test_generated_index_counts(
    generated: tuple[Any, Any], match_type: str, time_range: str
) -> None:
    data, db = generated
    from_ts, to_ts = TIME_RANGES[time_range]
    for case in cases(data, 8)[match_type]:
        explicit = None if case.url.startswith("*.") else case.match_type
        got = list(query(db, case.url, match_type=explicit, from_ts=from_ts, to_ts=to_ts))
        assert len(got) == expected_count(data, case, from_ts, to_ts), case.url
        keys = [(r["urlkey"], r["timestamp"], r["id"]) for r in got]
        assert keys == sorted(keys)


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def data_dir(db: Any, tmp_path: Path) -> Path:
    return tmp_path


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["cdx", *args])


def test_cli_text_output(data_dir: Path) -> None:
    result = run(
        "example.com",
        "--match",
        "host",
        "--from",
        "2021",
        "--to",
        "2021",
        "--data-dir",
        str(data_dir),
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(" ")[2] for line in lines] == [
        "https://www.example.com/",
        "http://example.com/about/team",
        "http://example.com/about?b=2&a=1",
    ]
    assert all(len(line.split(" ")) == 9 for line in lines)


def test_cli_json_filters_sort_limit(data_dir: Path) -> None:
    result = run("*.example.com", "--filter", "=status:200", "--sort", "reverse", "--limit", "2", "--json",
                 "--data-dir", str(data_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["url"] for r in records] == [  # reverse key order: com,example,blog,a)/ first
        "http://a.blog.example.com/x",
        "http://blog.example.com/post/1",
    ]
    assert {r["status"] for r in records} == {"200"}


def test_cli_cdxj_fields_collection(data_dir: Path) -> None:
    result = run("example.com", "--match", "domain", "--collection", "blogs", "--fields", "url",
                 "--cdxj", "--data-dir", str(data_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(line.split(" ", 2)[2]) for line in result.stdout.splitlines()] == [
        {"url": "http://blog.example.com/post/1"},
        {"url": "http://a.blog.example.com/x"},
    ]


def test_cli_nothing_found(data_dir: Path) -> None:
    result = run("http://nowhere.example/", "--data-dir", str(data_dir))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no captures match" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match", "subtree"], "Invalid value for '--match'"),
        (["--from", "yesterday"], "invalid from"),
        (["--limit", "0"], "Invalid value for '--limit'"),
        (["--sort", "closest"], "needs a closest"),
        (["--filter", "nope"], "invalid filter"),
        (["--fields", "url,size"], "unknown field"),
        (["--json", "--cdxj"], "choose one of"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(
    data_dir: Path, args: list[str], message: str
) -> None:
    result = run("example.com", *args, "--data-dir", str(data_dir))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_missing_index_exits_2(tmp_path: Path) -> None:
    result = run("example.com", "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "no index at" in result.output
