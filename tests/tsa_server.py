"""A local RFC 3161 Time-Stamp Authority on loopback: OpenSSL's ``ts -reply`` behind HTTP.

A throwaway CA and a TSA certificate (extendedKeyUsage critical timeStamping) are made with
``cryptography``; each POSTed TimeStampReq is answered by ``openssl ts -reply``, an
implementation independent of ours. Nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_pki(directory: Path, cn: str = "socialark test TSA") -> None:
    """``ca.pem``, ``tsa.pem``, ``tsa.key``, ``serial`` and ``openssl.cnf`` in ``directory``."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(cn + " CA")).issuer_name(_name(cn + " CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    tsa = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
           .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
           .sign(ca_key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "tsa.pem").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    _write_key(tsa_key, directory / "tsa.key")
    (directory / "serial").write_text("01\n")
    (directory / "openssl.cnf").write_text(CONFIG.format(dir=directory))


class LocalTSA:
    """``with LocalTSA() as tsa: tsa.url`` — counts the requests it answered."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tsa-")
        self.dir = Path(self._tmp.name)
        make_pki(self.dir)
        self.requests = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    def _reply(self, query: bytes) -> bytes:
        with self._lock:  # openssl's serial file is not safe for concurrent replies
            self.requests += 1
            qpath, rpath = self.dir / "q.tsq", self.dir / "r.tsr"
            qpath.write_bytes(query)
            subprocess.run(["openssl", "ts", "-reply", "-config", str(self.dir / "openssl.cnf"),
                            "-queryfile", str(qpath), "-out", str(rpath)],
                           check=True, capture_output=True)
            return rpath.read_bytes()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                reply = tsa._reply(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        return Handler

    def __enter__(self) -> LocalTSA:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._tmp.cleanup()
