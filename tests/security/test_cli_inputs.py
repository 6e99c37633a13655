"""Paths, URLs and ranges from the command line (issue 14, points 4, 8 and 9).

A collection is never a path (every command, ``-s ARCHIVE_COLLECTION`` too); ``--mirror``,
``--endpoint-url`` and ``--range`` are checked before anything starts (exit 2, one line, no
state written); SIGTERM to ``socialark browse`` stops its Datasette child.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.db import open_database
from tests.conftest import ROOT, socialark
from tests.procs import free_port

BAD_COLLECTIONS = ["../../outside/coll", "{tmp}/abs-coll", "..", ".hidden", "a/b", "a..b", ""]


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr


@pytest.mark.parametrize("name", BAD_COLLECTIONS)
def test_crawl_refuses_a_collection_that_is_a_path(tmp_path: Path, name: str) -> None:
    data = tmp_path / "a" / "b" / "data"
    name = name.replace("{tmp}", str(tmp_path))
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", "--collection", name, data_dir=data)
    _one_line_exit_2(proc, "--collection")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created anywhere


def test_setting_cannot_smuggle_a_collection_path(tmp_path: Path) -> None:
    data = tmp_path / "a" / "b" / "data"
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", "-s",
                     "ARCHIVE_COLLECTION=../../outside/coll", data_dir=data)
    _one_line_exit_2(proc, "invalid collection name")
    assert not (tmp_path / "a" / "outside").exists()
    assert not list(tmp_path.rglob("warcs"))


@pytest.mark.parametrize("command", [
    ["index", "--rebuild"], ["export", "cdxj", "-o", "out.cdxj"], ["cdx", "http://x/"],
    ["search", "x"], ["mirror", "s3://bucket/prefix"], ["replay"], ["export", "captures"],
    ["keys", "create"], ["verify"],
])
def test_every_command_refuses_a_collection_that_is_a_path(tmp_path: Path,
                                                           command: list[str]) -> None:
    proc = socialark(*command, "--collection", "../../outside/coll", data_dir=tmp_path / "d")
    _one_line_exit_2(proc, "--collection")
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--mirror", "s3://"], "--mirror"),
    (["--mirror", "http://bucket/x"], "--mirror"),
    (["--mirror", "s3://bucket/p", "--endpoint-url", "notaurl"], "--endpoint-url"),
    (["--mirror", "s3://bucket/p", "--endpoint-url", "ftp://host/"], "--endpoint-url"),
])
def test_mirror_options_checked_before_anything_starts(tmp_path: Path, args: list[str],
                                                       needle: str) -> None:
    data = tmp_path / "data"
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", *args, data_dir=data)
    _one_line_exit_2(proc, needle)
    assert not data.exists(), "state was written before the options were checked"


def test_worker_mirror_option_checked(tmp_path: Path) -> None:
    proc = socialark("worker", "--redis", "redis://127.0.0.1:9/0", "--mirror", "s3://",
                     data_dir=tmp_path / "data")
    _one_line_exit_2(proc, "--mirror")


@pytest.mark.parametrize(("rng", "extra"), [("5-1", []), ("1-5", ["--step", "-1"]),
                                            ("1-5", ["--step", "0"]),
                                            ("9" * 5000 + "-1", [])])
def test_empty_or_absurd_id_range_exits_2(tmp_path: Path, rng: str, extra: list[str]) -> None:
    data = tmp_path / "data"
    proc = socialark("crawl", "ids", "--url-template", "http://127.0.0.1:9/{id}", "--range", rng,
                     *extra, data_dir=data)
    _one_line_exit_2(proc, "--")
    assert not data.exists()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_to_browse_stops_datasette(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    open_database(data / "index.db").conn.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "browse", "--port", str(port),
                             "--data-dir", str(data)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = _children(proc.pid)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        assert children, "browse started no Datasette process"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(c) for c in children):
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), "Datasette outlived socialark browse"
    finally:
        for pid in [proc.pid, *children]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
