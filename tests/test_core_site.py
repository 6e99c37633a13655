"""Self-tests for the core test site: the bytes on the wire equal ``expected()``."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import brotli
import pytest

from tests.sites.core_site import CoreSite, header

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site() -> Iterator[CoreSite]:
    with CoreSite() as s:
        yield s


def connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def send(
    sock: socket.socket, base_url: str, target: str, method: str = "GET", extra: bytes = b""
) -> None:
    host = urlsplit(base_url).netloc.encode()
    sock.sendall(
        method.encode()
        + b" "
        + target.encode()
        + b" HTTP/1.1\r\nHost: "
        + host
        + b"\r\nUser-Agent: core-site-test\r\n"
        + extra
        + b"\r\n"
    )


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_all(sock: socket.socket) -> bytes:
    buf = bytearray()
    while chunk := sock.recv(65536):
        buf += chunk
    return bytes(buf)


def dechunk(body: bytes) -> tuple[bytes, list[bytes]]:
    """Independent chunked decoder: (payload, chunk-size lines)."""
    out, lines, pos = bytearray(), [], 0
    while True:
        eol = body.index(b"\r\n", pos)
        line = body[pos:eol]
        lines.append(line)
        size = int(line.split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            assert body[pos:] == b"\r\n"
            return bytes(out), lines
        out += body[pos : pos + size]
        assert body[pos + size : pos + size + 2] == b"\r\n"
        pos += size + 2


KEEPALIVE_TARGETS = [
    "/",
    "/enc/chunked.html",
    "/headers/cookies",
    "/enc/chunked-gzip.html",
    "/enc/br.html",
    "/headers/reason",
    "/media/big.bin",
    "/redirect/start",
    "/missing",
    "/search?q=archive&page=2",
    "/trap/x/x/",
]


def test_wire_bytes_equal_expected_on_one_keepalive_connection(site: CoreSite) -> None:
    sock = connect(site.base_url)
    with sock:
        for target in KEEPALIVE_TARGETS:
            want = site.expected(site.url(target)).wire_bytes()
            send(sock, site.base_url, target)
            assert recv_exactly(sock, len(want)) == want, target
        send(sock, site.base_url, "/about.html", extra=b"Connection: close\r\n")
        assert recv_all(sock) == site.expected(site.url("/about.html")).wire_bytes()
    on_conn = [r.target for r in site.requests if r.target in KEEPALIVE_TARGETS]
    assert set(KEEPALIVE_TARGETS) <= set(on_conn)


def test_head_sends_headers_only_and_keeps_connection(site: CoreSite) -> None:
    expected = site.expected(site.url("/enc/gzip.html"))
    with connect(site.base_url) as sock:
        send(sock, site.base_url, "/enc/gzip.html", method="HEAD")
        head = recv_exactly(sock, len(expected.head_bytes()))
        assert head == expected.head_bytes()
        send(sock, site.base_url, "/robots.txt", extra=b"Connection: close\r\n")
        rest = recv_all(sock)
    assert rest == site.expected(site.url("/robots.txt")).wire_bytes()
    assert b"Disallow: /private/" in rest


def test_chunked_framing_and_entity_body(site: CoreSite) -> None:
    for target, encoding in (("/enc/chunked.html", None), ("/enc/chunked-gzip.html", "gzip")):
        exp = site.expected(site.url(target))
        assert exp.chunked
        assert exp.content_encoding == encoding
        assert header(exp, b"Content-Length") is None
        assert header(exp, b"Transfer-Encoding") == b"chunked"
        payload, size_lines = dechunk(exp.body_bytes())
        assert payload == exp.entity_body
        assert len(size_lines) >= 4  # several chunks plus the last chunk
        html = gzip.decompress(payload) if encoding else payload
        assert html.startswith(b"<!DOCTYPE html>")
    _, lines = dechunk(site.expected(site.url("/enc/chunked.html")).body_bytes())
    assert any(b";" in line for line in lines), "a chunk extension is on the wire"


def test_http_client_decodes_what_expected_says(site: CoreSite) -> None:
    """A third-party HTTP parser (http.client) reads the same entity bodies."""
    parts = urlsplit(site.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    decoders = {"gzip": gzip.decompress, "deflate": zlib.decompress, "br": brotli.decompress}
    try:
        for name in ("gzip", "deflate", "br", "chunked", "chunked-gzip"):
            conn.request("GET", f"/enc/{name}.html")
            resp = conn.getresponse()
            body = resp.read()
            exp = site.expected(site.url(f"/enc/{name}.html"))
            assert resp.status == 200
            assert body == exp.entity_body
            enc = resp.getheader("Content-Encoding")
            html = decoders[enc](body) if enc else body
            assert b"Encoded: " + name.encode() in html
    finally:
        conn.close()


def test_headers_kept_verbatim(site: CoreSite) -> None:
    exp = site.expected(site.url("/headers/cookies"))
    names = [k for k, _ in exp.headers]
    cookie_block = [n for n in names if n in (b"Set-Cookie", b"X-Trace")]
    assert cookie_block == [b"Set-Cookie", b"X-Trace", b"Set-Cookie", b"Set-Cookie"]
    assert {b"x-lower-case", b"X-UPPER-CASE", b"ETag"} <= set(names)
    assert header(exp, b"X-Latin1") == b"caf\xe9"
    assert site.expected(site.url("/headers/reason")).status_line == b"HTTP/1.1 200 Okay Then"
    for url in [site.base_url, *sorted(site.html_pages)]:
        assert header(site.expected(url), b"Date") is None, "responses must be deterministic"


def test_http10_closes_connection(site: CoreSite) -> None:
    exp = site.expected(site.url("/http10"))
    assert exp.status_line == b"HTTP/1.0 200 OK"
    assert header(exp, b"Connection") == b"close"
    with connect(site.base_url) as sock:
        send(sock, site.base_url, "/http10")
        assert recv_all(sock) == exp.wire_bytes()  # returns only because the server closed


def test_second_host_serves_cross_host_requisites(site: CoreSite) -> None:
    assert urlsplit(site.second_base_url).netloc != urlsplit(site.base_url).netloc
    for path in ("fonts/site.woff2", "img/remote.png"):
        url = site.second_base_url + path
        assert url in site.requisite_urls
        with connect(site.second_base_url) as sock:
            send(sock, site.second_base_url, "/" + path, extra=b"Connection: close\r\n")
            assert recv_all(sock) == site.expected(url).wire_bytes()
    css = site.expected(site.url("/static/site.css")).entity_body.decode()
    assert f"{site.second_base_url}fonts/site.woff2" in css
    assert "url(../img/bg.png)" in css
    hosts = {r.host for r in site.requests}
    assert urlsplit(site.second_base_url).netloc in hosts
    # the main host does not serve the second host's files
    assert site.expected(site.url("/fonts/site.woff2")).status == 404


def test_request_log_records_method_headers_and_body(site: CoreSite) -> None:
    with connect(site.base_url) as sock:
        send(
            sock,
            site.base_url,
            "/search?q=archive&page=1",
            method="POST",
            extra=b"Content-Length: 5\r\nX-Probe: Mixed-Case\r\nConnection: close\r\n",
        )
        sock.sendall(b"hello")
        recv_all(sock)
    post = [r for r in site.requests if r.method == "POST"][-1]
    assert post.target == "/search?q=archive&page=1"
    assert post.body == b"hello"
    assert (b"X-Probe", b"Mixed-Case") in post.headers
    assert post.header("user-agent") == b"core-site-test"


def test_html_pages_reachable_and_in_scope(site: CoreSite) -> None:
    pages = site.html_pages
    assert len(pages) >= 30
    for must in (
        "",
        "section/a/deep/page-2.html",
        "search?q=archive&page=2",
        "redirect/final",
        "enc/sjis.html",
        "media/gallery.html",
    ):
        assert site.url(must) in pages
    for url in pages:
        exp = site.expected(url)
        assert exp.status == 200
        assert header(exp, b"Content-Type").startswith(b"text/html")
        assert not site.is_trap(url)
        assert not site.is_disallowed(url)
        assert urlsplit(url).path.count("/") <= 5
    assert site.url("private/secret.html") not in pages
    assert site.expected(site.url("private/secret.html")).status == 200


def test_redirect_chain(site: CoreSite) -> None:
    hops = [
        ("/redirect/start", 301, site.url("redirect/step2")),
        ("/redirect/step2", 302, "step3"),
        ("/redirect/step3", 307, "/redirect/final"),
    ]
    for target, code, location in hops:
        exp = site.expected(site.url(target))
        assert exp.status == code
        assert header(exp, b"Location") == location.encode()
    assert site.expected(site.url("/redirect/final")).status == 200
    assert site.expected(site.url("/error")).status == 500
    assert site.expected(site.url("/missing")).entity_body.startswith(b"<!DOCTYPE html>")


def test_traps_never_end(site: CoreSite) -> None:
    body = site.expected(site.url("/calendar?month=2024-12")).entity_body
    assert b'href="/calendar?month=2025-01"' in body
    body = site.expected(site.url("/trap/x/x/x/")).entity_body
    assert b'href="x/"' in body
    assert site.is_trap(site.url("/trap/x/x/x/x/"))
    body = site.expected(site.url("/session?sid=3&trail=1.2")).entity_body
    nxt = re.search(rb'href="(/session\?[^"]+)"', body)
    assert nxt is not None
    assert nxt.group(1) == b"/session?sid=4&amp;trail=1.2.3"


def test_binaries_are_valid_and_duplicates_identical(site: CoreSite) -> None:
    big = site.expected(site.url("/media/big.bin")).entity_body
    assert len(big) == 2 * 1024 * 1024
    assert site.expected(site.url("/media/copy-of-big.bin")).entity_body == big
    a = site.expected(site.url("/dup/a.html")).entity_body
    assert len(a) >= 2048
    assert a == site.expected(site.url("/dup/b.html")).entity_body
    assert len(site.expected(site.url("/media/clip.mp4")).entity_body) > 1_000_000
    pdf = site.expected(site.url("/docs/report.pdf")).entity_body
    startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf[startxref:].startswith(b"xref")
    png = site.expected(site.url("/img/logo.png")).entity_body
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pos = 8
    while pos < len(png):  # every chunk's CRC is right
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind_data = png[pos + 4 : pos + 8 + length]
        assert zlib.crc32(kind_data) == int.from_bytes(
            png[pos + 8 + length : pos + 12 + length], "big"
        )
        pos += 12 + length
    assert site.expected(site.url("/img/anim.gif")).entity_body.startswith(b"GIF89a")


def test_text_encodings(site: CoreSite) -> None:
    latin = site.expected(site.url("/enc/latin1.html"))
    assert header(latin, b"Content-Type") == b"text/html; charset=iso-8859-1"
    assert "café crème" in latin.entity_body.decode("iso-8859-1")
    assert b"caf\xe9" in latin.entity_body
    sjis = site.expected(site.url("/enc/sjis.html"))
    assert "日本語" in sjis.entity_body.decode("shift_jis")


def test_module_serves_from_command_line() -> None:
    """``python -m tests.sites.core_site`` prints its URLs, serves, and stops on Ctrl-C."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.sites.core_site", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            urls = [m.group(1) for line in lines if (m := re.search(r"(http://\S+)", line))]
            assert len(urls) == 2, lines
            for base in urls:
                with connect(base) as sock:
                    send(sock, base, "/robots.txt", extra=b"Connection: close\r\n")
                    assert recv_all(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0


SPIDER = """
import json, sys
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule

base, out = sys.argv[1], sys.argv[2]
seen = []


class Probe(CrawlSpider):
    name = "probe"
    allowed_domains = ["127.0.0.1"]
    start_urls = [base]
    rules = (Rule(LinkExtractor(deny=[r"/calendar", r"/trap/", r"/session"]),
                  callback="parse_item", follow=True),)

    def parse_start_url(self, response):
        return self.parse_item(response)

    def parse_item(self, response):
        ctype = response.headers.get("Content-Type", b"").decode()
        seen.append([response.url, response.status, ctype])


process = CrawlerProcess(settings={"LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": True,
                                   "TELNETCONSOLE_ENABLED": False, "RETRY_ENABLED": False})
process.crawl(Probe)
process.start()
with open(out, "w") as f:
    json.dump(seen, f)
"""


def test_scrapy_crawl_finds_exactly_html_pages(tmp_path: Path) -> None:
    """An independent link extractor (Scrapy's, robots.txt obeyed) reaches ``html_pages``."""
    script, out = tmp_path / "probe.py", tmp_path / "seen.json"
    script.write_text(SPIDER)
    with CoreSite() as site:
        subprocess.run(
            [sys.executable, str(script), site.base_url, str(out)],
            check=True,
            cwd=tmp_path,
            timeout=120,
        )
        requested = {r.target for r in site.requests}
    seen = json.loads(out.read_text())
    html = {url for url, status, ctype in seen if status == 200 and ctype.startswith("text/html")}
    assert html == site.html_pages
    assert "/robots.txt" in requested
    assert not any(t.startswith("/private/") for t in requested)
