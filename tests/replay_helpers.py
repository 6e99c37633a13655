"""Test helpers for replay/WACZ tests: a small archive written like the crawler writes it.

``build_archive`` writes WARC/1.1 files with warcio (response + request pairs linked by
``WARC-Concurrent-To``, one gzip member per record, ``sha256:`` base32 digests) covering the
cases replay must get right: plain HTML, a gzip-encoded body kept encoded, a body that was
chunked on the wire (stored de-chunked, no ``Transfer-Encoding``), binary, a redirect, a 404 and
a revisit of an identical payload. A second file lives outside ``warcs/`` (a ``foreign`` file)
and an ``.open`` file must never be served. Matching ``captures``/``warc_files`` rows are inserted.

``expected_from_warc`` reads back what a capture should replay as, straight from the WARC with
warcio, so tests compare against the file rather than against hard-coded values.
"""

from __future__ import annotations

import gzip
import io
import random
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from storage.db import open_database
from storage.records import REVISIT_PROFILE, digest_of
from storage.surt import surt

HOST = "http://site.test"


@dataclass
class Exchange:
    url: str
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    date: str  # WARC-Date
    revisit_of: tuple[str, str] | None = None  # (url, warc date) of the original


def _page(title: str, text: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>{text}</p></body></html>"
    ).encode()


HOME = _page("Home of the test site", "Welcome to the archived test site, captured for replay.")


def core_exchanges() -> list[Exchange]:
    gz_html = _page("Gzip page", "This page travelled gzip-encoded.")
    gz = gzip.compress(gz_html, mtime=0)
    rng = random.Random(7)
    binary = b"\x89PNG\r\n\x1a\n" + bytes(rng.getrandbits(8) for _ in range(3000))
    chunked = _page("Chunked page", "This page travelled with chunked transfer coding.")
    return [
        Exchange(f"{HOST}/", "200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                        ("Content-Length", str(len(HOME)))], HOME,
                 "2024-01-02T03:04:05.000001Z"),
        Exchange(f"{HOST}/gzip", "200 OK", [("Content-Type", "text/html"),
                                            ("Content-Encoding", "gzip"),
                                            ("Content-Length", str(len(gz)))], gz,
                 "2024-01-02T03:04:06.000000Z"),
        Exchange(f"{HOST}/chunked?x=1", "200 OK",
                 [("Content-Type", "text/html"),
                  ("X-Archive-Orig-Transfer-Encoding", "chunked")], chunked,
                 "2024-01-02T03:04:07.000000Z"),
        Exchange(f"{HOST}/old", "301 Moved Permanently",
                 [("Location", f"{HOST}/"), ("Content-Length", "0")], b"",
                 "2024-01-02T03:04:09.000000Z"),
        Exchange(f"{HOST}/missing", "404 Not Found",
                 [("Content-Type", "text/plain"), ("Content-Length", "9")], b"not found",
                 "2024-01-02T03:04:10.000000Z"),
        Exchange(f"{HOST}/copy", "200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                            ("Content-Length", str(len(HOME)))], HOME,
                 "2024-01-02T03:04:11.000000Z", revisit_of=(f"{HOST}/", "2024-01-02T03:04:05.000001Z")),
        # Binary in the foreign file (see build_archive).
        Exchange(f"{HOST}/img.png", "200 OK", [("Content-Type", "image/png"),
                                               ("Content-Length", str(len(binary)))], binary,
                 "2024-01-02T03:04:08.000000Z"),
    ]


def _write_pair(writer: WARCWriter, out: io.BufferedWriter, ex: Exchange) -> dict[str, object]:
    digest = digest_of(ex.body)
    http = StatusAndHeaders(ex.status, ex.headers, protocol="HTTP/1.1")
    warc_headers = {"WARC-Date": ex.date, "WARC-Payload-Digest": digest}
    if ex.revisit_of:
        warc_headers["WARC-Refers-To-Target-URI"] = ex.revisit_of[0]
        warc_headers["WARC-Refers-To-Date"] = ex.revisit_of[1]
        warc_headers["WARC-Profile"] = REVISIT_PROFILE
        record = writer.create_warc_record(ex.url, "revisit", http_headers=http,
                                           warc_headers_dict=warc_headers)
    else:
        record = writer.create_warc_record(ex.url, "response", payload=io.BytesIO(ex.body), length=len(ex.body),
                                           http_headers=http, warc_headers_dict=warc_headers)
    # warcio fills in its own sha1 digest; the crawler writes sha256 (base32), so do we.
    record.rec_headers.replace_header("WARC-Payload-Digest", digest)
    offset = out.tell()
    writer.write_record(record)
    length = out.tell() - offset
    path = ex.url.split("://", 1)[1].split("/", 1)[1]
    req_http = StatusAndHeaders(f"GET /{path} HTTP/1.1", [("Host", "site.test")],
                                is_http_request=True)
    req = writer.create_warc_record(
        ex.url, "request", http_headers=req_http,
        warc_headers_dict={"WARC-Date": ex.date,
                           "WARC-Concurrent-To": record.rec_headers["WARC-Record-ID"]})
    writer.write_record(req)
    ctype = dict((k.lower(), v) for k, v in ex.headers).get("content-type")
    return {
        "urlkey": surt(ex.url), "url": ex.url,
        "timestamp": "".join(c for c in ex.date[:19] if c.isdigit()), "warc_date": ex.date,
        "status": int(ex.status.split()[0]),
        "mime": "warc/revisit" if ex.revisit_of else (ctype or "").split(";")[0].strip() or None,
        "digest": digest, "length": length, "offset": offset,
        "record_type": "revisit" if ex.revisit_of else "response",
        "record_id": record.rec_headers["WARC-Record-ID"], "method": "GET",
        "refers_to_url": ex.revisit_of[0] if ex.revisit_of else None,
        "refers_to_date": ex.revisit_of[1] if ex.revisit_of else None,
    }


def _write_file(path: Path, exchanges: list[Exchange]) -> list[dict[str, object]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests"}))
        for ex in exchanges:
            rows.append(_write_pair(writer, out, ex))
    return rows


def build_archive(data_dir: Path, collection: str = "test", foreign_dir: Path | None = None) -> Database:
    """Write the test archive under ``data_dir`` and index it; return the open index."""
    exchanges = core_exchanges()
    main = data_dir / "warcs" / collection / "TEST-20240102030405-00000-host-1.warc.gz"
    foreign = (foreign_dir or data_dir.parent / "elsewhere") / "other-tool.warc.gz"
    db = open_database(data_dir / "index.db")
    files = [(main, exchanges[:-1], "closed"), (foreign, exchanges[-1:], "foreign")]
    # An .open file being written: indexed rows must never be exported or replayed.
    open_file = main.with_name("TEST-20240102040000-00001-host-1.warc.gz.open")
    files.append((open_file, [Exchange(f"{HOST}/in-progress", "200 OK",
                                       [("Content-Type", "text/plain")], b"partial",
                                       "2024-01-02T04:00:00.000000Z")], "open"))
    for path, exs, state in files:
        rows = _write_file(path, exs)
        name = path.name.removesuffix(".open")
        for row in rows:
            row.update(collection=collection, filename=name)
        db["captures"].insert_all(rows)
        db["warc_files"].insert({"name": name, "collection": collection, "path": str(path.resolve()),
                                 "size": path.stat().st_size, "records": len(rows) * 2 + 1,
                                 "state": state})
    return db


@dataclass
class Expected:
    status: int
    payload: bytes


def _read_record(path: str, offset: int):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        fh.seek(offset)
        for record in ArchiveIterator(fh):
            return record.http_headers.get_statuscode(), record.raw_stream.read()
    raise AssertionError(f"no record at {path}:{offset}")


def expected_from_warc(db: Database, capture: dict[str, object]) -> Expected:
    """Status and payload a capture must replay with, read from the WARC with warcio.

    Revisits replay their own status with the payload of the original they refer to.
    """
    path = db.execute("select path from warc_files where name = ?", [capture["filename"]]).fetchone()[0]
    status, payload = _read_record(path, int(capture["offset"]))  # type: ignore[arg-type]
    if capture["record_type"] == "revisit":
        # The original: same payload digest at the referred URL, preferring the referred date.
        orig = db.execute(
            "select c.offset, f.path from captures c join warc_files f on f.name = c.filename "
            "where c.url = ? and c.digest = ? and c.record_type = 'response' "
            "order by c.warc_date = ? desc, c.timestamp limit 1",
            [capture["refers_to_url"], capture["digest"], capture["refers_to_date"]]).fetchone()
        assert orig, f"no original for revisit {capture['url']}"
        _, payload = _read_record(orig[1], orig[0])
    return Expected(int(status), payload)


def replayable_captures(db: Database) -> list[dict[str, object]]:
    """Captures in closed/foreign files (what replay and export must serve)."""
    return list(db.query(
        "select c.*, f.path as path from captures c join warc_files f on f.name = c.filename "
        "where f.state != 'open' order by c.urlkey, c.timestamp"))


WACZ_REQUIREMENT = "wacz==0.5.0"


def wacz_validator() -> Path:
    """The ``wacz`` CLI (py-wacz) from its own venv, created on first use.

    py-wacz pins old dependencies (typer, frictionless), so it never shares our environment.
    ``$SOCIALARK_WACZ_VENV`` overrides the default ``~/.cache/socialark/wacz-venv``.
    """
    import os
    import subprocess
    import sys

    venv = Path(os.environ.get("SOCIALARK_WACZ_VENV") or Path.home() / ".cache/socialark/wacz-venv")
    exe = venv / "bin" / "wacz"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", WACZ_REQUIREMENT], check=True)
    return exe


RWP_VERSION = "2.5.3"


def replaywebpage_dir() -> Path:
    """Directory holding ReplayWeb.page's prebuilt ``ui.js`` and ``sw.js`` (npm package).

    ``npm pack`` fetches just the package tarball: the prebuilt bundles need none of its
    dependencies (and a full ``npm install`` needs versions a registry mirror may lack).
    ``$SOCIALARK_RWP_DIR`` overrides the default ``~/.cache/socialark/replaywebpage``.
    """
    import os
    import subprocess
    import tarfile

    base = Path(os.environ.get("SOCIALARK_RWP_DIR") or Path.home() / ".cache/socialark/replaywebpage")
    package = base / "package"
    if not (package / "ui.js").exists() or not (package / "sw.js").exists():
        base.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", f"replaywebpage@{RWP_VERSION}", "--silent"], cwd=base,
                       check=True, capture_output=True)
        with tarfile.open(base / f"replaywebpage-{RWP_VERSION}.tgz") as tar:
            tar.extractall(base, filter="data")
    return package


_CRAWLS: dict[str, Path] = {}


def crawl_core_site(data_dir: Path, collection: str = "core") -> None:
    """Crawl the core test site with ``socialark crawl site`` (HTTP path, no browser).

    ``/error`` (a 500 the crawler retries with growing back-off) is excluded: it only makes the
    crawl slow, and replay of failures is covered by the 404 and redirects.
    """
    import subprocess

    from tests.sites.core_site import CoreSite

    with CoreSite() as site:
        result = subprocess.run(
            ["socialark", "crawl", "site", site.base_url, "--data-dir", str(data_dir),
             "--collection", collection, "--no-browser", "--delay", "0", "--concurrency", "8",
             "--exclude", "/error$"],
            capture_output=True, text=True, check=False,
        )
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-2000:]


def crawled_core_archive(tmp_path_factory: object) -> Path:
    """One crawl of the core site per test session, shared by the replay/WACZ/RWP modules.

    Tests only read from it (exports go to their own ``tmp_path``).
    """
    if "data" not in _CRAWLS:
        data_dir = tmp_path_factory.mktemp("core-crawl") / "data"  # type: ignore[attr-defined]
        crawl_core_site(data_dir)
        _CRAWLS["data"] = data_dir
    return _CRAWLS["data"]
