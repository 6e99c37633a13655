"""One HTTP exchange -> its WARC records (response or revisit, then request).

Used by every capture path (Scrapy's downloader, the browser), so the same fidelity rules, dedup
and redaction apply whatever fetched the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.records import (
    REVISIT_PROFILE,
    Header,
    HttpHead,
    Record,
    digest_of,
    http_block_record,
    new_record_id,
)

REDACTED = b"[redacted by socialark]"
# Request header names containing any of these are redacted (Cookie, Authorization,
# X-Api-Key, X-Auth-Token, X-Session-Id...); ARCHIVE_REDACT_NAMES replaces the list.
DEFAULT_REDACT = (b"cookie", b"authorization", b"token", b"secret", b"password", b"key",
                  b"credential", b"session", b"auth")


@dataclass
class HttpExchange:
    """What went over the wire for one request.

    ``response_body`` is the entity body: transfer coding removed, content coding kept (unless
    ``body_decoded``, when a browser gave us the decoded body).
    """

    url: str
    date: str
    request_head: HttpHead
    request_body: bytes
    response_head: HttpHead
    response_body: bytes
    ip_address: str | None = None
    truncated: str | None = None
    body_decoded: bool = False
    protocol: str | None = None
    extra_fields: list[tuple[str, str]] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.request_head.first_line.split(b" ", 1)[0].decode("latin-1") or "GET"

    @property
    def status(self) -> int | None:
        return self.response_head.status


@dataclass(frozen=True)
class Original:
    """The capture a revisit points at."""

    url: str
    date: str
    record_id: str


def normalize_response_head(head: HttpHead, body: bytes, *, body_decoded: bool) -> HttpHead:
    """Make the stored head describe the stored body; every change is a visible rename."""
    out = HttpHead(head.first_line, list(head.headers))
    renamed_te = out.rename(b"Transfer-Encoding")
    if body_decoded:
        renamed_ce = out.rename(b"Content-Encoding")
        if renamed_ce or out.has(b"Content-Length") or renamed_te:
            out.rename(b"Content-Length")
            out.headers.append((b"Content-Length", str(len(body)).encode()))
    return out


def redact_request_head(head: HttpHead, names: tuple[bytes, ...] = DEFAULT_REDACT) -> HttpHead:
    headers: list[Header] = [
        (k, REDACTED if any(n in k.lower() for n in names) else v) for k, v in head.headers
    ]
    return HttpHead(head.first_line, headers)


def build_records(
    ex: HttpExchange,
    *,
    algorithm: str = "sha256",
    redact: tuple[bytes, ...] = DEFAULT_REDACT,
    original: Original | None = None,
    payload_digest: str | None = None,
) -> tuple[Record, Record]:
    """Return (response-or-revisit, request) records, linked by ``WARC-Concurrent-To``."""
    fields: list[tuple[str, str]] = []
    if ex.ip_address:
        fields.append(("WARC-IP-Address", ex.ip_address))
    if ex.protocol:
        fields.append(("WARC-Protocol", ex.protocol))
    if ex.truncated:
        fields.append(("WARC-Truncated", ex.truncated))
    fields += ex.extra_fields
    head = normalize_response_head(ex.response_head, ex.response_body, body_decoded=ex.body_decoded)
    pdigest = payload_digest or digest_of(ex.response_body, algorithm)
    if original is None:
        main = http_block_record(
            "response", ex.url, ex.date, head, ex.response_body,
            msgtype="response", algorithm=algorithm, extra=fields, payload_digest=pdigest,
        )
    else:
        fields = [f for f in fields if f[0] != "WARC-Truncated"] + [
            ("WARC-Profile", REVISIT_PROFILE),
            ("WARC-Refers-To-Target-URI", original.url),
            ("WARC-Refers-To-Date", original.date),
            ("WARC-Refers-To", original.record_id),
        ]
        # identical-payload-digest revisit: keep this response's own headers, no payload.
        main = http_block_record(
            "revisit", ex.url, ex.date, head, b"",
            msgtype="response", algorithm=algorithm, extra=fields, payload_digest=pdigest,
        )
    req_fields = [("WARC-Concurrent-To", main.record_id)]
    if ex.ip_address:
        req_fields.append(("WARC-IP-Address", ex.ip_address))
    request = http_block_record(
        "request", ex.url, ex.date, redact_request_head(ex.request_head, redact),
        ex.request_body, msgtype="request", algorithm=algorithm, extra=req_fields,
        record_id=new_record_id(),
    )
    return main, request


def resource_record(
    uri: str, date: str, content_type: str, data: bytes, *, algorithm: str = "sha256",
    extra: list[tuple[str, str]] | None = None,
) -> Record:
    """A ``resource`` record (screenshots, extracted text): not an HTTP message."""
    d = digest_of(data, algorithm)
    return Record(
        warc_type="resource",
        target_uri=uri,
        date=date,
        content_type=content_type,
        block=data,
        fields=[("WARC-Payload-Digest", d), ("WARC-Block-Digest", d), *(extra or [])],
    )
