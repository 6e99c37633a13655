"""A private ``redis-server`` for ``crawl --processes N``: started and stopped by socialark.

It listens on a Unix socket only (in a fresh 0700 directory: no port, nothing reachable from
the network or other users) and keeps its data in an append-only file in the collection's
state dir, so ``--resume`` after a crash (even ``kill -9`` of socialark) finds the shared queue,
the seen-set and the leases where they were. The server gets SIGTERM when the process that
started it dies (Linux ``PR_SET_PDEATHSIG``), so it never outlives its crawl.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from crawler.local.orphans import die_with_parent

APPEND_ONLY_NAME = "frontier.aof"


class PrivateRedisError(Exception):
    """The private redis-server could not be started (one line for the user)."""


def redis_server_path() -> str | None:
    """The ``redis-server`` executable on PATH, or None (then ``--processes`` falls back)."""
    return shutil.which("redis-server")


SOCKET_DIR_PREFIX = "socialark-redis-"
STALE_AFTER = 600.0  # seconds: an empty socket dir this old was left by a killed socialark


def remove_stale_socket_dirs() -> None:
    """Remove the empty socket dirs ``kill -9`` of earlier crawls left in the temp dir.

    ``rmdir`` fails on a dir holding a live server's socket; young dirs are left alone (a
    crawl starting right now has not created its socket yet).
    """
    now = time.time()
    for path in Path(tempfile.gettempdir()).glob(SOCKET_DIR_PREFIX + "*"):
        try:
            if now - path.stat().st_mtime > STALE_AFTER:
                path.rmdir()
        except OSError:
            pass


class PrivateRedis:
    def __init__(self, state_dir: Path, executable: str) -> None:
        self.state_dir = state_dir
        self.executable = executable
        remove_stale_socket_dirs()
        self.socket_dir = Path(tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX))  # mode 0700
        self.socket = self.socket_dir / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self, timeout: float = 20.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.state_dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.state_dir),
             # Durable queue: every write appended, fsynced each second; no RDB snapshots.
             "--appendonly", "yes", "--appendfsync", "everysec", "--appenddirname",
             "frontier-aof", "--save", "", "--daemonize", "no", "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        import redis

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.state_dir / "redis.log").read_text(errors="replace")[-300:].strip()
                raise PrivateRedisError(f"redis-server exited with {self.proc.returncode}: {tail}")
            if self.socket.exists():
                try:
                    client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
                    client.ping()
                    client.close()
                    return
                except redis.exceptions.BusyLoadingError:
                    pass  # loading the append-only file of a resumed crawl
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    pass
            time.sleep(0.05)
        self.stop()
        raise PrivateRedisError(f"redis-server did not answer on {self.socket} within {timeout:.0f}s")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (redis fsyncs its append-only file and exits), SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
