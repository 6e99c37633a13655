"""`socialark verify` throughput: re-hashing a collection against its manifest.

Writes ``--files`` WARC-named files of ``--file-mb`` MB of random bytes (verify hashes bytes; it
does not parse records) into a fresh data dir, enters each in the collection's manifest the way
a crawl does (signed with a fresh P-384 key), then times ``verify_collection`` with 1, 2 and
``--workers`` threads, and ``sha256sum`` over the same files as a reference point. The page cache
is warm after the first pass, so the figures are hashing speed, not disk speed (say
``--cold`` to drop caches between runs; needs root).

    python benchmarks/bench_verify.py [--files 8] [--file-mb 128] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.manifest import FileFacts, Manifest, ManifestSigner  # noqa: E402
from storage.signing import create_key  # noqa: E402
from storage.verify import hash_file, verify_collection  # noqa: E402

COLLECTION = "bench"


def make_collection(data_dir: Path, files: int, file_mb: int) -> list[Path]:
    warc_dir = data_dir / "warcs" / COLLECTION
    warc_dir.mkdir(parents=True)
    key = create_key(data_dir / "keys" / f"{COLLECTION}.pem")
    manifest = Manifest(warc_dir, COLLECTION, ManifestSigner(key=key))
    paths = []
    for i in range(files):
        path = warc_dir / f"bench-20260101000000-{i:05d}-host-1.warc.gz"
        with open(path, "wb") as fh:
            for _ in range(file_mb):
                fh.write(os.urandom(1 << 20))
        size, sha = hash_file(path)
        manifest.append(FileFacts(path.name, size, sha, 1, "bench", "2026-01-01T00:00:00Z"))
        paths.append(path)
    return paths


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mb", type=int, default=128)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        data_dir = Path(tmp)
        paths = make_collection(data_dir, args.files, args.file_mb)
        total_mb = args.files * args.file_mb * (1 << 20) / 1e6
        print(f"{args.files} files x {args.file_mb} MiB = {total_mb:.0f} MB, "
              f"{os.cpu_count()} CPUs\n")
        print("| run | seconds | MB/s |\n|---|---:|---:|")
        for workers in sorted({1, 2, args.workers}):
            if args.cold:
                drop_caches()
            rep = verify_collection(data_dir, COLLECTION, workers=workers)
            assert rep.ok, rep.problems
            print(f"| socialark verify, {workers} worker(s) | {rep.seconds:.2f} | {rep.mb_per_s:.0f} |")
        if args.cold:
            drop_caches()
        started = time.monotonic()
        subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
        took = time.monotonic() - started
        print(f"| sha256sum (one process) | {took:.2f} | {total_mb / took:.0f} |")


if __name__ == "__main__":
    main()
