"""RFC 3161 trusted timestamps: ask a Time-Stamp Authority, check a token offline.

A token binds a SHA-256 digest to a time, signed by the TSA. We timestamp the digest a manifest
entry (or a WACZ's ``datapackage.json``) is named by, i.e. the hex in its ``sha256:<hex>`` hash,
so a token proves the entry existed no later than ``genTime``. Tokens are stored as base64 DER
(a CMS ``ContentInfo``), the same bytes ``openssl ts -verify -in ... -token_in`` reads.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import algos, cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from storage.errors import StorageError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
           "sha1": hashes.SHA1}


class TimestampError(StorageError):
    """The TSA could not be reached or refused, or a token does not check out."""


@dataclass(frozen=True)
class Timestamp:
    token_b64: str
    gen_time: datetime
    tsa: str  # the signer certificate's subject, for humans


def digest_of(hash_value: str) -> bytes:
    """``sha256:<hex>`` → the 32 digest bytes that are timestamped."""
    algo, _, hexdigest = hash_value.partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise TimestampError(f"not a sha256:<hex> hash: {hash_value!r}")
    return bytes.fromhex(hexdigest)


def request_timestamp(url: str, digest: bytes, *, timeout: float = 10.0) -> Timestamp:
    """POST a TimeStampReq for ``digest`` (SHA-256) to ``url``; return the checked token."""
    nonce = secrets.randbits(63)
    req = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": nonce,
        "cert_req": True,
    })
    http = urllib.request.Request(url, data=req.dump(), method="POST",
                                  headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as resp:
            body = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TimestampError(f"timestamp authority {url} failed: {exc}") from exc
    try:
        reply = tsp.TimeStampResp.load(body)
        status = reply["status"]["status"].native
        token = reply["time_stamp_token"]
    except ValueError as exc:
        raise TimestampError(f"timestamp authority {url} sent no RFC 3161 reply") from exc
    if status not in ("granted", "granted_with_mods") or not isinstance(token, cms.ContentInfo):
        text = reply["status"]["status_string"].native
        raise TimestampError(f"timestamp authority {url} refused: {status} {text or ''}".strip())
    token_b64 = base64.b64encode(token.dump()).decode("ascii")
    stamp = check_token(token_b64, digest)
    if _tst_info(token)["nonce"].native != nonce:
        raise TimestampError(f"timestamp authority {url} answered another request (nonce)")
    return stamp


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    signed = token["content"]
    return signed["encap_content_info"]["content"].parsed


def load_trusted(path: Path | None) -> list[x509.Certificate]:
    """PEM certificates (TSA or CA) a verifier trusts; none given: any signer is reported."""
    if path is None:
        return []
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise TimestampError(f"cannot read TSA certificates from {path}: {exc}") from exc


def check_token(token_b64: str, digest: bytes,
                trusted: list[x509.Certificate] | None = None) -> Timestamp:
    """Check a token covers ``digest`` and its CMS signature holds; raise TimestampError if not.

    With ``trusted`` certificates the signer must be one of them or directly issued by one.
    """
    try:
        token = cms.ContentInfo.load(base64.b64decode(token_b64, validate=True))
        signed = token["content"]
        info = _tst_info(token)
        imprint = info["message_imprint"]
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError("timestamp token is not a CMS TSTInfo") from exc
    if imprint["hash_algorithm"]["algorithm"].native != "sha256" \
            or imprint["hashed_message"].native != digest:
        raise TimestampError("timestamp token is for another hash")
    signer = signed["signer_infos"][0]
    cert = _signer_cert(signed, signer)
    _check_signer(signed, signer, cert)
    if trusted is not None and trusted and not _is_trusted(cert, trusted):
        raise TimestampError(f"timestamp signed by an untrusted TSA: {cert.subject.rfc4514_string()}")
    return Timestamp(token_b64, info["gen_time"].native, cert.subject.rfc4514_string())


def _signer_cert(signed: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate:
    sid = signer["sid"]
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if not isinstance(cert, cms.Certificate) and not hasattr(cert, "serial_number"):
            continue
        if sid.name == "issuer_and_serial_number":
            if cert.serial_number == sid.chosen["serial_number"].native \
                    and cert.issuer == sid.chosen["issuer"]:
                return x509.load_der_x509_certificate(cert.dump())
        elif cert.key_identifier == sid.chosen.native:
            return x509.load_der_x509_certificate(cert.dump())
    raise TimestampError("timestamp token does not carry its signer's certificate")


def _check_signer(signed: cms.SignedData, signer: cms.SignerInfo, cert: x509.Certificate) -> None:
    hash_name = signer["digest_algorithm"]["algorithm"].native
    if hash_name not in _HASHES:
        raise TimestampError(f"timestamp token uses an unsupported digest {hash_name}")
    content = signed["encap_content_info"]["content"].contents
    attrs = signer["signed_attrs"]
    wanted = None
    for attr in attrs:
        if attr["type"].native == "message_digest":
            wanted = attr["values"][0].native
    if wanted != hashlib.new(hash_name, content).digest():
        raise TimestampError("timestamp token: TSTInfo does not match its signed digest")
    signed_bytes = b"\x31" + attrs.dump()[1:]  # [0] IMPLICIT → SET OF, as signed (RFC 5652 5.4)
    signature = signer["signature"].native
    algo: algos.SignedDigestAlgorithm = signer["signature_algorithm"]
    key = cert.public_key()
    hash_alg = _HASHES[hash_name]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad = (padding.PSS(padding.MGF1(hash_alg), padding.PSS.AUTO)
                   if algo.signature_algo == "rsassa_pss" else padding.PKCS1v15())
            key.verify(signature, signed_bytes, pad, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(hash_alg))
        else:
            raise TimestampError("timestamp token signed with an unsupported key type")
    except InvalidSignature as exc:
        raise TimestampError("timestamp token signature does not verify") from exc


def _is_trusted(cert: x509.Certificate, trusted: list[x509.Certificate]) -> bool:
    for anchor in trusted:
        if cert == anchor:
            return True
        try:
            cert.verify_directly_issued_by(anchor)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


__all__ = ["Timestamp", "TimestampError", "check_token", "digest_of", "load_trusted",
           "request_timestamp"]
