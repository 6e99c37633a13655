"""Local checksums in the notations S3 uses, so remote checksums can be compared byte-for-byte.

S3's ``ChecksumSHA256`` is base64 of the raw digest. For a multipart upload it is *composite*:
base64(sha256(concat(raw part digests))) followed by ``-N`` (the part count); AWS prints the
suffix, moto does not (it reports ``ChecksumType: COMPOSITE`` instead), so callers strip it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

READ_CHUNK = 1024 * 1024


def b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def hex_of_b64(b64_digest: str) -> str:
    return base64.b64decode(b64_digest).hex()


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a whole file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def part_ranges(size: int, part_size: int) -> Iterator[tuple[int, int, int]]:
    """Yield ``(part_number, offset, length)`` for a multipart upload (1-based part numbers)."""
    offset, number = 0, 1
    while offset < size or number == 1:
        length = min(part_size, size - offset)
        yield number, offset, length
        offset += length
        number += 1
        if length == 0:
            break


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's composite checksum (without the ``-N`` suffix) from raw per-part SHA-256 digests."""
    return base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode("ascii")


def file_composite_sha256(path: Path | str, part_size: int) -> tuple[str, int]:
    """Composite checksum and part count of ``path`` cut into ``part_size`` parts."""
    digests: list[bytes] = []
    with open(path, "rb") as f:
        while True:
            h = hashlib.sha256()
            remaining = part_size
            while remaining and (chunk := f.read(min(READ_CHUNK, remaining))):
                h.update(chunk)
                remaining -= len(chunk)
            if remaining == part_size and digests:
                break
            digests.append(h.digest())
            if remaining:
                break
    return composite_sha256(digests), len(digests)
