"""Replay through pywb: its own virtual environment, a generated collections root, a subprocess.

pywb pins old dependencies (``redis<3``, ``werkzeug==2.2.3``, gevent) that conflict with ours, so
it lives in a dedicated venv (``$SOCIALARK_PYWB_VENV``, default ``~/.cache/socialark/pywb-venv``)
created once with ``python -m venv`` + ``pip install`` and reused offline afterwards. It runs as
a subprocess (pywb monkey-patches gevent, which must never happen inside our process).

The root handed to ``wayback`` (``DATA_DIR/state/pywb``) holds only derived files:
``config.yaml`` (JSON, which is valid YAML), one sorted CDXJ per collection exported from the
index, and one *path index* per collection (``filename<TAB>absolute path``, sorted), which pywb's
``PathIndexResolver`` uses to open every WARC where it already is. That maps each file exactly,
including foreign WARCs indexed from elsewhere, and never copies a WARC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from storage.cdxj import CaptureFilter, collections, warc_paths, write_cdxj
from storage.offload import RemoteReader, RemoteUnavailable, absent_files, locations

PYWB_REQUIREMENT = "pywb==2.9.1"
VENV_ENV = "SOCIALARK_PYWB_VENV"
_NAME_OK = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


class ReplayError(Exception):
    """Replay cannot start for a reason the user can act on."""


def default_venv() -> Path:
    env = os.environ.get(VENV_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "socialark" / "pywb-venv"


def wayback_path(venv: Path) -> Path:
    return venv / ("Scripts/wayback.exe" if os.name == "nt" else "bin/wayback")


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def ensure_venv(venv: Path, *, install: bool = True, echo: Callable[[str], None] = _to_stderr) -> Path:
    """Return the ``wayback`` executable of ``venv``, creating the venv when missing.

    An existing venv is reused as is, so replay works offline once set up.
    """
    exe = wayback_path(venv)
    if exe.exists():
        return exe
    if not install:
        raise ReplayError(f"pywb is not installed in {venv}: run `socialark replay --setup`")
    echo(f"Creating the pywb environment in {venv} (one time; needs the package index)...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = venv / ("Scripts/pip.exe" if os.name == "nt" else "bin/pip")
        subprocess.run([str(pip), "install", "--quiet", PYWB_REQUIREMENT], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ReplayError(f"could not install {PYWB_REQUIREMENT} into {venv}: {exc}") from exc
    if not exe.exists():
        raise ReplayError(f"{PYWB_REQUIREMENT} installed but {exe} is missing")
    return exe


def check_collection_name(name: str) -> None:
    if not name or any(ch not in _NAME_OK for ch in name):
        raise ReplayError(f"collection name {name!r} cannot be a pywb collection (use letters, digits, _ or -)")


PRESIGNED_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live


def _remote_urls(db: Database, collection: str, files: dict[str, str],
                 remote: RemoteReader | None) -> dict[str, str]:
    """``{filename: presigned HTTPS URL}`` for the collection's WARCs that are only in a bucket.

    pywb reads those with HTTP range requests, straight from the bucket: nothing is downloaded.
    Each object is checked first (HEAD), so a bucket that cannot be read fails now, clearly,
    rather than as broken pages later.
    """
    absent = absent_files(db, collection, names=files)
    if not absent:
        return {}
    where = locations(absent)
    if remote is None or any(f.uri is None for f in absent):
        raise ReplayError(f"{len(absent)} WARC file(s) of collection {collection} are not on this "
                          f"machine ({where}); replay cannot read them")
    try:
        for f in absent:
            remote.check(f.uri)  # type: ignore[arg-type]
        return {f.name: remote.presigned_url(f.uri, PRESIGNED_SECONDS)  # type: ignore[arg-type]
                for f in absent}
    except RemoteUnavailable as exc:
        raise ReplayError(f"{len(absent)} WARC file(s) of collection {collection} are only in "
                          f"{where} and cannot be read from there: {exc}") from exc


def prepare_root(db: Database, root: Path, names: list[str] | None = None,
                 remote: RemoteReader | None = None) -> list[str]:
    """Write config, CDXJ and path index for ``names`` (default: every collection) into ``root``.

    WARCs offloaded to a bucket are served from presigned URLs when ``remote`` can read them.
    """
    available = collections(db)
    if names:
        missing = [n for n in names if n not in available]
        if missing:
            raise ReplayError(f"no captures in collection {', '.join(missing)} (have: {', '.join(available) or 'none'})")
    else:
        names = available
    if not names:
        raise ReplayError("the index has no captures to replay yet")
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"collections": {}, "enable_memento": True, "framed_replay": True}
    for name in names:
        check_collection_name(name)
        coll_dir = root / "colls" / name
        coll_dir.mkdir(parents=True, exist_ok=True)
        flt = CaptureFilter(collection=name)
        index = coll_dir / "index.cdxj"
        with index.open("w", encoding="utf-8") as out:
            write_cdxj(db, out, flt)
        paths = coll_dir / "archive-paths.txt"
        files = warc_paths(db, flt)
        remote_urls = _remote_urls(db, name, files, remote)
        lines = []
        for filename, path in files.items():
            if filename in remote_urls:
                path = remote_urls[filename]
            elif not path or not Path(path).exists():
                raise ReplayError(f"WARC file {filename} of collection {name} not found at {path}")
            lines.append(f"{filename}\t{path}\n")
        # PathIndexResolver binary-searches this file, so it must be byte-sorted.
        paths.write_bytes("".join(sorted(lines)).encode("utf-8"))
        config["collections"][name] = {  # type: ignore[index]
            "index_paths": str(index.resolve()),
            "archive_paths": str(paths.resolve()),
        }
    (root / "config.yaml").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return names


@dataclass
class PywbServer:
    """A running ``wayback`` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    host: str = "127.0.0.1"
    collections: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def collection_url(self, name: str) -> str:
        return f"{self.base_url}/{name}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_pywb(root: Path, port: int, exe: Path, *, host: str = "127.0.0.1",
               log: Path | None = None, ready_timeout: float = 60.0) -> PywbServer:
    """Start ``wayback`` in ``root`` and wait until it answers HTTP."""
    out = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(exe), "-b", host, "-p", str(port)], cwd=root, stdout=out, stderr=subprocess.STDOUT,
    )
    server = PywbServer(process, port, host)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            hint = f"; see {log}" if log else ""
            raise ReplayError(f"pywb exited with code {process.returncode} (port {port} in use?{hint})")
        try:
            with urllib.request.urlopen(server.base_url + "/", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # it answers, even if not with 200
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise ReplayError(f"pywb did not answer on port {port} within {ready_timeout:.0f}s")


@contextmanager
def pywb_replay(db: Database, data_dir: Path, port: int, names: list[str] | None = None, *,
                venv: Path | None = None, install: bool = True,
                host: str = "127.0.0.1", remote: RemoteReader | None = None,
                ) -> Iterator[PywbServer]:
    """Prepare ``DATA_DIR/state/pywb`` and run pywb over it for the duration of the block."""
    root = Path(data_dir) / "state" / "pywb"
    served = prepare_root(db, root, names, remote)
    exe = ensure_venv(venv or default_venv(), install=install)
    server = start_pywb(root, port, exe, host=host, log=root / "pywb.log")
    server.collections = served
    try:
        yield server
    finally:
        server.stop()
