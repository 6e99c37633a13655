"""Mirror throughput: socialark's Mirror vs boto3's TransferManager defaults (``aws s3 cp``).

Writes ~1 GB of WARC files (random payloads, so nothing compresses), starts moto's S3 server on
loopback and uploads the same files three ways, resetting the server in between:

* ``socialark Mirror.sync`` - SHA-256 checksums on every request, verification after upload,
  index bookkeeping (what ``socialark mirror`` does);
* ``TransferManager defaults`` - ``S3Transfer.upload_file`` for every file through one manager
  (10 threads, 8 MB parts), like ``aws s3 cp --recursive``; no checksum choice, no verification;
* ``TransferManager + SHA256`` - the same with ``ChecksumAlgorithm=SHA256`` (still unverified).

Prints a markdown table. Usage::

    python benchmarks/bench_mirror.py [--total-mb 1024] [--file-mb 128]

Numbers are loopback numbers: moto (a single Python process) is the bottleneck, so they compare
the clients, not what a real store sustains.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from warcio.warcwriter import WARCWriter  # noqa: E402

from storage._checksum import file_sha256  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.mirror import Mirror  # noqa: E402
from tests.s3server import CREDENTIALS, MotoS3Server  # noqa: E402

BUCKET = "bench-mirror"
MB = 1024 * 1024


def write_warcs(directory: Path, total_mb: int, file_mb: int) -> list[Path]:
    paths = []
    for i in range(max(1, total_mb // file_mb)):
        path = directory / f"bench-20260101000000-{i:05d}-host.warc"
        with open(path, "wb") as f:
            writer = WARCWriter(f, gzip=False)
            for j in range(file_mb):
                rec = writer.create_warc_record(f"http://bench.invalid/{i}/{j}", "resource",
                                                payload=io.BytesIO(os.urandom(MB)),
                                                warc_content_type="application/octet-stream")
                writer.write_record(rec)
        paths.append(path)
    return paths


def bench_socialark(server: MotoS3Server, data_dir: Path, paths: list[Path]) -> tuple[float, str]:
    db = open_database(data_dir / "index.db")
    with db.conn:
        db.execute("DELETE FROM warc_files")
        db.execute("DROP TABLE IF EXISTS mirror_uploads")
    for p in paths:  # the WARC extension computes sha256 while writing; not part of the mirror
        db["warc_files"].insert({"name": p.name, "collection": "bench", "path": str(p),
                                 "size": p.stat().st_size, "sha256": file_sha256(p),
                                 "state": "closed"})
    mirror = Mirror.connect(f"s3://{BUCKET}/sa", endpoint_url=server.endpoint_url, db=db)
    start = time.perf_counter()
    report = mirror.sync()
    elapsed = time.perf_counter() - start
    assert not report.failed, [r.error for r in report.failed]
    return elapsed, "verified (composite SHA-256), recorded"


def bench_transfer(server: MotoS3Server, paths: list[Path], checksum: bool) -> tuple[float, str]:
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    client = server.client()
    extra = {"ChecksumAlgorithm": "SHA256"} if checksum else None
    start = time.perf_counter()
    # One manager for all files, default config (10 threads, 8 MB parts), as aws s3 cp does.
    with create_transfer_manager(client, TransferConfig()) as manager:
        futures = [manager.upload(str(p), BUCKET, f"tm/{p.name}", extra_args=extra)
                   for p in paths]
        for fu in futures:
            fu.result()
    elapsed = time.perf_counter() - start
    return elapsed, "SHA-256 per part, not verified" if checksum else "not verified"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mb", type=int, default=1024)
    parser.add_argument("--file-mb", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2,
                        help="Run every client this many times (interleaved); report the best.")
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        data_dir = Path(tmp)
        paths = write_warcs(data_dir, args.total_mb, args.file_mb)
        total = sum(p.stat().st_size for p in paths)
        server = MotoS3Server()
        server.start()
        clients = [
            ("socialark Mirror.sync", lambda: bench_socialark(server, data_dir, paths)),
            ("TransferManager defaults", lambda: bench_transfer(server, paths, False)),
            ("TransferManager + SHA256", lambda: bench_transfer(server, paths, True)),
        ]
        best: dict[str, tuple[float, str]] = {}
        try:
            for _ in range(args.rounds):  # interleaved, so warm-up favours no one
                for label, run in clients:
                    server.reset()
                    server.create_bucket(BUCKET)
                    elapsed, what = run()
                    if label not in best or elapsed < best[label][0]:
                        best[label] = (elapsed, what)
        finally:
            server.stop()
        rows = [(label, *best[label]) for label, _ in clients]
    print(f"\n{len(paths)} WARC files, {total / MB:.0f} MiB, moto_server on 127.0.0.1, "
          f"{os.cpu_count()} CPUs, best of {args.rounds} interleaved rounds\n")
    print("| client | seconds | MB/s | integrity |")
    print("|---|---:|---:|---|")
    for label, elapsed, what in rows:
        print(f"| {label} | {elapsed:.1f} | {total / 1e6 / elapsed:.1f} | {what} |")


if __name__ == "__main__":
    main()
