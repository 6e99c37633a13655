"""WACZ 1.1.1 packages written from the index, streamed, plus an independent verifier.

Layout (webrecorder/specs ``wacz/1.1.1``): ``archive/<warc>`` STORED (readers seek into them),
``indexes/index.cdx.gz`` STORED with ``indexes/index.idx`` beside it (the compressed ZipNum form
py-wacz writes: gzip members of 300 sorted CDXJ lines, and an idx line per member giving its
first key, offset, length and sha256), ``pages/pages.jsonl``, ``datapackage.json`` (sha256 and
size of every file) and ``datapackage-digest.json``. Every file is hashed while it is written;
WARCs are copied in chunks, so memory use does not grow with the collection.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from storage.cdxj import CaptureFilter, iter_cdxj, warc_paths
from storage.errors import StorageError
from storage.offload import AbsentWarc, RemoteReader, RemoteUnavailable, absent_files, locations
from storage.wacz_sign import signature_problems

WACZ_VERSION = "1.1.1"
LINES_PER_BLOCK = 300
CHUNK = 1024 * 1024
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
HTML_MIMES = ("text/html", "application/xhtml+xml")
_ZIP64_LIMIT = (1 << 31) - 1
_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Resource:
    path: str
    hash: str
    bytes: int

    def as_json(self) -> dict[str, object]:
        name = re.sub(r"[^-a-z0-9._/]", "-", Path(self.path).name.lower())
        return {"name": name, "path": self.path, "hash": self.hash, "bytes": self.bytes}


@dataclass
class WaczResult:
    path: Path
    captures: int
    pages: int
    warcs: list[str] = field(default_factory=list)


class _HashingWriter:
    """Wraps a zip entry: sha256 and size of what goes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def resource(self, path: str) -> Resource:
        return Resource(path, "sha256:" + self.sha256.hexdigest(), self.size)


def _entry(zf: zipfile.ZipFile, name: str, *, stored: bool, size_hint: int = 0) -> IO[bytes]:
    info = zipfile.ZipInfo(name, datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    return zf.open(info, "w", force_zip64=size_hint > _ZIP64_LIMIT)


def rfc3339(timestamp: str) -> str:
    """``20240102030405`` → ``2024-01-02T03:04:05Z``; ISO strings pass through (``Z`` kept)."""
    if re.fullmatch(r"\d{14}", timestamp):
        t = timestamp
        return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}Z"
    return timestamp.replace("+00:00", "Z")


# --- pages ----------------------------------------------------------------------------------


def _columns(db: Database, table: str) -> set[str]:
    return {c.name for c in db[table].columns} if table in db.table_names() else set()


def _capture_ts(db: Database, url: str, near: str, collection: str | None) -> str | None:
    """Timestamp of the capture of ``url`` closest to ``near`` (by urlkey, which is indexed)."""
    from storage.surt import surt

    sql = "SELECT timestamp FROM captures WHERE urlkey = ? AND record_type != 'resource'"
    params: list[object] = [surt(url)]
    if collection:
        sql += " AND collection = ?"
        params.append(collection)
    sql += " ORDER BY abs(CAST(timestamp AS INTEGER) - ?) LIMIT 1"
    params.append(int(near) if near.isdigit() else 0)
    row = db.execute(sql, params).fetchone()
    return str(row[0]) if row else None


def _pages_rows(db: Database, flt: CaptureFilter) -> Iterator[dict[str, str]]:
    cols = _columns(db, "pages")
    if not {"url", "timestamp"} <= cols:
        return
    where, params = "1", []
    if flt.collection and "collection" in cols:
        where, params = "collection = ?", [flt.collection]
    title = "title" if "title" in cols else "NULL AS title"
    text = "text" if "text" in cols else "NULL AS text"
    sql = f"SELECT url, timestamp AS ts, {title}, {text} FROM pages WHERE {where} ORDER BY timestamp"
    for row in db.query(sql, params):
        yield {k: str(v) for k, v in row.items() if v not in (None, "")}


def _posts_rows(db: Database, flt: CaptureFilter) -> Iterator[dict[str, str]]:
    """Posts whose human-viewable URL was captured (the API JSON alone is no page to show)."""
    cols = _columns(db, "posts")
    if not {"url", "source_timestamp", "author", "text"} <= cols:
        return
    where, params = "url IS NOT NULL AND url != ''", []
    if flt.collection and "collection" in cols:
        where += " AND collection = ?"
        params.append(flt.collection)
    sql = f"SELECT url, source_timestamp, author, text FROM posts WHERE {where} ORDER BY source_timestamp"
    for row in db.query(sql, params):
        ts = _capture_ts(db, row["url"], str(row["source_timestamp"] or ""), flt.collection)
        if ts is None:
            continue
        page = {"url": row["url"], "ts": ts}
        if row["author"]:
            page["title"] = f"{row['author']}: {(row['text'] or '')[:80]}".strip()
        if row["text"]:
            page["text"] = row["text"]
        yield page


def _table_pages(db: Database, flt: CaptureFilter) -> Iterator[dict[str, str]]:
    """Pages from the ``pages`` and ``posts`` tables, when other parts of socialark filled them."""
    seen: set[tuple[str, str]] = set()
    for page in [*_pages_rows(db, flt), *_posts_rows(db, flt)]:
        digits = "".join(ch for ch in page["ts"] if ch.isdigit())[:14]
        if (flt.since and digits < flt.since) or (flt.until and digits > flt.until):
            continue
        page["ts"] = rfc3339(page["ts"])
        if (page["url"], page["ts"]) not in seen:
            seen.add((page["url"], page["ts"]))
            yield page


def html_title(path: str, offset: int) -> str | None:
    """Title of the HTML response record at ``offset`` (first 256 KiB of the payload)."""
    from warcio.archiveiterator import ArchiveIterator  # local: only needed for derived pages

    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            for record in ArchiveIterator(fh):
                head = record.content_stream().read(256 * 1024)
                match = _TITLE_RE.search(head)
                if not match:
                    return None
                return html.unescape(match.group(1).decode("utf-8", "replace")).strip() or None
    except Exception:  # best effort: a title is optional, a broken or odd encoding is not fatal
        return None
    return None


def _derived_pages(db: Database, flt: CaptureFilter) -> Iterator[dict[str, str]]:
    """Without page/post tables: every HTML 2xx response capture is a page."""
    from storage.cdxj import iter_capture_rows

    for row in iter_capture_rows(db, flt):
        status = row.get("status") or 0
        if row["record_type"] != "response" or not 200 <= int(status) < 300:  # type: ignore[call-overload]
            continue
        if row.get("mime") not in HTML_MIMES:
            continue
        page = {"url": str(row["url"]), "ts": rfc3339(str(row["timestamp"]))}
        title = html_title(str(row["path"]), int(row["offset"])) if row.get("path") else None  # type: ignore[call-overload]
        if title:
            page["title"] = title
        yield page


def iter_pages(db: Database, flt: CaptureFilter) -> Iterator[dict[str, str]]:
    found = False
    for page in _table_pages(db, flt):
        found = True
        yield page
    if not found:
        yield from _derived_pages(db, flt)


def _page_id(page: dict[str, str]) -> str:
    return hashlib.sha256(f"{page['ts']} {page['url']}".encode()).hexdigest()[:16]


# --- writing --------------------------------------------------------------------------------


def _write_index(zf: zipfile.ZipFile, lines: Iterable[str]) -> tuple[list[Resource], int]:
    """Write ``indexes/index.cdx.gz`` + ``indexes/index.idx``; return resources and line count."""
    idx_lines = ['!meta 0 {"format": "cdxj-gzip-1.0", "filename": "index.cdx.gz"}\n']
    count = 0
    with _entry(zf, "indexes/index.cdx.gz", stored=True) as raw:
        out = _HashingWriter(raw)
        block: list[str] = []

        def flush() -> None:
            member = gzip.compress("".join(block).encode("utf-8"), mtime=0)
            prefix = block[0].split(" {", 1)[0]
            meta = {"offset": out.size, "length": len(member),
                    "digest": "sha256:" + hashlib.sha256(member).hexdigest()}
            idx_lines.append(f"{prefix} {json.dumps(meta)}\n")
            out.write(member)
            block.clear()

        for line in lines:
            block.append(line)
            count += 1
            if len(block) == LINES_PER_BLOCK:
                flush()
        if block:
            flush()
    cdx = out.resource("indexes/index.cdx.gz")
    with _entry(zf, "indexes/index.idx", stored=False) as raw:
        idx = _HashingWriter(raw)
        for line in idx_lines:
            idx.write(line.encode("utf-8"))
    return [cdx, idx.resource("indexes/index.idx")], count


def _write_pages(zf: zipfile.ZipFile, pages: Iterable[dict[str, str]]) -> tuple[Resource, dict[str, str] | None, int]:
    first: dict[str, str] | None = None
    count = 0
    with _entry(zf, "pages/pages.jsonl", stored=False) as raw:
        out = _HashingWriter(raw)
        out.write((json.dumps(PAGES_HEADER) + "\n").encode())
        for page in pages:
            entry = {"id": _page_id(page), **page}
            out.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
            if first is None or page["ts"] < first["ts"]:
                first = page
    return out.resource("pages/pages.jsonl"), first, count


def _write_json(zf: zipfile.ZipFile, name: str, data: dict[str, object]) -> str:
    body = json.dumps(data, indent=2).encode("utf-8")
    with _entry(zf, name, stored=False) as raw:
        raw.write(body)
    return "sha256:" + hashlib.sha256(body).hexdigest()


def write_wacz(db: Database, out_path: Path, flt: CaptureFilter | None = None, *,
               title: str | None = None, software: str = "socialark",
               remote: RemoteReader | None = None,
               sign: Callable[[str, str], dict[str, Any]] | None = None) -> WaczResult:
    """Write a WACZ of the captures selected by ``flt`` to ``out_path``.

    WARCs no longer on this machine (offloaded to a bucket) are streamed from their remote copy
    through ``remote`` and checked against the index's SHA-256; without ``remote``, or if the
    copy cannot be read, the export fails and no ``out_path`` is written: a WACZ never silently
    lacks a WARC its index points into.
    """
    flt = flt or CaptureFilter()
    files = warc_paths(db, flt)
    if not files:
        raise StorageError("no captures to export (check --collection/--since/--until)")
    remote_files = _remote_files(db, files, remote)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        result = _write_zip(db, tmp, flt, files, remote_files, remote, title, software, sign)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a WACZ missing files where one is expected
        raise
    tmp.replace(out_path)
    result.path = out_path
    return result


def _remote_files(db: Database, files: dict[str, str], remote: RemoteReader | None,
                  ) -> dict[str, AbsentWarc]:
    """Files not on this machine, each with a remote copy ``remote`` can read (else an error)."""
    absent = {f.name: f for f in absent_files(db, names=files)}
    for name, path in files.items():
        if name not in absent and (not path or not Path(path).is_file()):
            raise StorageError(f"WARC file {name} is not at {path}; cannot package it")
    unreadable = [f for f in absent.values() if f.uri is None or remote is None]
    if unreadable:
        raise StorageError(f"{len(unreadable)} WARC file(s) of this export are not on this "
                           f"machine ({locations(unreadable)}); cannot package them")
    return absent


def _copy_remote(zf: zipfile.ZipFile, f: AbsentWarc, remote: RemoteReader) -> Resource:
    """Stream an offloaded WARC from its bucket into the zip, checked against the index."""
    assert f.uri is not None
    body = remote.open(f.uri)
    with _entry(zf, f"archive/{f.name}", stored=True, size_hint=f.size or 0) as raw:
        out = _HashingWriter(raw)
        try:
            while chunk := body.read(CHUNK):
                out.write(chunk)
        except Exception as exc:  # botocore/urllib3 stream errors
            raise RemoteUnavailable(f"reading {f.uri} failed: {exc}") from exc
    if (f.sha256 and out.sha256.hexdigest() != f.sha256) or (f.size is not None and out.size != f.size):
        raise StorageError(f"the remote copy {f.uri} differs from the indexed file (SHA-256/size)")
    return out.resource(f"archive/{f.name}")


def _write_zip(db: Database, tmp: Path, flt: CaptureFilter, files: dict[str, str],
               remote_files: dict[str, AbsentWarc], remote: RemoteReader | None,
               title: str | None, software: str,
               sign: Callable[[str, str], dict[str, Any]] | None = None) -> WaczResult:
    resources: list[Resource] = []
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for name, path in files.items():
            if name in remote_files and remote is not None:
                resources.append(_copy_remote(zf, remote_files[name], remote))
                continue
            size = Path(path).stat().st_size
            with _entry(zf, f"archive/{name}", stored=True, size_hint=size) as raw, open(path, "rb") as src:
                out = _HashingWriter(raw)
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            resources.append(out.resource(f"archive/{name}"))
        index_resources, captures = _write_index(zf, iter_cdxj(db, flt))
        resources += index_resources
        pages_resource, main_page, page_count = _write_pages(zf, iter_pages(db, flt))
        resources.append(pages_resource)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        package: dict[str, object] = {
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": title or f"socialark {flt.collection or 'archive'}",
            "created": now,
            "modified": now,
            "software": software,
            "resources": [r.as_json() for r in resources],
        }
        if main_page:
            package["mainPageUrl"] = main_page["url"]
            package["mainPageDate"] = main_page["ts"]
        digest = _write_json(zf, "datapackage.json", package)
        digest_doc: dict[str, object] = {"path": "datapackage.json", "hash": digest}
        if sign is not None:
            digest_doc.update(sign(digest, now))
        _write_json(zf, "datapackage-digest.json", digest_doc)
    return WaczResult(tmp, captures, page_count, list(files))


# --- verifying ------------------------------------------------------------------------------


def _hash_entry(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with zf.open(name) as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return "sha256:" + sha.hexdigest(), size


def _check_package(zf: zipfile.ZipFile, names: set[str], problems: list[str]) -> dict[str, object]:
    try:
        package = json.loads(zf.read("datapackage.json"))
    except (KeyError, ValueError) as exc:
        problems.append(f"datapackage.json missing or not JSON: {exc}")
        return {}
    if package.get("profile") != "data-package":
        problems.append("datapackage.json: profile is not 'data-package'")
    if package.get("wacz_version") != WACZ_VERSION:
        problems.append(f"datapackage.json: wacz_version is not {WACZ_VERSION}")
    listed = {}
    for res in package.get("resources", []):
        listed[res.get("path")] = res
        if res.get("path") not in names:
            problems.append(f"resource {res.get('path')} listed but not in the zip")
            continue
        try:
            digest, size = _hash_entry(zf, res["path"])
        except (zipfile.BadZipFile, OSError, zlib.error) as exc:  # e.g. a bad CRC-32: altered
            problems.append(f"{res['path']}: cannot be read back: {exc}")
            continue
        if res.get("hash") != digest:
            problems.append(f"{res['path']}: hash {res.get('hash')} != actual {digest}")
        if res.get("bytes") != size:
            problems.append(f"{res['path']}: bytes {res.get('bytes')} != actual {size}")
    for name in names - {"datapackage.json", "datapackage-digest.json"}:
        if name not in listed and not name.endswith("/"):
            problems.append(f"{name} is in the zip but not listed in datapackage.json")
    if "datapackage-digest.json" in names:
        digest_doc = json.loads(zf.read("datapackage-digest.json"))
        actual = "sha256:" + hashlib.sha256(zf.read("datapackage.json")).hexdigest()
        if digest_doc.get("hash") != actual:
            problems.append("datapackage-digest.json hash does not match datapackage.json")
    return package


def _check_pages(zf: zipfile.ZipFile, names: set[str], problems: list[str]) -> None:
    if "pages/pages.jsonl" not in names:
        problems.append("pages/pages.jsonl is missing")
        return
    with zf.open("pages/pages.jsonl") as fh:
        for number, raw in enumerate(io.TextIOWrapper(fh, "utf-8"), 1):
            try:
                obj = json.loads(raw)
            except ValueError:
                problems.append(f"pages.jsonl line {number} is not JSON")
                continue
            if number == 1:
                if obj.get("format") != "json-pages-1.0":
                    problems.append("pages.jsonl: first line is not the json-pages-1.0 header")
                continue
            if not isinstance(obj.get("url"), str) or not _RFC3339_RE.match(str(obj.get("ts", ""))):
                problems.append(f"pages.jsonl line {number}: needs url and an RFC 3339 ts")


def _check_index(zf: zipfile.ZipFile, names: set[str], problems: list[str], check_records: bool) -> None:
    if "indexes/index.idx" not in names or "indexes/index.cdx.gz" not in names:
        problems.append("indexes/index.idx and indexes/index.cdx.gz are required")
        return
    idx = zf.read("indexes/index.idx").decode("utf-8").splitlines()
    if not idx or not idx[0].startswith("!meta 0 "):
        problems.append("index.idx: missing !meta header")
        return
    data = zf.read("indexes/index.cdx.gz") if zf.getinfo("indexes/index.cdx.gz").file_size < (64 << 20) else None
    previous = ""
    for line in idx[1:]:
        prefix, meta_json = line.split(" {", 1)
        meta = json.loads("{" + meta_json)
        if data is None:
            with zf.open("indexes/index.cdx.gz") as fh:
                fh.seek(meta["offset"])
                member = fh.read(meta["length"])
        else:
            member = data[meta["offset"]: meta["offset"] + meta["length"]]
        if meta.get("digest") and meta["digest"] != "sha256:" + hashlib.sha256(member).hexdigest():
            problems.append(f"index block at {meta['offset']}: digest mismatch")
        lines = gzip.decompress(member).decode("utf-8").splitlines()
        if not lines or not lines[0].startswith(prefix + " {"):
            problems.append(f"index block at {meta['offset']}: idx key {prefix!r} is not its first line")
        for cdx in lines:
            if cdx.encode() < previous.encode():
                problems.append(f"index not sorted at {cdx[:80]!r}")
            previous = cdx
            if check_records:
                _check_record(zf, names, json.loads(cdx.split(" ", 2)[2]), problems)


def _check_record(zf: zipfile.ZipFile, names: set[str], fields: dict[str, str], problems: list[str]) -> None:
    name = "archive/" + fields.get("filename", "")
    if name not in names:
        problems.append(f"index points to {name}, not in the zip")
        return
    with zf.open(name) as fh:
        fh.seek(int(fields["offset"]))
        raw = fh.read(int(fields["length"]))
    try:
        head = gzip.decompress(raw)[:64 * 1024] if name.endswith(".gz") else raw
    except (OSError, EOFError, zlib.error):
        problems.append(f"{name}@{fields['offset']}: not a complete gzip member")
        return
    if f"WARC-Target-URI: {fields['url']}\r\n".encode() not in head:
        problems.append(f"{name}@{fields['offset']}: record is not for {fields['url']}")


def verify_wacz(path: Path | str, *, check_records: bool = True) -> list[str]:
    """Problems found in the WACZ at ``path`` (empty list: valid).

    Checks the required files, the STORED compression of WARCs and ``.cdx.gz``, every resource's
    sha256 and size, the datapackage digest, pages.jsonl, and the index: block digests, byte
    order, and (``check_records``) that each line points at a record for its URL.
    """
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a zip file: {exc}"]
    with zf:
        infos = zf.infolist()
        names = {i.filename for i in infos}
        if not any(n.startswith("archive/") and re.search(r"\.warc(\.gz)?$", n) for n in names):
            problems.append("no WARC file in archive/")
        for info in infos:
            if (info.filename.startswith("archive/") or info.filename.endswith(".cdx.gz")) \
                    and info.compress_type != zipfile.ZIP_STORED:
                problems.append(f"{info.filename} must be STORED, not compressed in the zip")
        _check_package(zf, names, problems)
        problems += signature_problems(zf)
        _check_pages(zf, names, problems)
        _check_index(zf, names, problems, check_records)
    return problems
