"""Tiny, valid media files built with the standard library (no Pillow)."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int, height: int, seed: int = 0) -> bytes:
    """An 8-bit RGB PNG with a seed-dependent gradient (distinct seeds → distinct bytes)."""
    r0, g0, b0 = (seed * 73) % 256, (seed * 151) % 256, (seed * 211) % 256
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: None
        for x in range(width):
            rows += bytes(((r0 + x * 4) % 256, (g0 + y * 4) % 256, (b0 + x + y) % 256))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def gif(seed: int = 0) -> bytes:
    """A valid 2-frame 4x4 GIF89a (animated, like the GIFs users post)."""
    colours = bytes(((seed * 40) % 256, 0, 0, 0, (seed * 90) % 256, 255))  # 2-colour table
    header = b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + colours
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frames = b""
    for index in (0, 1):
        # LZW data for 16 pixels of a single colour index with min code size 2.
        pixels = _lzw_single_colour(index, 16)
        frames += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
        frames += b"\x2c" + struct.pack("<HHHHB", 0, 0, 4, 4, 0) + b"\x02"
        frames += bytes((len(pixels),)) + pixels + b"\x00"
    return header + loop + frames + b"\x3b"


def _lzw_single_colour(index: int, count: int) -> bytes:
    """Minimal GIF LZW stream with 3-bit codes: a clear code before every literal keeps the
    code table (and so the code width) from ever growing; then the end code."""
    clear, end, width = 4, 5, 3
    codes = [*[c for _ in range(count) for c in (clear, index)], end]
    bits = nbits = 0
    out = bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    return bytes(out)
