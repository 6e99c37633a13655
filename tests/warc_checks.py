"""Test helpers: read WARCs back with warcio and check WARC/1.1 field rules per record type."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

REQUIRED = {"WARC-Record-ID", "Content-Length", "WARC-Date", "WARC-Type"}
REQUIRED_BY_TYPE = {
    "warcinfo": {"Content-Type"},
    "response": {"WARC-Target-URI", "Content-Type", "WARC-Payload-Digest", "WARC-Block-Digest"},
    "request": {"WARC-Target-URI", "Content-Type", "WARC-Concurrent-To", "WARC-Block-Digest"},
    "revisit": {"WARC-Target-URI", "WARC-Profile", "WARC-Payload-Digest",
                "WARC-Refers-To-Target-URI", "WARC-Refers-To-Date"},
    "resource": {"WARC-Target-URI", "Content-Type"},
}
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
ID_RE = re.compile(r"^<urn:uuid:[0-9a-f-]{36}>$")


@dataclass
class Rec:
    type: str
    headers: dict[str, str]
    http_status_line: str | None
    http_headers: list[tuple[str, str]]
    raw_http_block: bytes
    payload: bytes
    offset: int
    length: int
    filename: str


def read_records(path: Path) -> list[Rec]:
    out = []
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh, no_record_parse=True)
        for record in it:
            block = record.content_stream().read()
            headers = dict(record.rec_headers.headers)
            status, hdrs, payload = None, [], block
            if headers.get("Content-Type", "").startswith("application/http"):
                end = block.find(b"\r\n\r\n")
                head = block[:end].decode("latin-1").split("\r\n")
                status = head[0]
                for line in head[1:]:
                    k, _, v = line.partition(":")
                    hdrs.append((k, v.lstrip(" ")))
                payload = block[end + 4:]
            it.read_to_end()
            out.append(Rec(headers["WARC-Type"], headers, status, hdrs, block, payload,
                           it.get_record_offset(), it.get_record_length(), path.name))
    return out


def field_problems(records: list[Rec]) -> list[str]:
    problems = []
    ids = {r.headers["WARC-Record-ID"] for r in records}
    for r in records:
        missing = (REQUIRED | REQUIRED_BY_TYPE.get(r.type, set())) - set(r.headers)
        if missing:
            problems.append(f"{r.type} at {r.offset}: missing {sorted(missing)}")
        if not DATE_RE.match(r.headers.get("WARC-Date", "")):
            problems.append(f"{r.type} at {r.offset}: bad WARC-Date {r.headers.get('WARC-Date')}")
        if not ID_RE.match(r.headers.get("WARC-Record-ID", "")):
            problems.append(f"{r.type} at {r.offset}: bad record id")
        if r.type == "request" and r.headers.get("WARC-Concurrent-To") not in ids:
            problems.append(f"request at {r.offset}: dangling WARC-Concurrent-To")
        if r.type in ("response", "request") and r.headers.get("WARC-Target-URI", "").startswith("http"):
            if "WARC-IP-Address" not in r.headers:
                problems.append(f"{r.type} at {r.offset}: no WARC-IP-Address")
    if records and records[0].type != "warcinfo":
        problems.append("first record is not warcinfo")
    return problems


# warcio (1.8.1) sets ``unused_data`` on brotli's Decompressor, which brotli >= 1.2 (required by
# Scrapy) no longer allows, so ``warcio check`` crashes on any br-encoded record. Run the real
# checker with a wrapper decompressor that has the attribute; the check itself is unchanged.
_WARCIO_CHECK = """
import sys, brotli
from warcio import bufferedreaders
class _Br:
    def __init__(self):
        self._d = brotli.Decompressor()
        self.unused_data = None
    def decompress(self, data):
        return self._d.process(data)
bufferedreaders.BufferedReader.DECOMPRESSORS["br"] = _Br
from warcio.cli import main
main(["check", *sys.argv[1:]])
"""


def warcio_check(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    """Run ``warcio check`` (block and payload digests of every record) on ``paths``."""
    return subprocess.run([sys.executable, "-c", _WARCIO_CHECK, *map(str, paths)],
                          capture_output=True, text=True)


def closed_warcs(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "warcs").rglob("*.warc.gz"))


def assert_closed_and_valid(data_dir: Path) -> list[Path]:
    """No WARC left ``.open``, ``warcio check`` passes, every record's WARC fields are right.
    Returns the closed WARCs."""
    assert not list((data_dir / "warcs").rglob("*.open"))
    warcs = closed_warcs(data_dir)
    check = warcio_check(warcs)
    assert check.returncode == 0, check.stdout + check.stderr
    for path in warcs:
        assert field_problems(read_records(path)) == []
    return warcs
