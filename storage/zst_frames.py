"""Walking the Zstandard frames of a ``.warc.zst``, one frame (one record) at a time.

Layout (IIPC "Zstandard Compression for WARC Files", as ArchiveTeam's Wget-AT writes it): an
optional dictionary in a skippable frame (magic ``0x184D2A5D``) at the start, holding a raw
dictionary or one zstd frame that decompresses to it; then one zstd frame per record; other
skippable frames may sit between them and are skipped.

The frame structure (header, 3-byte block headers, optional checksum) is parsed here, so a
frame's compressed extent is known without over-reading, and each block is decompressed on its
own: a block inflates to at most 128 KiB, so a compression bomb is caught as it inflates, as
for gzip (``inflate_limit``). After a damaged frame the walk resumes at the next frame magic.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO

import zstandard

from storage.gzip_members import CHUNK_SIZE, CompressionBomb, drain, inflate_limit

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DICT_FRAME_MAGIC = 0x184D2A5D
MAX_DICT = 8 * 1024 * 1024  # the spec's bound for dictionaries (and their frames)
_FCS_BYTES = (0, 2, 4, 8)
_DID_BYTES = (0, 1, 2, 4)


def is_skippable(magic: bytes) -> bool:
    return len(magic) == 4 and magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50


def is_zstd_start(head: bytes) -> bool:
    return head[:4] == ZSTD_MAGIC or is_skippable(head[:4])


class FrameDamaged(Exception):
    """A frame that does not decompress; the reader has already moved to the next frame."""

    def __init__(self, offset: int, length: int, error: str) -> None:
        super().__init__(error)
        self.offset, self.length, self.error = offset, length, error


class _Truncated(Exception):
    pass


class ZstdFrameReader:
    """Streams the data frames of ``fh`` (relative offsets), API like ``GzipMemberReader``."""

    def __init__(self, fh: BinaryIO, *, chunk_size: int = CHUNK_SIZE,
                 limit: Callable[[int], int] | None = inflate_limit,
                 dictionary: zstandard.ZstdCompressionDict | None = None) -> None:
        self.fh, self.chunk_size, self.limit = fh, chunk_size, limit
        self.buf = b""
        self.i = 0
        self.pos = 0  # input offset of buf[i]
        self.dictionary = dictionary
        self._dctx = (zstandard.ZstdDecompressor(dict_data=dictionary) if dictionary
                      else zstandard.ZstdDecompressor())
        self.start = self.length = 0
        self._done = True
        self._obj: zstandard.ZstdDecompressionObj | None = None
        self._fed = self._size = 0
        self._last = False
        self._checksum = False

    # -- raw input ---------------------------------------------------------------------------
    def _need(self, n: int) -> bool:
        while len(self.buf) - self.i < n:
            more = self.fh.read(max(self.chunk_size, n))
            if not more:
                return False
            self.buf = self.buf[self.i:] + more
            self.i = 0
        return True

    def _take(self, n: int) -> bytes:
        if not self._need(n):
            raise _Truncated
        out = self.buf[self.i:self.i + n]
        self.i += n
        self.pos += n
        return out

    def _skip(self, n: int) -> None:
        while n:
            have = len(self.buf) - self.i
            if have == 0 and not self._need(1):
                raise _Truncated
            step = min(n, len(self.buf) - self.i)
            self.i += step
            self.pos += step
            n -= step

    # -- frames ------------------------------------------------------------------------------
    def next_frame(self) -> int | None:
        """Start the next data frame (skippable frames are skipped; a dictionary frame at the
        very start is loaded); its offset, or None at the end of the input."""
        if not self._done:
            raise RuntimeError("the current frame was not read to its end")
        while self._need(4):
            magic = self.buf[self.i:self.i + 4]
            if magic == ZSTD_MAGIC:
                return self._begin()
            start = self.pos
            if is_skippable(magic) and self._need(8):
                size = struct.unpack("<I", self.buf[self.i + 4:self.i + 8])[0]
                if start == 0 and struct.unpack("<I", magic)[0] == DICT_FRAME_MAGIC:
                    self._take(8)
                    self._load_dictionary(self._take(size) if size <= MAX_DICT else b"")
                    continue
                try:
                    self._take(8)
                    self._skip(size)
                except _Truncated:
                    return None
                continue
            # Not a frame start: damage between frames. Report it like a damaged frame.
            self.start = start
            self._done = False
            self._fail("no zstd frame here")
        return None

    def _load_dictionary(self, data: bytes) -> None:
        if not data:
            raise FrameDamaged(0, 8, "zstd dictionary frame too large or empty")
        if data[:4] == ZSTD_MAGIC:
            obj = zstandard.ZstdDecompressor().decompressobj()
            data = obj.decompress(data)
            if len(data) > MAX_DICT:
                raise FrameDamaged(0, 8, "zstd dictionary over 8 MiB")
        self.dictionary = zstandard.ZstdCompressionDict(data)
        self._dctx = zstandard.ZstdDecompressor(dict_data=self.dictionary)

    def _begin(self) -> int:
        self.start = self.pos
        self._done = False
        self._fed = self._size = 0
        self._last = False
        try:
            header = self._take(5)
            fhd = header[4]
            if fhd & 0x08:
                self._fail("reserved bit set in zstd frame header")
            single = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            fcs = _FCS_BYTES[fhd >> 6] or (1 if single else 0)
            rest = self._take((0 if single else 1) + _DID_BYTES[fhd & 0x03] + fcs)
        except _Truncated:
            self._fail("truncated zstd frame at end of file", rescan=False)
        self._obj = self._dctx.decompressobj()
        self._feed(header + rest)
        return self.start

    def _feed(self, data: bytes) -> bytes:
        self._fed += len(data)
        try:
            out = self._obj.decompress(data) if self._obj is not None else b""
        except zstandard.ZstdError as exc:
            self._fail(f"bad zstd data: {exc}")
        self._size += len(out)
        if self.limit is not None and self._size > self.limit(self._fed):
            self._fail(str(CompressionBomb(self._size)).replace("gzip member", "zstd frame"))
        return out

    def read(self) -> bytes:
        """The next decompressed bytes of the current frame (one block); ``b""`` at its end."""
        while not self._done:
            if self._last:
                try:
                    if self._checksum:
                        self._feed(self._take(4))
                except _Truncated:
                    self._fail("truncated zstd frame at end of file", rescan=False)
                self.length = self.pos - self.start
                self._done = True
                return b""
            try:
                bh = self._take(3)
                value = int.from_bytes(bh, "little")
                self._last = bool(value & 1)
                btype, bsize = (value >> 1) & 3, value >> 3
                if btype == 3:
                    self._fail("reserved zstd block type")
                body = self._take(1 if btype == 1 else bsize)
            except _Truncated:
                self._fail("truncated zstd frame at end of file", rescan=False)
            out = self._feed(bh + body)
            if out:
                return out
        return b""

    def drain(self) -> tuple[int, bool]:
        return drain(self.read)

    def _fail(self, error: str, *, rescan: bool = True) -> None:
        """Move to the next frame magic after the frame start (or to the end) and raise."""
        self._done = True
        if rescan:
            self._rescan()
        else:
            self._skip_to_end()
        self.length = self.pos - self.start
        raise FrameDamaged(self.start, self.length, error)

    def _rescan(self) -> None:
        seek = getattr(self.fh, "seekable", None)
        if seek and seek() and self.pos > self.start + 1:
            base = self.fh.tell() - (len(self.buf) - self.i) - self.pos
            self.fh.seek(base + self.start + 1)
            self.buf, self.i, self.pos = b"", 0, self.start + 1
        elif self.pos <= self.start:
            self._skip(1)
        while True:
            window = self.buf[self.i:]
            found = min((p for p in (window.find(ZSTD_MAGIC), _find_skippable(window))
                         if p >= 0), default=-1)
            if found >= 0:
                self.i += found
                self.pos += found
                return
            keep = min(len(window), 3)
            self.pos += len(window) - keep
            self.buf, self.i = window[len(window) - keep:], 0
            more = self.fh.read(self.chunk_size)
            if not more:
                self.pos += len(self.buf)
                self.buf = b""
                return
            self.buf += more

    def _skip_to_end(self) -> None:
        self.pos += len(self.buf) - self.i
        self.buf, self.i = b"", 0
        while more := self.fh.read(self.chunk_size):
            self.pos += len(more)


def _find_skippable(window: bytes) -> int:
    pos = window.find(b"\x2a\x4d\x18")
    while pos >= 0:
        if pos >= 1 and window[pos - 1] & 0xF0 == 0x50:
            return pos - 1
        pos = window.find(b"\x2a\x4d\x18", pos + 1)
    return -1


__all__ = ["DICT_FRAME_MAGIC", "FrameDamaged", "ZstdFrameReader", "is_zstd_start"]
