"""Live index rows are built from the records' parts, and equal the rows parsed from bytes."""

from __future__ import annotations

import dataclasses

from storage.exchange import HttpExchange, build_records
from storage.indexer import row_for_written
from storage.records import HttpHead


def _rows(main, request):  # type: ignore[no-untyped-def]
    return row_for_written(main, collection="c", crawl_id="x", filename="f.warc.gz", offset=10,
                           length=99, request=request)


def test_rows_from_parts_equal_rows_parsed_from_the_blocks() -> None:
    response = HttpHead(b"HTTP/1.1 404 Not Found", [
        (b"Content-Type", b" application/JSON; charset=utf-8"), (b"Transfer-Encoding", b"chunked"),
        (b"X-Folded", b"a\r\n b"), (b"NoColonLine", b""),
    ])
    request = HttpHead(b"POST /api/search HTTP/1.1", [
        (b"Host", b"example.test"), (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"Cookie", b"secret"),
    ])
    ex = HttpExchange("http://example.test/api/search", "2026-01-02T03:04:05.000000Z", request,
                      b"q=archive&page=2", response, b'{"error": "not found"}')
    main, req = build_records(ex)
    assert main.http_head is not None and req.http_payload == b"q=archive&page=2"
    live = _rows(main, req)
    parsed = _rows(dataclasses.replace(main, http_head=None),
                   dataclasses.replace(req, http_head=None))
    assert live == parsed
    assert (live["status"], live["mime"], live["method"]) == (404, "application/json", "POST")
    assert live["request_body"]  # the POST body is part of the urlkey (pywb's convention)
