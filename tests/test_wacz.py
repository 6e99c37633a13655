"""CDXJ and WACZ export (checked by our verifier and by py-wacz's ``wacz validate``) and the
Datasette metadata of ``socialark browse``."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from crawler.cli import main as cli
from crawler.datasette_metadata import build_metadata, parse_schema_doc, undocumented_columns
from storage.cdxj import CaptureFilter, cdxj_line, iter_cdxj, parse_bound
from storage.db import open_database
from storage.errors import StorageError
from storage.wacz import verify_wacz, write_wacz
from tests.replay_helpers import (
    HOST,
    build_archive,
    crawled_core_archive,
    replayable_captures,
    wacz_validator,
)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    build_archive(data_dir, "test")
    return data_dir


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


# --- CDXJ -----------------------------------------------------------------------------------


def test_export_cdxj_is_sorted_and_matches_the_index(archive: Path) -> None:
    code, out = run("export", "cdxj", "--data-dir", str(archive))
    assert code == 0, out
    lines = out.splitlines()
    assert [x.encode() for x in lines] == sorted(x.encode() for x in lines)
    db = open_database(archive / "index.db", readonly=True)
    captures = replayable_captures(db)
    assert len(lines) == len(captures)
    for line, capture in zip(lines, captures, strict=True):
        urlkey, ts, fields = line.split(" ", 2)
        data = json.loads(fields)
        assert (urlkey, ts) == (capture["urlkey"], capture["timestamp"])
        assert all(isinstance(v, str) for v in data.values())
        assert list(data)[:3] == ["url", "mime", "status"] or capture["mime"] is None
        assert data["offset"] == str(capture["offset"]) and data["filename"] == capture["filename"]
    assert not any("in-progress" in x for x in lines)  # the .open file is never exported


def test_cdxj_lines_point_at_their_records(archive: Path) -> None:
    db = open_database(archive / "index.db", readonly=True)
    paths = dict(db.execute("select name, path from warc_files").fetchall())
    for line in iter_cdxj(db):
        fields = json.loads(line.split(" ", 2)[2])
        with open(paths[fields["filename"]], "rb") as fh:
            fh.seek(int(fields["offset"]))
            member = fh.read(int(fields["length"]))
        record = next(iter(ArchiveIterator(io.BytesIO(member))))
        assert record.rec_headers.get_header("WARC-Target-URI") == fields["url"]
        assert record.rec_headers.get_header("WARC-Payload-Digest") == fields["digest"]


def test_cdxj_line_shape_for_post_and_resource() -> None:
    post = {"urlkey": "com,example)/form?__wb_method=post&a=1", "timestamp": "20240101000000",
            "url": "http://example.com/form", "mime": "text/html", "status": 200, "digest": "sha256:X",
            "length": 10, "offset": 0, "filename": "f.warc.gz", "method": "POST", "request_body": "a=1"}
    line = cdxj_line(post)
    assert line == ('com,example)/form?__wb_method=post&a=1 20240101000000 {"url": "http://example.com/form", '
                    '"mime": "text/html", "status": "200", "digest": "sha256:X", "length": "10", '
                    '"offset": "0", "filename": "f.warc.gz", "method": "POST", "requestBody": "a=1"}\n')
    resource = {**post, "status": None, "method": "GET", "mime": "image/png"}
    assert "status" not in json.loads(cdxj_line(resource).split(" ", 2)[2])


def test_cdxj_time_filters(archive: Path) -> None:
    code, out = run("export", "cdxj", "--data-dir", str(archive),
                    "--since", "2024-01-02T03:04:06", "--until", "20240102030409")
    assert code == 0, out
    stamps = [line.split(" ")[1] for line in out.splitlines()]
    assert stamps and all("20240102030406" <= s <= "20240102030409" for s in stamps)
    assert parse_bound("2024", upper=True) == "20241231235959"
    assert parse_bound("2024-03", upper=False) == "20240301000000"


def test_bad_date_is_a_usage_error(archive: Path) -> None:
    code, out = run("export", "cdxj", "--data-dir", str(archive), "--since", "yesterday")
    assert code == 2
    assert "invalid date 'yesterday'" in out
    assert "Traceback" not in out


# --- WACZ -----------------------------------------------------------------------------------


def test_wacz_passes_our_checks_and_wacz_validate(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "test.wacz"
    code, text = run("export", "wacz", "--data-dir", str(archive), "--collection", "test", "-o", str(out))
    assert code == 0, text
    assert verify_wacz(out) == []
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        package = json.loads(zf.read("datapackage.json"))
        pages = [json.loads(x) for x in zf.read("pages/pages.jsonl").decode().splitlines()]
        index = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode()
    # Both WARCs, including the foreign one kept outside warcs/, and never the .open one.
    assert sorted(n for n in names if n.startswith("archive/")) == [
        "archive/TEST-20240102030405-00000-host-1.warc.gz", "archive/other-tool.warc.gz"]
    assert package["wacz_version"] == "1.1.1"
    assert {r["path"] for r in package["resources"]} == set(names) - {"datapackage.json", "datapackage-digest.json"}
    # Pages derived from HTML 2xx responses, titles read from the captured HTML (gzip decoded).
    titles = {p["url"]: p.get("title") for p in pages[1:]}
    assert titles == {f"{HOST}/": "Home of the test site", f"{HOST}/gzip": "Gzip page",
                      f"{HOST}/chunked?x=1": "Chunked page"}
    db = open_database(archive / "index.db", readonly=True)
    assert index == "".join(iter_cdxj(db, CaptureFilter(collection="test")))
    result = subprocess.run([str(wacz_validator()), "validate", "-f", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout


def test_crawled_site_wacz_is_valid(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    if "crawl" not in cli.commands:
        pytest.skip("`socialark crawl site` is not part of this build yet")
    data_dir = crawled_core_archive(tmp_path_factory)
    out = tmp_path / "core.wacz"
    code, text = run("export", "wacz", "--data-dir", str(data_dir), "-o", str(out))
    assert code == 0, text
    assert verify_wacz(out) == []
    db = open_database(data_dir / "index.db", readonly=True)
    with zipfile.ZipFile(out) as zf:
        index = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode()
        pages = zf.read("pages/pages.jsonl").decode().splitlines()
    assert index.count("\n") == len(replayable_captures(db))
    assert len(pages) > 1
    result = subprocess.run([str(wacz_validator()), "validate", "-f", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_verify_wacz_finds_tampering(archive: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.wacz"
    write_wacz(open_database(archive / "index.db", readonly=True), good)
    bad = tmp_path / "bad.wacz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "pages/pages.jsonl":
                data += b'{"url": "http://x/", "ts": "not a date"}\n'
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    problems = verify_wacz(bad)
    assert any("pages/pages.jsonl: hash" in p for p in problems)
    assert any("RFC 3339" in p for p in problems)
    assert any("must be STORED" in p for p in problems)


def test_pages_come_from_the_pages_table_when_present(archive: Path, tmp_path: Path) -> None:
    db = open_database(archive / "index.db")
    db["pages"].insert_all([
        {"collection": "test", "url": f"{HOST}/", "timestamp": "20240102030405",
         "title": "Home", "text": "Welcome to the archived test site"},
    ])
    out = tmp_path / "p.wacz"
    write_wacz(db, out, CaptureFilter(collection="test"))
    with zipfile.ZipFile(out) as zf:
        pages = [json.loads(x) for x in zf.read("pages/pages.jsonl").decode().splitlines()]
    assert [(p["url"], p["ts"], p["title"], p["text"]) for p in pages[1:]] == [
        (f"{HOST}/", "2024-01-02T03:04:05Z", "Home", "Welcome to the archived test site")]
    assert verify_wacz(out) == []


def test_wacz_errors_are_clear(archive: Path, tmp_path: Path) -> None:
    code, out = run("export", "wacz", "--data-dir", str(archive), "-o", str(tmp_path / "x.zip"))
    assert code == 2 and "must end in .wacz" in out
    code, out = run("export", "wacz", "--data-dir", str(archive), "--collection", "nope",
                    "-o", str(tmp_path / "x.wacz"))
    assert code == 2 and "no captures to export" in out
    with pytest.raises(StorageError):
        write_wacz(open_database(archive / "index.db"), tmp_path / "y.wacz",
                   CaptureFilter(since="2030"))


# --- Datasette metadata ---------------------------------------------------------------------


def test_browse_metadata_documents_every_column(archive: Path, tmp_path: Path) -> None:
    meta_file = tmp_path / "meta.json"
    code, out = run("browse", "--data-dir", str(archive), "--metadata-only", str(meta_file))
    assert code == 0, out
    metadata = json.loads(meta_file.read_text())
    db = open_database(archive / "index.db", readonly=True)
    tables = metadata["databases"]["index"]["tables"]
    for table in db.table_names():
        if table.startswith("_") or tables[table].get("hidden"):
            continue
        assert set(tables[table]["columns"]) == {c.name for c in db[table].columns}
    assert undocumented_columns(metadata) == []
    assert tables["captures"]["facets"] == ["collection", "mime", "status"]


def test_metadata_facets_and_fts_for_posts(tmp_path: Path) -> None:
    db = open_database(tmp_path / "index.db")
    metadata = build_metadata(db)
    tables = metadata["databases"]["index"]["tables"]
    assert tables["posts"]["facets"] == ["platform", "author", {"date": "created_at"}]
    assert tables["captures"]["facets"] == ["collection", "mime", "status"]
    assert tables["posts"]["fts_table"] == "posts_fts"
    assert tables["pages"]["fts_table"] == "pages_fts"
    assert tables["posts_fts"] == {"hidden": True}
    assert tables["posts"]["columns"]["post_id"].startswith("the platform's id")
    doc = tmp_path / "schema.md"
    doc.write_text("# x\n\n## `t`\nA table.\n\n| column | meaning |\n|---|---|\n| `a` | first |\n")
    assert parse_schema_doc(doc.read_text()) == {"t": {"description": "A table.", "columns": {"a": "first"}}}


def test_posts_become_pages_when_their_page_was_captured(archive: Path, tmp_path: Path) -> None:
    db = open_database(archive / "index.db")
    db["posts"].insert_all([
        {"collection": "test", "platform": "site", "post_id": "1", "url": f"{HOST}/gzip",
         "author": "alice", "text": "captured post", "source_timestamp": "20240102030400"},
        {"collection": "test", "platform": "site", "post_id": "2", "url": f"{HOST}/never-captured",
         "author": "bob", "text": "not captured", "source_timestamp": "20240102030400"},
    ])
    out = tmp_path / "posts.wacz"
    write_wacz(db, out, CaptureFilter(collection="test"))
    with zipfile.ZipFile(out) as zf:
        pages = [json.loads(x) for x in zf.read("pages/pages.jsonl").decode().splitlines()][1:]
    assert [(p["url"], p["ts"], p["text"]) for p in pages] == [
        (f"{HOST}/gzip", "2024-01-02T03:04:06Z", "captured post")]
