"""storage.mirror against a real S3 protocol server (moto_server on loopback), driven via boto3.

The WARC helpers below are imported by test_mirror_cli.py (and its crawl subprocess).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from storage.db import open_database
from storage.mirror import Mirror, MirrorConfigError, S3Target

if TYPE_CHECKING:
    from tests.s3server import MotoS3Server

pytest_plugins = ["tests.s3server"]  # the s3_server fixture

BUCKET = "archive-test"
MB = 1024 * 1024


# -- helpers (also used by test_mirror_cli.py): real WARC files registered in a real index ------
def write_warc(directory: Path, name: str, payload_size: int, records: int = 1) -> Path:
    """A gzipped WARC with ``records`` response records of random (incompressible) payload."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i in range(records):
            body = os.urandom(payload_size // records)
            http = StatusAndHeaders(
                "200 OK", [("Content-Type", "application/octet-stream"),
                           ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            rec = writer.create_warc_record(
                f"http://127.0.0.1/{name}/{i}", "response", payload=io.BytesIO(body),
                http_headers=http)
            writer.write_record(rec)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def register(db: Any, path: Path, collection: str = "main", *, state: str = "closed",
             with_sha: bool = True) -> dict[str, Any]:
    """Record ``path`` in ``warc_files`` as the WARC extension does when it closes a file."""
    row = {
        "name": path.name, "collection": collection, "path": str(path),
        "size": path.stat().st_size, "sha256": sha256_of(path) if with_sha else None,
        "records": 1, "state": state, "created_at": "2026-01-01T00:00:00Z",
        "closed_at": "2026-01-01T00:00:01Z" if state != "open" else None,
    }
    db["warc_files"].insert(row)
    return row


def make_archive(data_dir: Path, sizes: list[int], collection: str = "main") -> list[dict[str, Any]]:
    """WARCs under ``data_dir/warcs/<collection>/`` registered in ``data_dir/index.db``."""
    db = open_database(data_dir / "index.db")
    rows = []
    for i, size in enumerate(sizes):
        path = write_warc(data_dir / "warcs" / collection,
                          f"test-20260101000000{i:03d}-{i:05d}-host.warc.gz", size)
        rows.append(register(db, path, collection))
    db.conn.close()
    return rows


def remote_sha256(client: Any, bucket: str, key: str) -> str:
    return hashlib.sha256(client.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def make_mirror(server: MotoS3Server, data_dir: Path, **kwargs: Any) -> Mirror:
    kwargs.setdefault("backoff", 0.0)
    db = open_database(data_dir / "index.db")
    return Mirror.connect(f"s3://{BUCKET}/crawls", endpoint_url=server.endpoint_url, db=db,
                          **kwargs)


def warc_rows(data_dir: Path) -> dict[str, dict[str, Any]]:
    db = open_database(data_dir / "index.db")
    return {r["name"]: r for r in db.query("SELECT * FROM warc_files")}


def key_of(row: dict[str, Any]) -> str:
    return f"crawls/{row['collection']}/{row['name']}"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://b-1/x/y/", "b-1", "x/y"), ("s3://bucket", "bucket", ""), ("s3://my.b/p", "my.b", "p")],
)
def test_target_parse(url: str, bucket: str, prefix: str) -> None:
    target = S3Target.parse(url)
    assert (target.bucket, target.prefix) == (bucket, prefix)
    assert target.key_for("coll", "a.warc.gz") == "/".join(p for p in (prefix, "coll", "a.warc.gz") if p)


@pytest.mark.parametrize("url", ["gs://bucket/x", "s3://", "bucket/x", "s3://a", "s3://b/x//y"])
def test_target_parse_rejects_bad_urls(url: str) -> None:
    with pytest.raises(MirrorConfigError, match=r"s3|bucket|segment"):
        S3Target.parse(url)


def test_sync_uploads_everything_byte_identical_and_records_verification(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    rows = make_archive(tmp_path, [3_000, 150_000, 20 * MB])
    report = make_mirror(s3_server, tmp_path).sync()

    assert [r.status for r in report.results] == ["uploaded"] * 3
    client = s3_server.client()
    for row in rows:
        assert remote_sha256(client, BUCKET, key_of(row)) == row["sha256"]
    big = next(r for r in report.results if r.size > 20 * MB)
    assert big.multipart and big.parts == 3
    assert client.head_object(Bucket=BUCKET, Key=big.key)["ETag"].endswith('-3"')
    recorded = warc_rows(tmp_path)
    for row in rows:
        rec = recorded[row["name"]]
        assert rec["mirrored_at"] and rec["remote_size"] == row["size"]
        assert rec["remote_key"] == f"s3://{BUCKET}/{key_of(row)}"
        base = rec["remote_checksum"].partition("-")[0]
        if row["size"] < 8 * MB:  # full-object checksum is the file's own SHA-256
            assert base64.b64decode(base).hex() == row["sha256"]
    uploads = list(open_database(tmp_path / "index.db").query("SELECT * FROM mirror_uploads"))
    assert {u["name"] for u in uploads if u["verified_at"] and not u["upload_id"]} == {
        r["name"] for r in rows}


def test_second_sync_uploads_nothing(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    rows = make_archive(tmp_path, [5_000, 9 * MB])
    make_mirror(s3_server, tmp_path).sync()
    # Overwrite one object: a second run that uploaded anything would restore it.
    client = s3_server.client()
    client.put_object(Bucket=BUCKET, Key=key_of(rows[0]), Body=b"tampered")

    report = make_mirror(s3_server, tmp_path).sync()
    assert [r.status for r in report.results] == ["skipped", "skipped"]
    assert report.bytes_sent == 0
    assert client.get_object(Bucket=BUCKET, Key=key_of(rows[0]))["Body"].read() == b"tampered"


def test_verify_detects_corrupted_objects_and_repairs_them(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    small, big, gone = make_archive(tmp_path, [40_000, 12 * MB, 10_000])
    make_mirror(s3_server, tmp_path).sync()
    client = s3_server.client()
    # Same size, different bytes; one with a (truthful) SHA-256 of its own, one with none.
    client.put_object(Bucket=BUCKET, Key=key_of(small), Body=os.urandom(small["size"]))
    client.put_object(Bucket=BUCKET, Key=key_of(big), Body=os.urandom(big["size"]),
                      ChecksumAlgorithm="SHA256")
    client.delete_object(Bucket=BUCKET, Key=key_of(gone))

    report = make_mirror(s3_server, tmp_path).sync(verify=True)

    assert sorted(r.status for r in report.results) == ["repaired"] * 3
    for row in (small, big, gone):
        assert remote_sha256(client, BUCKET, key_of(row)) == row["sha256"]
        assert warc_rows(tmp_path)[row["name"]]["mirrored_at"]
    again = make_mirror(s3_server, tmp_path).sync(verify=True)
    assert [r.status for r in again.results] == ["verified"] * 3


def test_open_files_are_never_uploaded_and_missing_sha256_is_computed(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    db = open_database(tmp_path / "index.db")
    warcs = tmp_path / "warcs" / "main"
    open_row = register(db, write_warc(warcs, "a-open.warc.gz", 2_000), state="open")
    nosha = register(db, write_warc(warcs, "b-nosha.warc.gz", 2_000), with_sha=False)
    repaired = register(db, write_warc(warcs, "c-repaired.warc.gz", 2_000), state="repaired")

    report = make_mirror(s3_server, tmp_path).sync()

    assert sorted(r.name for r in report.results) == [nosha["name"], repaired["name"]]
    listed = s3_server.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert {o["Key"] for o in listed} == {key_of(nosha), key_of(repaired)}
    rows = warc_rows(tmp_path)
    assert rows[nosha["name"]]["sha256"] == sha256_of(Path(nosha["path"]))
    assert rows[open_row["name"]]["mirrored_at"] is None


def test_unreachable_store_marks_nothing_and_next_run_finishes(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    rows = make_archive(tmp_path, [4_000, 6 * MB])
    s3_server.stop()
    report = make_mirror(s3_server, tmp_path, retries=1).sync(delete_after_verify=True)
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert all("unreachable" in (r.error or "") for r in report.results)
    for row in rows:  # nothing recorded, nothing deleted
        assert warc_rows(tmp_path)[row["name"]]["mirrored_at"] is None
        assert Path(row["path"]).exists()

    s3_server.start()
    s3_server.create_bucket(BUCKET)
    report = make_mirror(s3_server, tmp_path).sync()
    assert [r.status for r in report.results] == ["uploaded", "uploaded"]


def test_delete_after_verify_deletes_only_verified_files(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    good, bad = make_archive(tmp_path, [5_000, 7_000])
    make_mirror(s3_server, tmp_path).sync()
    # bad's remote copy is corrupted and its local file changed on disk: re-upload must fail.
    s3_server.client().put_object(Bucket=BUCKET, Key=key_of(bad), Body=b"x" * bad["size"])
    Path(bad["path"]).write_bytes(b"y" * bad["size"])

    report = make_mirror(s3_server, tmp_path, retries=0).sync(verify=True, delete_after_verify=True)

    by_name = {r.name: r for r in report.results}
    assert by_name[good["name"]].deleted and not Path(good["path"]).exists()
    assert by_name[bad["name"]].status == "failed" and not by_name[bad["name"]].deleted
    assert Path(bad["path"]).exists()
    rows = warc_rows(tmp_path)
    assert "deleted" in rows[good["name"]]["note"]
    assert rows[bad["name"]]["note"] is None and rows[bad["name"]]["mirrored_at"] is None


def test_interrupted_multipart_upload_is_resumed(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    (row,) = make_archive(tmp_path, [18 * MB])
    client = s3_server.client()
    # The state a crash leaves behind: an upload with its first part sent, its id recorded.
    uid = client.create_multipart_upload(Bucket=BUCKET, Key=key_of(row),
                                         ChecksumAlgorithm="SHA256")["UploadId"]
    with open(row["path"], "rb") as f:
        part1 = f.read(8 * MB)
    client.upload_part(Bucket=BUCKET, Key=key_of(row), UploadId=uid, PartNumber=1, Body=part1,
                       ChecksumAlgorithm="SHA256",
                       ChecksumSHA256=base64.b64encode(hashlib.sha256(part1).digest()).decode())
    db = open_database(tmp_path / "index.db")
    Mirror(S3Target.parse(f"s3://{BUCKET}/crawls"), client, db=db)  # creates mirror_uploads
    db["mirror_uploads"].insert({"name": row["name"], "target": f"s3://{BUCKET}/crawls",
                                 "key": key_of(row), "upload_id": uid})

    (result,) = make_mirror(s3_server, tmp_path).sync().results

    assert result.status == "uploaded" and result.multipart
    assert result.bytes_sent == row["size"] - 8 * MB  # part 1 was reused
    assert remote_sha256(client, BUCKET, key_of(row)) == row["sha256"]
    assert not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_vanished_or_stale_multipart_upload_restarts_cleanly(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    (row,) = make_archive(tmp_path, [11 * MB])
    client = s3_server.client()
    stale = client.create_multipart_upload(Bucket=BUCKET, Key=key_of(row))["UploadId"]
    db = open_database(tmp_path / "index.db")
    Mirror(S3Target.parse(f"s3://{BUCKET}/crawls"), client, db=db)
    db["mirror_uploads"].insert({"name": row["name"], "target": f"s3://{BUCKET}/crawls",
                                 "key": key_of(row), "upload_id": "no-such-upload-id"})

    (result,) = make_mirror(s3_server, tmp_path).sync().results

    assert result.status == "uploaded" and result.bytes_sent == row["size"]
    assert remote_sha256(client, BUCKET, key_of(row)) == row["sha256"]
    assert stale not in {u["UploadId"] for u in client.list_multipart_uploads(
        Bucket=BUCKET).get("Uploads", [])}


def test_missing_bucket_and_missing_credentials_are_config_errors(
    s3_server: MotoS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_archive(tmp_path, [1_000])
    with pytest.raises(MirrorConfigError, match="bucket does not exist"):
        make_mirror(s3_server, tmp_path).sync()
    s3_server.create_bucket(BUCKET)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MirrorConfigError, match="no AWS credentials"):
        make_mirror(s3_server, tmp_path).sync()


def test_snapshot_index_is_a_consistent_sqlite_copy(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    rows = make_archive(tmp_path, [1_000, 2_000])
    mirror = make_mirror(s3_server, tmp_path)
    mirror.sync()
    key = mirror.snapshot_index(tmp_path / "index.db")
    assert key.startswith("crawls/index/index-") and key.endswith(".db")
    copy = tmp_path / "copy.db"
    copy.write_bytes(s3_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    names = {n for (n,) in conn.execute("SELECT name FROM warc_files WHERE mirrored_at IS NOT NULL")}
    assert names == {r["name"] for r in rows}


def test_extra_headers_reach_the_wire_for_internet_archive_items(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    small, big = make_archive(tmp_path, [1_000, 9 * MB])
    mirror = make_mirror(s3_server, tmp_path,
                         extra_headers={"x-archive-meta-mediatype": "web",
                                        "x-amz-auto-make-bucket": "1"})
    sent: list[tuple[str, dict[str, str]]] = []

    def observe(request: Any, **_: Any) -> None:
        sent.append((request.url, {k.lower(): v.decode() if isinstance(v, bytes) else v
                                   for k, v in request.headers.items()}))

    mirror.client.meta.events.register("before-send.s3.*", observe)
    assert [r.status for r in mirror.sync().results] == ["uploaded", "uploaded"]
    creating = [h for url, h in sent if "x-amz-meta-sha256" in h]  # PutObject + CreateMultipart
    assert len(creating) == 2
    assert all(h["x-archive-meta-mediatype"] == "web" for h in creating)
    assert {h["x-amz-meta-sha256"] for h in creating} == {small["sha256"], big["sha256"]}
