"""``socialark mirror`` and the crawl-time MirrorExtension, as real subprocesses against moto_server."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.db import open_database
from tests.conftest import socialark
from tests.test_mirror import make_archive, remote_sha256

if TYPE_CHECKING:
    from tests.s3server import MotoS3Server
    from tests.sites.core_site import CoreSite

pytest_plugins = ["tests.s3server"]  # the s3_server fixture

BUCKET = "cli-archive"
URL = f"s3://{BUCKET}/crawls"
ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def run(server: MotoS3Server, data_dir: Path, *args: str, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    cmd = ["socialark", *args, "--data-dir", str(data_dir)]
    return subprocess.run(cmd, env=env or server.env(), capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def objects(server: MotoS3Server) -> dict[str, str]:
    client = server.client()
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: remote_sha256(client, BUCKET, o["Key"]) for o in listed}


def mirrored(data_dir: Path) -> dict[str, Any]:
    db = open_database(data_dir / "index.db")
    return {r["name"]: r["mirrored_at"] for r in db.query("SELECT name, mirrored_at FROM warc_files")}


def test_mirror_uploads_all_then_nothing(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    rows = make_archive(tmp_path, [2_000, 30_000, 9 * MB])

    first = run(s3_server, tmp_path, "mirror", URL)
    assert first.returncode == 0, first.stderr
    assert "3 uploaded+verified" in first.stdout
    assert "(2 parts)" in first.stderr  # progress lines on stderr
    assert objects(s3_server) == {f"crawls/main/{r['name']}": r["sha256"] for r in rows}
    assert all(mirrored(tmp_path).values())

    second = run(s3_server, tmp_path, "mirror", URL)
    assert second.returncode == 0, second.stderr
    assert "3 already mirrored" in second.stdout and "0.0 MB sent" in second.stdout


def test_dry_run_changes_nothing(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    make_archive(tmp_path, [2_000, 3_000])
    out = run(s3_server, tmp_path, "mirror", URL, "--dry-run", "--delete-after-verify")
    assert out.returncode == 0, out.stderr
    assert "2 would upload" in out.stdout
    assert objects(s3_server) == {}
    assert not any(mirrored(tmp_path).values())
    assert len(list((tmp_path / "warcs" / "main").iterdir())) == 2


def test_verify_repairs_and_delete_after_verify_frees_disk(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    rows = make_archive(tmp_path, [4_000, 5_000])
    assert run(s3_server, tmp_path, "mirror", URL).returncode == 0
    s3_server.client().put_object(Bucket=BUCKET, Key=f"crawls/main/{rows[1]['name']}",
                                  Body=b"corrupt" * 10)

    out = run(s3_server, tmp_path, "mirror", URL, "--verify", "--delete-after-verify")

    assert out.returncode == 0, out.stderr
    assert "1 REPAIRED" in out.stdout and "1 verified" in out.stdout
    assert "2 local copies deleted" in out.stdout
    assert objects(s3_server) == {f"crawls/main/{r['name']}": r["sha256"] for r in rows}
    assert not any(Path(r["path"]).exists() for r in rows)


def test_unreachable_store_exits_1_and_deletes_nothing(s3_server: MotoS3Server, tmp_path: Path) -> None:
    rows = make_archive(tmp_path, [4_000])
    s3_server.stop()
    out = run(s3_server, tmp_path, "mirror", URL, "--delete-after-verify", "--retries", "0")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "nothing was mirrored" in out.stderr
    assert Path(rows[0]["path"]).exists() and not any(mirrored(tmp_path).values())


def test_config_errors_exit_2_with_one_line(s3_server: MotoS3Server, tmp_path: Path) -> None:
    make_archive(tmp_path, [1_000])
    no_bucket = run(s3_server, tmp_path, "mirror", URL)
    bad_url = run(s3_server, tmp_path, "mirror", "https://example.org/x")
    env = {k: v for k, v in s3_server.env().items() if k not in {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}}
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    s3_server.create_bucket(BUCKET)
    no_creds = run(s3_server, tmp_path, "mirror", URL, env=env)
    bad_meta = run(s3_server, tmp_path, "mirror", URL, "--ia-meta", "novalue")
    for out, needle in [(no_bucket, "bucket does not exist"), (bad_url, "not an S3 URL"),
                        (no_creds, "no AWS credentials"), (bad_meta, "KEY=VALUE")]:
        assert out.returncode == 2, out.stderr
        assert needle in out.stderr and "Traceback" not in out.stderr
    assert len(no_creds.stderr.strip().splitlines()) == 1


def test_with_index_uploads_a_snapshot(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    make_archive(tmp_path, [1_000])
    out = run(s3_server, tmp_path, "mirror", URL, "--with-index")
    assert out.returncode == 0, out.stderr
    keys = [k for k in objects(s3_server) if k.startswith("crawls/index/")]
    assert len(keys) == 1 and f"s3://{BUCKET}/{keys[0]}" in out.stderr


# -- the crawl-time extension: a real Scrapy crawl in a subprocess -----------------------------

CRAWL_SCRIPT = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    from scrapy import Spider
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.asyncio import sleep
    from crawler.extensions.mirror import MirrorExtension
    from crawler.signals import warc_file_closed
    from storage.db import open_database
    from tests.test_mirror import register, write_warc

    data_dir, endpoint, phases = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])

    async def wait_for(path):
        while not path.exists():
            await sleep(0.05)

    class FilesSpider(Spider):
        """Writes WARCs and announces them exactly as the WARC extension does."""
        name = "files"

        async def start(self):
            db = open_database(data_dir / "index.db")
            ext = self.crawler.get_extension(MirrorExtension)
            serial = 0
            for phase, (count, size) in enumerate(phases):
                for _ in range(count):
                    path = write_warc(data_dir / "warcs" / "main",
                                      f"crawl-20260101000000-{serial:05d}-host.warc.gz", size)
                    row = register(db, path)
                    serial += 1
                    self.crawler.signals.send_catch_log(
                        warc_file_closed, path=path, name=path.name, collection="main",
                        size=row["size"], sha256=row["sha256"])
                while len(ext.results) < serial:  # let the uploader settle before the next phase
                    await sleep(0.05)
                (data_dir / f"phase{phase}.done").touch()
                await wait_for(data_dir / f"phase{phase}.go")
            return
            yield

    process = CrawlerProcess({
        "EXTENSIONS": {MirrorExtension: 0}, "LOG_LEVEL": "INFO",
        "ARCHIVE_MIRROR_URL": "s3://cli-archive/crawls", "ARCHIVE_MIRROR_ENDPOINT_URL": endpoint,
        "ARCHIVE_INDEX_PATH": str(data_dir / "index.db"),
        "ARCHIVE_MIRROR_RETRIES": 1, "ARCHIVE_MIRROR_BACKOFF": 0.1,
    })
    crawler = process.create_crawler(FilesSpider)
    process.crawl(crawler)
    process.start()
    print(json.dumps({k: v for k, v in crawler.stats.get_stats().items() if k.startswith("mirror/")}))
''')


def start_crawl(server: MotoS3Server, data_dir: Path, phases: list[tuple[int, int]],
                env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    script = data_dir / "crawl.py"
    data_dir.mkdir(parents=True, exist_ok=True)
    script.write_text(CRAWL_SCRIPT)
    env = {**(env or server.env()), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), str(data_dir), server.endpoint_url, json.dumps(phases)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_marker(proc: subprocess.Popen[str], marker: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"crawl never reached {marker.name}"
        time.sleep(0.05)
    (marker.parent / marker.name.replace(".done", ".go")).touch()


def test_crawl_mirrors_every_closed_warc(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    data_dir = tmp_path / "archive"
    proc = start_crawl(s3_server, data_dir, [(4, 20_000), (1, 9 * MB)])
    wait_marker(proc, data_dir / "phase0.done")
    wait_marker(proc, data_dir / "phase1.done")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["mirror/uploaded"] == 5 and stats["mirror/failed"] == 0
    db = open_database(data_dir / "index.db")
    rows = list(db.query("SELECT * FROM warc_files"))
    assert len(rows) == 5 and all(r["mirrored_at"] for r in rows)
    assert objects(s3_server) == {f"crawls/main/{r['name']}": r["sha256"] for r in rows}
    assert stats["mirror/bytes"] == sum(r["size"] for r in rows)
    assert "5 of 5 WARC files verified" in err


def test_store_down_mid_crawl_then_mirror_finishes(s3_server: MotoS3Server, tmp_path: Path) -> None:
    s3_server.create_bucket(BUCKET)
    data_dir = tmp_path / "archive"
    proc = start_crawl(s3_server, data_dir, [(2, 10_000), (2, 10_000), (2, 10_000)])
    wait_marker(proc, data_dir / "phase0.done")  # 2 files uploaded; now the store goes away
    (data_dir / "phase0.go").unlink()
    s3_server.stop()
    (data_dir / "phase0.go").touch()
    wait_marker(proc, data_dir / "phase1.done")  # 2 files failed while it was down
    (data_dir / "phase1.go").unlink()
    s3_server.start()  # moto restarts empty: the bucket and the first two objects are gone
    s3_server.create_bucket(BUCKET)
    (data_dir / "phase1.go").touch()
    wait_marker(proc, data_dir / "phase2.done")
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, err[-3000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert (stats["mirror/uploaded"], stats["mirror/failed"]) == (4, 2)
    assert sum("not mirrored" in line for line in err.splitlines()) == 2 + 1  # per file + summary
    names = sorted(mirrored(data_dir))
    assert [bool(mirrored(data_dir)[n]) for n in names] == [True, True, False, False, True, True]

    after = run(s3_server, data_dir, "mirror", URL, "--verify")
    assert after.returncode == 0, after.stderr
    assert "2 REPAIRED" in after.stdout and "2 uploaded+verified" in after.stdout
    rows = list(open_database(data_dir / "index.db").query("SELECT * FROM warc_files"))
    assert objects(s3_server) == {f"crawls/main/{r['name']}": r["sha256"] for r in rows}
    assert all(r["mirrored_at"] for r in rows)


def test_crawl_without_credentials_logs_one_clear_message(
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    env = {k: v for k, v in s3_server.env().items() if not k.startswith("AWS_SECRET")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    del env["AWS_ACCESS_KEY_ID"]
    data_dir = tmp_path / "archive"
    proc = start_crawl(s3_server, data_dir, [(3, 5_000)], env=env)
    wait_marker(proc, data_dir / "phase0.done")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["mirror/failed"] == 3
    disabled = [line for line in err.splitlines() if "disabled: no AWS credentials" in line]
    assert len(disabled) == 1 and "Traceback" not in err
    assert not any(mirrored(data_dir).values())


def test_extension_is_disabled_without_a_url() -> None:
    import pytest
    from scrapy.exceptions import NotConfigured
    from scrapy.utils.test import get_crawler

    from crawler.extensions.mirror import MirrorExtension

    with pytest.raises(NotConfigured):
        MirrorExtension.from_crawler(get_crawler())
    crawler = get_crawler(settings_dict={"ARCHIVE_MIRROR_URL": "s3://b-1/p"})
    assert MirrorExtension.from_crawler(crawler).target.url == "s3://b-1/p"


# -- `socialark crawl site --mirror` against the core test site ------------------------------


def crawl_site(site: CoreSite, server: MotoS3Server, data_dir: Path, *extra: str,
               ) -> subprocess.CompletedProcess[str]:
    return socialark("crawl", "site", site.base_url, "--scope", "host", "--delay", "0",
                     "--warc-size", "300KB", "--mirror", URL, "--endpoint-url", server.endpoint_url,
                     *extra, data_dir=data_dir, env=server.env(), timeout=180)


def test_crawl_site_mirrors_every_warc_byte_identical(
    core_site: CoreSite, s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket(BUCKET)
    proc = crawl_site(core_site, s3_server, tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: the site serves some 500s
    rows = list(open_database(tmp_path / "index.db").query("SELECT * FROM warc_files"))
    assert len(rows) >= 3 and {r["state"] for r in rows} == {"closed"}
    assert all(r["mirrored_at"] and r["remote_size"] == r["size"] for r in rows)
    local = {f"crawls/{r['collection']}/{r['name']}": hashlib.sha256(
        Path(r["path"]).read_bytes()).hexdigest() for r in rows}
    assert objects(s3_server) == local
    assert f"{len(rows)} of {len(rows)} WARC files verified" in proc.stderr


def test_crawl_goes_on_while_store_is_down_and_mirror_finishes_later(
    core_site: CoreSite, s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.stop()
    proc = crawl_site(core_site, s3_server, tmp_path, "-s", "ARCHIVE_MIRROR_RETRIES=1",
                      "-s", "ARCHIVE_MIRROR_BACKOFF=0.1")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    rows = list(open_database(tmp_path / "index.db").query("SELECT * FROM warc_files"))
    assert rows and not any(r["mirrored_at"] for r in rows)
    failures = [line for line in proc.stderr.splitlines() if "not mirrored:" in line]
    assert len(failures) == len(rows) and "Traceback" not in proc.stderr

    s3_server.start()
    s3_server.create_bucket(BUCKET)
    after = run(s3_server, tmp_path, "mirror", URL)
    assert after.returncode == 0, after.stderr
    assert objects(s3_server) == {f"crawls/{r['collection']}/{r['name']}": r["sha256"] for r in rows}
    assert all(mirrored(tmp_path).values())
