"""Just enough IPLD for an AT Protocol repo export: DAG-CBOR encoding, CIDv1, MST, CARv1.

Written here (instead of depending on libipld/dag-cbor) so the emulator needs only the
standard library; tests decode the output with the independent ``cbor2`` package.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

DAG_CBOR, RAW = 0x71, 0x55


@dataclass(frozen=True)
class CID:
    """CIDv1 with a sha2-256 multihash; ``str()`` is the base32 multibase form (``bafy…``)."""

    raw: bytes

    @classmethod
    def of(cls, data: bytes, codec: int = DAG_CBOR) -> CID:
        return cls(bytes((0x01, codec, 0x12, 0x20)) + hashlib.sha256(data).digest())

    @classmethod
    def parse(cls, text: str) -> CID:
        assert text.startswith("b"), "only base32 multibase CIDs"
        body = text[1:].upper()
        return cls(base64.b32decode(body + "=" * (-len(body) % 8)))

    def __str__(self) -> str:
        return "b" + base64.b32encode(self.raw).decode().lower().rstrip("=")


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes((major << 5 | extra,)) + struct.pack(fmt, n)
    raise ValueError("integer too large for CBOR")


def encode(obj: Any) -> bytes:
    """Canonical DAG-CBOR: map keys sorted by length then bytes, CIDs as tag 42, no floats."""
    if obj is None:
        return b"\xf6"
    if obj is True:
        return b"\xf5"
    if obj is False:
        return b"\xf4"
    if isinstance(obj, int):
        return _head(0, obj) if obj >= 0 else _head(1, -1 - obj)
    if isinstance(obj, bytes):
        return _head(2, len(obj)) + obj
    if isinstance(obj, str):
        raw = obj.encode()
        return _head(3, len(raw)) + raw
    if isinstance(obj, CID):
        payload = b"\x00" + obj.raw
        return b"\xd8\x2a" + _head(2, len(payload)) + payload
    if isinstance(obj, list | tuple):
        return _head(4, len(obj)) + b"".join(encode(x) for x in obj)
    if isinstance(obj, dict):
        keys = sorted(obj, key=lambda k: (len(k.encode()), k.encode()))
        return _head(5, len(keys)) + b"".join(encode(k) + encode(obj[k]) for k in keys)
    raise TypeError(f"cannot DAG-CBOR encode {type(obj).__name__}")


def to_ipld(value: Any) -> Any:
    """Record JSON → IPLD data model: ``{"$link": cid}`` becomes a CID, ``{"$bytes"}`` bytes."""
    if isinstance(value, dict):
        if set(value) == {"$link"}:
            return CID.parse(value["$link"])
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"] + "==")
        return {k: to_ipld(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_ipld(v) for v in value]
    return value


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def car(roots: list[CID], blocks: list[tuple[CID, bytes]]) -> bytes:
    header = encode({"version": 1, "roots": roots})
    parts = [varint(len(header)), header]
    for cid, data in blocks:
        parts += [varint(len(cid.raw) + len(data)), cid.raw, data]
    return b"".join(parts)


def mst_layer(key: str) -> int:
    """Leading zero bits of sha256(key), counted in 2-bit chunks (fanout 4)."""
    digest = hashlib.sha256(key.encode()).digest()
    zeros = 0
    for byte in digest:
        if byte == 0:
            zeros += 8
            continue
        zeros += 8 - byte.bit_length()
        break
    return zeros // 2


def build_mst(entries: dict[str, CID], store: dict[CID, bytes]) -> CID:
    """Build the Merkle Search Tree for ``{"collection/rkey": record CID}``; nodes go to
    ``store``; returns the root node CID (an empty tree is one empty node)."""
    items = sorted((k, v, mst_layer(k)) for k, v in entries.items())
    top = max((layer for _, _, layer in items), default=0)
    root = _node(items, top, store)
    if root is None:
        return _put({"e": [], "l": None}, store)
    return root


def _node(items: list[tuple[str, CID, int]], layer: int, store: dict[CID, bytes]) -> CID | None:
    if not items:
        return None
    left: CID | None = None
    entries: list[dict[str, Any]] = []
    pending: list[tuple[str, CID, int]] = []
    prev_key = b""
    for key, value, key_layer in items:
        if key_layer < layer:
            pending.append((key, value, key_layer))
            continue
        sub = _node(pending, layer - 1, store)
        pending = []
        if entries:
            entries[-1]["t"] = sub
        else:
            left = sub
        kb = key.encode()
        prefix = 0
        while prefix < min(len(kb), len(prev_key)) and kb[prefix] == prev_key[prefix]:
            prefix += 1
        entries.append({"p": prefix, "k": kb[prefix:], "v": value, "t": None})
        prev_key = kb
    tail = _node(pending, layer - 1, store)
    if entries:
        entries[-1]["t"] = tail
    else:
        left = tail
    return _put({"e": entries, "l": left}, store)


def _put(obj: dict[str, Any], store: dict[CID, bytes]) -> CID:
    data = encode(obj)
    cid = CID.of(data)
    store[cid] = data
    return cid
