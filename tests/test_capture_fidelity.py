"""Wire fidelity: what is in the WARC is what went over the wire (core test site, real crawl)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from storage.exchange import REDACTED
from tests.sites.core_site import CoreSite
from tests.warc_checks import closed_warcs, field_problems, read_records, warcio_check


def _records(data_dir: Path):
    out = []
    for path in closed_warcs(data_dir):
        out += read_records(path)
    return out


def _sha256_b32(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def _expected_headers(expected) -> list[tuple[str, str]]:
    out = []
    for k, v in expected.headers:
        name = k.decode("latin-1")
        if name.lower() == "transfer-encoding":
            name = "X-Archive-Orig-" + name
        out.append((name, v.decode("latin-1")))
    return out


def test_every_warc_passes_warcio_check_and_field_rules(core_crawl: Path) -> None:
    warcs = closed_warcs(core_crawl)
    assert len(warcs) >= 2, "a 1MB --warc-size over ~6MB of content must rotate"
    proc = warcio_check(warcs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in warcs:
        records = read_records(path)
        assert records[0].type == "warcinfo"
        assert field_problems(records) == []
    assert not list((core_crawl / "warcs").rglob("*.open"))


def test_responses_are_byte_identical_to_the_wire(core_crawl: Path, core_site: CoreSite) -> None:
    responses = [r for r in _records(core_crawl) if r.type == "response"]
    assert len(responses) > 50
    checked = set()
    for rec in responses:
        url = rec.headers["WARC-Target-URI"]
        expected = core_site.expected(url)
        assert rec.http_status_line == expected.status_line.decode("latin-1"), url
        assert rec.http_headers == _expected_headers(expected), url
        assert rec.payload == expected.entity_body, url
        assert rec.headers["WARC-Payload-Digest"] == _sha256_b32(expected.entity_body)
        checked.add(url.replace(core_site.base_url, "/"))
    for rec in _records(core_crawl):
        if rec.type == "revisit":  # header block as sent, payload digest of the body sent
            url = rec.headers["WARC-Target-URI"]
            expected = core_site.expected(url)
            assert rec.http_headers == _expected_headers(expected), url
            assert rec.headers["WARC-Payload-Digest"] == _sha256_b32(expected.entity_body)
            checked.add(url.replace(core_site.base_url, "/"))
    for special in ("/enc/gzip.html", "/enc/deflate.html", "/enc/br.html", "/enc/chunked.html",
                    "/enc/chunked-gzip.html", "/enc/latin1.html", "/enc/sjis.html",
                    "/headers/cookies", "/headers/reason", "/http10", "/redirect/start",
                    "/redirect/step2", "/redirect/step3", "/redirect/final", "/missing",
                    "/error", "/docs/report.pdf", "/media/big.bin", "/robots.txt"):
        assert special in checked, f"{special} not captured"


def test_encoded_and_chunked_bodies_stay_as_sent(core_crawl: Path, core_site: CoreSite) -> None:
    by_url = {r.headers["WARC-Target-URI"]: r for r in _records(core_crawl) if r.type == "response"}
    gz = by_url[core_site.url("/enc/gzip.html")]
    assert ("Content-Encoding", "gzip") in gz.http_headers
    assert gz.payload[:2] == b"\x1f\x8b"  # still compressed
    chunked = by_url[core_site.url("/enc/chunked-gzip.html")]
    assert ("X-Archive-Orig-Transfer-Encoding", "chunked") in chunked.http_headers
    assert not any(k.lower() == "transfer-encoding" for k, _ in chunked.http_headers)
    assert chunked.payload[:2] == b"\x1f\x8b"  # de-chunked, still gzip
    cookies = by_url[core_site.url("/headers/cookies")]
    names = [k for k, _ in cookies.http_headers]
    assert names.count("Set-Cookie") == 3
    assert names.index("X-Trace") > names.index("Set-Cookie")  # interleaving order kept
    reason = by_url[core_site.url("/headers/reason")]
    assert reason.http_status_line == "HTTP/1.1 200 Okay Then"
    assert by_url[core_site.url("/http10")].http_status_line.startswith("HTTP/1.0 200")


def test_request_records_match_what_the_server_received(core_crawl: Path, core_site: CoreSite) -> None:
    received: dict[str, list[list[tuple[bytes, bytes]]]] = {}
    for req in core_site.requests:
        received.setdefault(req.target, []).append(req.headers)
    requests = [r for r in _records(core_crawl) if r.type == "request"]
    responses = {r.headers["WARC-Record-ID"]: r for r in _records(core_crawl) if r.type in ("response", "revisit")}
    saw_cookie = False
    for rec in requests:
        method, target, proto = rec.http_status_line.split(" ")
        assert method == "GET" and proto == "HTTP/1.1"
        main = responses[rec.headers["WARC-Concurrent-To"]]
        assert main.headers["WARC-Target-URI"] == rec.headers["WARC-Target-URI"]
        assert main.headers["WARC-Date"] == rec.headers["WARC-Date"]
        if rec.headers["WARC-Target-URI"].startswith(core_site.base_url):
            assert target in received, target  # full path and query on the request line
            candidates = [
                [(k.decode("latin-1"), REDACTED.decode() if k.lower() == b"cookie" else v.decode("latin-1"))
                 for k, v in headers]
                for headers in received[target]
            ]
            assert rec.http_headers in candidates, target
            saw_cookie |= any(k.lower() == "cookie" for k, _ in rec.http_headers)
    assert saw_cookie, "the site sets cookies; later requests must carry a (redacted) Cookie"
    assert any("?" in r.http_status_line for r in requests), "query strings kept on the request line"


def test_identical_payloads_become_revisits(core_crawl: Path, core_site: CoreSite) -> None:
    records = _records(core_crawl)
    by_url: dict[str, list] = {}
    for r in records:
        if r.type in ("response", "revisit"):
            by_url.setdefault(r.headers["WARC-Target-URI"], []).append(r)
    a = by_url[core_site.url("/dup/a.html")] + by_url[core_site.url("/dup/b.html")]
    assert sorted(r.type for r in a) == ["response", "revisit"]
    revisit = next(r for r in a if r.type == "revisit")
    original = next(r for r in a if r.type == "response")
    assert revisit.headers["WARC-Refers-To-Target-URI"] == original.headers["WARC-Target-URI"]
    assert revisit.headers["WARC-Refers-To-Date"] == original.headers["WARC-Date"]
    assert revisit.headers["WARC-Refers-To"] == original.headers["WARC-Record-ID"]
    assert revisit.headers["WARC-Payload-Digest"] == original.headers["WARC-Payload-Digest"]
    assert revisit.payload == b""
    big = by_url[core_site.url("/media/big.bin")] + by_url[core_site.url("/media/copy-of-big.bin")]
    assert sorted(r.type for r in big) == ["response", "revisit"]
