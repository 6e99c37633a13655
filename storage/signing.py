"""Anonymous ECDSA signing as ArchiveWeb.page and ReplayWeb.page (wabac.js) do it for WACZ.

wabac.js verifies ``signedData`` with WebCrypto: the public key is imported as SPKI on
``{name: "ECDSA", namedCurve: "P-384"}`` and the signature checked with ``{name: "ECDSA",
hash: "SHA-256"}`` over the UTF-8 bytes of the ``hash`` string (e.g. ``sha256:ab12...``).
WebCrypto ECDSA signatures are IEEE P1363, i.e. raw ``r || s`` (48 + 48 bytes on P-384), not
DER; ArchiveWeb.page's keystore (webrecorder/awp-sw ``src/keystore.ts``) makes the same keys.
The same scheme signs manifest entries, so one key and one verifier serve both.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from storage.errors import StorageError

CURVE = ec.SECP384R1()
COORD_BYTES = 48  # P-384
PUBLIC_SUFFIX = ".pub"


class SigningKeyError(StorageError):
    """A signing key that cannot be created, read or used (one clear line for the CLI)."""


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey
    path: Path | None = None

    @property
    def public_b64(self) -> str:
        """The public key as wabac.js wants it: base64 of the SPKI DER."""
        return public_b64(self.private.public_key())

    def sign(self, message: str) -> str:
        """Base64 of the raw ``r || s`` ECDSA-SHA256 signature over ``message`` (UTF-8)."""
        der = self.private.sign(message.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(COORD_BYTES, "big") + s.to_bytes(COORD_BYTES, "big")
        return base64.b64encode(raw).decode("ascii")


def public_b64(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def verify_signature(message: str, signature_b64: str, public_key_b64: str) -> bool:
    """Does ``signature_b64`` (raw r||s) verify over ``message`` with the SPKI key? Never raises."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64, validate=True))
        raw = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(raw) % 2:
        return False
    half = len(raw) // 2
    der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
    try:
        key.verify(der, message.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def create_key(path: Path, *, overwrite: bool = False) -> SigningKey:
    """Write a new P-384 key to ``path`` (PKCS#8 PEM, mode 0600) and its public key beside it.

    The public key goes to ``<path>.pub`` (base64 SPKI DER, the form ``publicKey`` takes in a
    signed WACZ). An existing key is never replaced unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SigningKeyError(f"{path} exists; not replacing a signing key (remove it first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(CURVE)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    key = SigningKey(private, path)
    public_path(path).write_text(key.public_b64 + "\n", encoding="ascii")
    return key


def public_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + PUBLIC_SUFFIX)


def load_key(path: Path) -> SigningKey:
    """Read a PEM private key made by ``create_key`` (P-384 only: what wabac.js verifies)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != CURVE.name:
        raise SigningKeyError(f"{path} is not an ECDSA P-384 key (create one with `socialark keys create`)")
    return SigningKey(private, path)


def default_key_path(data_dir: Path, collection: str) -> Path:
    """Where a collection's default key lives: ``<data-dir>/keys/<collection>.pem``."""
    return Path(data_dir) / "keys" / f"{collection}.pem"
