"""A real S3 endpoint on loopback for tests: moto's standalone server in a subprocess.

Code under test only ever sees an endpoint URL, exactly as with MinIO or AWS. Import it from any
test module::

    from tests.s3server import MotoS3Server, s3_server  # noqa: F401  (s3_server is a fixture)

    def test_x(s3_server):
        s3_server.create_bucket("archive")
        client = s3_server.client()

``stop()``/``start()`` restart the server on the same port (moto keeps objects in memory, so a
restart forgets buckets and objects, like a store that lost its data).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import free_port, stop_process

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoS3Server:
    """``moto_server -H 127.0.0.1 -p PORT`` as a subprocess, with readiness wait and restart."""

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (socialark CLI) talking to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def start(self, timeout: float = 20.0) -> None:
        cmd = [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(self.port)]
        if not shutil.which("moto_server"):
            cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        log = open(self.log_dir / f"moto-{self.port}.log", "ab") if self.log_dir else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reset(self) -> None:
        """Forget every bucket and object (moto's ``/moto-api/reset``), keeping the process."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


@pytest.fixture(scope="session")
def _moto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    server = MotoS3Server(log_dir=tmp_path_factory.mktemp("moto"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server(
    _moto_process: MotoS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> MotoS3Server:
    """An empty S3 server (one moto process per session, reset before each test).

    AWS_* env vars point boto3's default chain at it. A test may ``stop()``/``start()`` it; the
    next test gets it running again.
    """
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    server = _moto_process
    if server.running:
        server.reset()
    else:
        server.start()
    return server
