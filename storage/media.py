"""Which payloads are already compressed, and the gzip level their WARC members get.

Deflating a JPEG, an MP4 or a gzip-encoded body again gains nothing (under 0.1 %) and costs as
much CPU as compressing text: ~45 MB/s at level 6 and barely faster at level 1 on incompressible
data, against ~700 MB/s for level 0 (stored deflate blocks). Such records get
``ARCHIVE_MEDIA_GZIP_LEVEL`` (default 0); they are still one gzip member per record, so every
WARC tool reads them as usual.
"""

from __future__ import annotations

import re

from storage.records import Record

_COMPRESSED_TYPES = frozenset({
    "application/zip", "application/x-zip-compressed", "application/gzip", "application/x-gzip",
    "application/zstd", "application/x-zstd", "application/x-7z-compressed",
    "application/x-rar-compressed", "application/vnd.rar", "application/x-bzip2",
    "application/x-xz", "application/x-lzip", "application/x-lz4", "application/x-brotli",
    "application/epub+zip", "application/java-archive",
    "application/vnd.android.package-archive", "application/x-apple-diskimage",
    "application/ogg", "application/mp4",
    "font/woff", "font/woff2", "application/font-woff",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
})
_UNCOMPRESSED_IMAGES = frozenset({"image/svg+xml", "image/bmp", "image/x-ms-bmp", "image/tiff",
                                  "image/x-icon", "image/vnd.microsoft.icon", "image/x-portable-pixmap"})
_COMPRESSED_ENCODINGS = frozenset({"gzip", "x-gzip", "br", "zstd", "deflate", "compress"})
_HEAD_LIMIT = 65536


def is_precompressed(content_type: str | bytes | None, content_encoding: str | bytes | None = None) -> bool:
    """Is a body of this ``Content-Type`` / ``Content-Encoding`` already compressed?"""
    if isinstance(content_encoding, bytes):
        content_encoding = content_encoding.decode("latin-1")
    if content_encoding:
        codings = {c.strip().lower() for c in content_encoding.split(",")}
        if codings & _COMPRESSED_ENCODINGS:
            return True
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime.startswith(("video/", "audio/")):
        return True
    if mime.startswith("image/"):
        return mime not in _UNCOMPRESSED_IMAGES
    return mime in _COMPRESSED_TYPES


def _head_field(head: bytes, name: bytes) -> bytes | None:
    m = re.search(rb"\r\n" + re.escape(name) + rb"[ \t]*:[ \t]*([^\r\n]*)", head, re.IGNORECASE)
    return m.group(1) if m else None


def http_block_precompressed(block_head: bytes) -> bool:
    """Does an HTTP response block (its head is enough) carry an already-compressed payload?"""
    end = block_head.find(b"\r\n\r\n", 0, _HEAD_LIMIT)
    head = block_head[: end if end >= 0 else _HEAD_LIMIT]
    return is_precompressed(_head_field(head, b"Content-Type"), _head_field(head, b"Content-Encoding"))


def member_level(record: Record, default: int, media_level: int | None) -> int:
    """The gzip level for ``record``'s member: ``media_level`` for compressed payloads."""
    if media_level is None or media_level == default:
        return default
    if record.warc_type == "response" and (record.content_type or "").startswith("application/http"):
        return media_level if http_block_precompressed(record.block[:_HEAD_LIMIT]) else default
    if record.warc_type == "resource":
        return media_level if is_precompressed(record.content_type) else default
    return default
