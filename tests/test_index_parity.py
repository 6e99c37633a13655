"""Parity with cdxj-indexer on the peers' own public test files (issue 13, part 2).

Every file under tests/data/peers/ (warcio, pywb and cdxj-indexer test data, see LICENSES.md
there) is indexed by socialark (``storage.indexer.index_file``) and by cdxj-indexer (the
installed package, with ``post_append`` as pywb and py-wacz use it). Rows are matched by offset
and must agree on (urlkey, timestamp, status, digest, offset, length). Each allowed difference
is a rule below, with the reason; anything else fails.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cdxj_indexer.main import CDXJIndexer
from warcio.archiveiterator import ArchiveIterator

from storage.indexer import index_file
from storage.reader import WholeFileCompressed, iter_records, recompress

PEERS = Path(__file__).parent / "data" / "peers"
FILES = sorted(p for p in PEERS.rglob("*") if p.is_file() and p.name != "LICENSES.md")
EMPTY_SHA1 = "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"

# Rule 1, digests the file does not carry: cdxj-indexer computes a missing payload digest
# (ARC records, wget's resource records) only after its record buffering has read the stream to
# the end, so it always hashes nothing: sha1 of the empty string. socialark hashes the payload;
# the test checks that value against warcio's own reading of the payload.
#
# Rule 2, lengths in uncompressed files: cdxj-indexer's length stops at the end of the block;
# socialark's runs to the next record (the CRLFCRLF after a WARC record, the LF after an ARC
# record), so that the ranges tile the file. The extra bytes must be that separator only, or,
# in JUNK_LINE files, the rest of a line after a short Content-Length, which warcio skips too.
JUNK_LINE = {
    "pywb/example.warc": "a request record whose Content-Length is 3 bytes short",
    "warcio/example-trunc.warc": "a response whose gzip body was cut, Content-Length kept short",
}

# Rule 3, metadata records (wget's MANIFEST, arguments and log): cdxj-indexer indexes them;
# they are not captures of a URL and socialark keeps them out of the capture index.

# Rule 4, the peers' deliberately broken files.
BROKEN: dict[str, dict[str, Any]] = {
    "bad.arc": {
        "why": "ARC lengths '-1' and 'abc' (a test of invalid input): warcio reads such records "
               "as empty, socialark reports them corrupt and indexes the one valid record, whose "
               "range then runs over the broken record after it",
        "peer_only": {134, 262}, "length": {202}, "corrupt": 1,
    },
    "warcio/example-space-in-url.arc": {
        "why": "the record's block is 12 bytes shorter than its ARC length: warcio indexes what "
               "is there, socialark reports a truncated record",
        "peer_only": {151}, "corrupt": 1,
    },
    "pywb/example-extra.warc": {
        "why": "'HTTPX/1.1 200 OK' is no HTTP status line: warcio takes its second word, "
               "socialark stores no status",
        "status": {3207},
    },
}
PEER_FAILS = {
    "warcio/example-wrong-chunks.warc.gz": "not a WARC (an HTML page, gzipped): cdxj-indexer "
                                           "stops with 'Unknown archive format'; socialark "
                                           "reports its two gzip members as corrupt records",
}
WHOLE_FILE = {  # one gzip stream: both refuse (cdxj-indexer names `warcio recompress`)
    "pywb/example-bad.warc.gz.bad", "warcio/example-bad-non-chunked.warc.gz",
}


def _peer_rows(path: Path) -> dict[int, dict[str, Any]]:
    out = io.StringIO()
    CDXJIndexer(output=out, inputs=[str(path)], post_append=True).process_all()
    rows = {}
    for line in out.getvalue().splitlines():
        urlkey, ts, js = line.split(" ", 2)
        fields = json.loads(js)
        rows[int(fields["offset"])] = {"urlkey": urlkey, "timestamp": ts,
                                       "status": fields.get("status"),
                                       "digest": fields.get("digest"),
                                       "length": int(fields["length"])}
    return rows


def _our_rows(path: Path) -> tuple[dict[int, dict[str, Any]], int]:
    result = index_file(path, collection="peers")
    rows = {r["offset"]: {"urlkey": r["urlkey"], "timestamp": r["timestamp"],
                          "status": None if r["status"] is None else str(r["status"]),
                          "digest": r["digest"], "length": r["length"]} for r in result.rows}
    return rows, len(result.corrupt)


def _warcio_payload_digests(path: Path) -> dict[int, str]:
    """sha1 of each record's payload as warcio reads it (independent of our reader)."""
    out = {}
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh, arc2warc=True)
        for rec in it:
            data = rec.raw_stream.read()
            out[it.get_record_offset()] = "sha1:" + base64.b32encode(
                hashlib.sha1(data).digest()).decode()
    return out


def _broken(rel: str) -> dict[str, Any]:
    return BROKEN.get(rel) or BROKEN.get(Path(rel).name) or {}


def _compare(path: Path, rel: str, peer: dict[int, dict[str, Any]],
             ours: dict[int, dict[str, Any]], corrupt: int) -> None:
    rules = _broken(rel)
    types = {r.offset: r.type for r in iter_records(path) if not hasattr(r, "error")}
    peer_only = set(peer) - set(ours)
    metadata = {o for o in peer_only if types.get(o) == "metadata"}  # rule 3
    assert peer_only - metadata == rules.get("peer_only", set()), rel
    assert set(ours) - set(peer) == set(), rel
    assert corrupt == rules.get("corrupt", 0), rel
    data = path.read_bytes()
    plain = data[:2] != b"\x1f\x8b"
    warcio_digests = None
    for offset in sorted(set(peer) & set(ours)):
        a, b = peer[offset], ours[offset]
        assert (a["urlkey"], a["timestamp"]) == (b["urlkey"], b["timestamp"]), (rel, offset)
        if offset not in rules.get("status", set()):
            assert a["status"] == b["status"], (rel, offset)
        if a["digest"] != b["digest"]:  # rule 1
            assert a["digest"] == EMPTY_SHA1, (rel, offset, a, b)
            warcio_digests = warcio_digests or _warcio_payload_digests(path)
            assert b["digest"] == warcio_digests[offset], (rel, offset)
        if a["length"] != b["length"] and offset not in rules.get("length", set()):
            assert plain and b["length"] > a["length"], (rel, offset, a, b)  # rule 2
            extra = data[offset + a["length"]:offset + b["length"]]
            if rel not in JUNK_LINE:
                assert extra.strip(b"\r\n") == b"", (rel, offset, extra)
            else:
                assert extra.endswith(b"\n") and extra.count(b"\n") <= 4, (rel, offset, extra)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PEERS)))
def test_socialark_agrees_with_cdxj_indexer(path: Path, tmp_path: Path) -> None:
    rel = str(path.relative_to(PEERS))
    if rel in WHOLE_FILE:
        with pytest.raises(Exception, match="recompress"):
            _peer_rows(path)
        with pytest.raises(WholeFileCompressed, match="socialark index --recompress"):
            _our_rows(path)
        # After recompressing, both read the per-record copy and agree.
        copy = recompress(path, tmp_path / "copy.warc.gz").path
        peer, (ours, corrupt) = _peer_rows(copy), _our_rows(copy)
        assert peer and set(peer) == set(ours)
        _compare(copy, rel, peer, ours, corrupt)
        return
    if rel in PEER_FAILS:
        with pytest.raises(Exception, match="Unknown archive format"):
            _peer_rows(path)
        ours, corrupt = _our_rows(path)
        assert ours == {} and corrupt == 2
        return
    peer = _peer_rows(path)
    ours, corrupt = _our_rows(path)
    _compare(path, rel, peer, ours, corrupt)


@pytest.mark.parametrize("path", [p for p in FILES if p.name.endswith(".gz")
                                  and str(p.relative_to(PEERS)) not in WHOLE_FILE | set(PEER_FAILS)],
                         ids=lambda p: str(p.relative_to(PEERS)))
def test_zstd_copies_of_the_corpus_index_like_the_originals(path: Path, tmp_path: Path) -> None:
    """Each gzip member of a peer file recompressed as one zstd frame (the Wget-AT layout,
    with a trained dictionary up front): the same captures, at the frames' offsets."""
    import gzip
    import struct

    import zstandard

    from storage.gzip_members import iter_gzip_members

    with open(path, "rb") as fh:
        members = [m.data for m in iter_gzip_members(fh)]
    assert all(m is not None for m in members)
    dictionary = zstandard.train_dictionary(1024, [m for m in members if m] * 20)
    frame = zstandard.ZstdCompressor().compress(dictionary.as_bytes())
    cctx = zstandard.ZstdCompressor(dict_data=dictionary, write_checksum=True)
    out, offsets = struct.pack("<II", 0x184D2A5D, len(frame)) + frame, []
    for m in members:
        offsets.append(len(out))
        out += cctx.compress(m or b"")
    zst = tmp_path / (path.name.removesuffix(".gz") + ".zst")
    zst.write_bytes(out)
    original = index_file(path, collection="c")
    copy = index_file(zst, collection="c")
    assert copy.corrupt == original.corrupt == []
    gz_offsets = []
    with open(path, "rb") as fh:
        gz_offsets = [m.offset for m in iter_gzip_members(fh)]
    strip = ("offset", "length", "filename") + (("record_id",) if ".arc" in path.name else ())
    # (ARC records have no ids: they are named by their offset, <urn:arc:OFFSET>)
    assert [{k: v for k, v in r.items() if k not in strip} for r in copy.rows] == \
        [{k: v for k, v in r.items() if k not in strip} for r in original.rows]
    assert [r["offset"] for r in copy.rows] == \
        [offsets[gz_offsets.index(r["offset"])] for r in original.rows]
    assert gzip.decompress(path.read_bytes())  # the original really is gzip


def test_the_corpus_is_the_peers_test_data() -> None:
    """Every vendored file is accounted for: counts per project, and at least 30 files."""
    by_project: dict[str, int] = {}
    for p in FILES:
        by_project[p.relative_to(PEERS).parts[0]] = by_project.get(p.relative_to(PEERS).parts[0], 0) + 1
    assert set(by_project) == {"warcio", "pywb", "cdxj-indexer"}
    assert sum(by_project.values()) >= 35
    assert (PEERS / "LICENSES.md").exists()
