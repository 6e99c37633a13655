"""Building WARC/1.1 records byte by byte.

We serialize records ourselves instead of going through warcio's ``StatusAndHeaders``: warcio
re-serializes HTTP headers (percent-encoding non-ASCII bytes, normalising separators), and our
promise is that the HTTP header block in a record is what the server sent. warcio is still what
reads our files back in the tests (``ArchiveIterator``, ``warcio check``).

The only changes made to a captured HTTP head are the ones replay needs, each one visible in the
record: a ``Transfer-Encoding`` header over a body we store de-chunked is renamed
``X-Archive-Orig-Transfer-Encoding``; for bodies a browser handed over decoded,
``Content-Encoding`` is renamed the same way and ``Content-Length`` is set to the stored length.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

WARC_VERSION = b"WARC/1.1"
CRLF = b"\r\n"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
ORIG_PREFIX = b"X-Archive-Orig-"

Header = tuple[bytes, bytes]


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def warc_date(dt: datetime) -> str:
    """WARC/1.1 date with microseconds, always UTC and ``Z``-terminated."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}Z"


_NON_DIGIT = re.compile(r"[^0-9]")


def timestamp14(date: str) -> str:
    """``2024-01-02T03:04:05.123Z`` -> ``20240102030405`` (CDX timestamp)."""
    digits = _NON_DIGIT.sub("", date[:19])  # ASCII digits only, never "²"
    return digits.ljust(14, "0")[:14]


class Digester:
    """Incremental digest rendered the way WARC tools expect (``sha256:`` + base32)."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ("sha256", "sha1"):
            raise ValueError(f"unsupported digest algorithm {algorithm!r} (use sha256 or sha1)")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def __str__(self) -> str:
        return f"{self.algorithm}:{base64.b32encode(self._hash.digest()).decode('ascii')}"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    d = Digester(algorithm)
    d.update(data)
    return str(d)


@dataclass
class HttpHead:
    """A status/request line plus header lines, as raw bytes in wire order."""

    first_line: bytes
    headers: list[Header] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: bytes) -> HttpHead:
        """Parse a raw head (``first line CRLF headers``; the blank line optional).

        Continuation lines (obs-fold) are kept attached to their header verbatim.
        """
        lines = raw.split(b"\n")
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        while lines and lines[-1] == b"":
            lines.pop()
        head = cls(lines[0] if lines else b"")
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and head.headers:
                name, value = head.headers[-1]
                head.headers[-1] = (name, value + b"\r\n" + line)
            elif b":" in line:
                name, _, value = line.partition(b":")
                head.headers.append((name, value.lstrip(b" \t")))
            else:
                # A malformed line: keep it (as a header without value) so nothing is lost.
                head.headers.append((line, b""))
        return head

    def get(self, name: bytes) -> bytes | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def has(self, name: bytes) -> bool:
        return self.get(name) is not None

    def rename(self, name: bytes, new_prefix: bytes = ORIG_PREFIX) -> bool:
        """Rename every ``name`` header to ``X-Archive-Orig-<name>``; True if any was."""
        lname, found = name.lower(), False
        for i, (k, v) in enumerate(self.headers):
            if k.lower() == lname:
                self.headers[i] = (new_prefix + k, v)
                found = True
        return found

    def replace(self, name: bytes, value: bytes) -> None:
        """Set ``name`` to ``value`` in place of its first occurrence (or append it)."""
        lname = name.lower()
        for i, (k, _) in enumerate(self.headers):
            if k.lower() == lname:
                self.headers[i] = (k, value)
                return
        self.headers.append((name, value))

    def to_bytes(self) -> bytes:
        parts = [self.first_line, CRLF]
        for k, v in self.headers:
            parts += [k, b": ", v, CRLF] if v or b":" not in k else [k, CRLF]
        parts.append(CRLF)
        return b"".join(parts)

    @property
    def status(self) -> int | None:
        fields = self.first_line.split(b" ", 2)
        if (len(fields) >= 2 and fields[0].startswith(b"HTTP/") and fields[1].isdigit()
                and len(fields[1]) <= 3):
            return int(fields[1])
        return None


@dataclass
class Record:
    """A WARC record ready to serialize: WARC header fields plus a content block."""

    warc_type: str
    target_uri: str | None
    date: str
    content_type: str | None
    block: bytes
    record_id: str = field(default_factory=new_record_id)
    fields: list[tuple[str, str]] = field(default_factory=list)
    # The parts an HTTP-message block was built from (``http_block_record``), so the live index
    # row takes status, mime and method from them instead of parsing the block back. Not
    # serialised: the block is the record.
    http_head: HttpHead | None = field(default=None, compare=False, repr=False)
    http_head_length: int = field(default=0, compare=False, repr=False)

    @property
    def http_payload(self) -> bytes:
        """The HTTP payload of a block built by ``http_block_record`` (b"" otherwise)."""
        return self.block[self.http_head_length:] if self.http_head is not None else b""

    def to_bytes(self) -> bytes:
        return self.header_bytes(len(self.block)) + self.block + CRLF + CRLF

    def header_bytes(self, content_length: int) -> bytes:
        """``WARC/1.1`` line, fields and the blank line, for a block of ``content_length`` bytes
        (a streamed record's block is not in memory: see ``storage.warc_stream``)."""
        head: list[tuple[str, str]] = [
            ("WARC-Type", self.warc_type),
            ("WARC-Record-ID", self.record_id),
            ("WARC-Date", self.date),
        ]
        if self.target_uri is not None:
            head.append(("WARC-Target-URI", self.target_uri))
        head += self.fields
        if self.content_type:
            head.append(("Content-Type", self.content_type))
        head.append(("Content-Length", str(content_length)))
        text = "".join(f"{k}: {v}\r\n" for k, v in head)
        return WARC_VERSION + CRLF + text.encode("utf-8") + CRLF

    def field(self, name: str) -> str | None:
        for k, v in self.fields:
            if k.lower() == name.lower():
                return v
        return None


def warc_fields_block(items: Iterable[tuple[str, str]]) -> bytes:
    """``application/warc-fields`` body (used by warcinfo)."""
    return "".join(f"{k}: {v}\r\n" for k, v in items).encode("utf-8")


def http_block_record(
    warc_type: str,
    uri: str,
    date: str,
    head: HttpHead,
    payload: bytes,
    *,
    msgtype: str,
    algorithm: str,
    extra: Sequence[tuple[str, str]] = (),
    record_id: str | None = None,
    payload_digest: str | None = None,
) -> Record:
    """A request/response/revisit record whose block is an HTTP message."""
    head_bytes = head.to_bytes()
    block = head_bytes + payload
    fields = list(extra)
    pdigest = payload_digest or digest_of(payload, algorithm)
    if warc_type != "request" or payload:
        fields.append(("WARC-Payload-Digest", pdigest))
    fields.append(("WARC-Block-Digest", digest_of(block, algorithm)))
    return Record(
        warc_type=warc_type,
        target_uri=uri,
        date=date,
        content_type=f"application/http; msgtype={msgtype}",
        block=block,
        record_id=record_id or new_record_id(),
        fields=fields,
        http_head=head,
        http_head_length=len(head_bytes),
    )
