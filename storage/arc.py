"""ARC (version 1) record headers, read as WARC headers so one indexer handles both.

An ARC v1 record is one header line ``URL IP-address Archive-date Content-type Length`` (the
URL may hold spaces, so the line is split from the right), a newline, ``Length`` bytes (the
HTTP response as received, for http(s) URLs) and a newline. The first record, ``filedesc://``,
describes the file. Like warcio's ``arc2warc`` (what cdxj-indexer uses), each record gets
synthetic WARC headers: ``warcinfo`` for the filedesc, ``response`` otherwise. ARC has no
record ids: a record is named by its offset (``<urn:arc:OFFSET>``), the key ARC captures have
in every index anyway.
"""

from __future__ import annotations

import re

_DATE = re.compile(r"^[0-9]{8,14}$")
_LENGTH = re.compile(r"^[0-9]{1,18}$")
ARC_START = re.compile(rb"\n(?=[a-z][a-z0-9+.-]*:[^\s]*(?: [^\s]+)* [0-9.]+ [0-9]{8,14} [^\s]* [0-9]{1,18}\r?\n)")
"""Where an ARC header line begins after a newline: used to resynchronise after damage."""


class ArcHeaderError(ValueError):
    pass


def arc_date_to_iso(date: str) -> str:
    date = (date + "00000000000000")[:14]
    return f"{date[:4]}-{date[4:6]}-{date[6:8]}T{date[8:10]}:{date[10:12]}:{date[12:14]}Z"


def arc_headers(line: bytes, offset: int) -> list[tuple[str, str]]:
    """Synthetic WARC headers for one ARC header line (without its newline)."""
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    parts = text.split(" ")
    if len(parts) < 5:
        raise ArcHeaderError(f"malformed ARC header line {text[:60]!r}")
    url, ip, date, mime, length = " ".join(parts[:-4]), *parts[-4:]
    if not _DATE.match(date) or not _LENGTH.match(length) or not url:
        raise ArcHeaderError(f"malformed ARC header line {text[:60]!r}")
    if url.startswith("filedesc://"):
        return [("WARC-Type", "warcinfo"), ("WARC-Filename", url[len("filedesc://"):]),
                ("WARC-Date", arc_date_to_iso(date)), ("Content-Type", mime),
                ("Content-Length", length), ("WARC-Record-ID", f"<urn:arc:{offset}>")]
    http = url.lower().startswith(("http:", "https:"))
    return [
        ("WARC-Type", "response"),
        ("WARC-Target-URI", url.replace(" ", "%20")),
        ("WARC-Date", arc_date_to_iso(date)),
        ("WARC-IP-Address", ip),
        ("Content-Type", "application/http; msgtype=response" if http else mime),
        ("Content-Length", length),
        ("WARC-Record-ID", f"<urn:arc:{offset}>"),
    ]


def looks_like_arc(head: bytes) -> bool:
    return head.startswith(b"filedesc://")
