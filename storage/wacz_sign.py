"""The signature block of a WACZ's ``datapackage-digest.json`` (WACZ 1.1.1, anonymous signing).

Written as ArchiveWeb.page writes it and as wabac.js (ReplayWeb.page) and py-wacz read it::

    {"path": "datapackage.json", "hash": "sha256:<hex>",
     "signedData": {"hash": "sha256:<hex>", "created": "<datapackage created>",
                    "software": "...", "signature": "<base64 r||s>", "publicKey": "<base64 DER>"}}

``created`` equals the datapackage's ``created``. With a TSA, ``timestamp`` (beside
``signedData``, so readers that do not know it ignore it) holds an RFC 3161 token over the hash.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from typing import Any

from storage.signing import SigningKey, verify_signature
from storage.tsa import TimestampError, check_token, digest_of, request_timestamp


def digest_fields(hash_value: str, created: str, *, software: str,
                  key: SigningKey | None = None, tsa_url: str | None = None) -> dict[str, Any]:
    """Fields added to ``datapackage-digest.json`` beside ``path`` and ``hash``."""
    extra: dict[str, Any] = {}
    if key is not None:
        extra["signedData"] = {
            "hash": hash_value, "created": created, "software": software,
            "signature": key.sign(hash_value), "publicKey": key.public_b64,
        }
    if tsa_url:
        stamp = request_timestamp(tsa_url, digest_of(hash_value))
        extra["timestamp"] = {"token": stamp.token_b64, "tsa": tsa_url,
                              "genTime": stamp.gen_time.isoformat()}
    return extra


def signature_problems(zf: zipfile.ZipFile, *, public_key: str | None = None,
                       trusted_tsa: list[Any] | None = None, require: bool = False) -> list[str]:
    """What is wrong with the signature and timestamp of a WACZ (empty: fine or unsigned)."""
    try:
        doc = json.loads(zf.read("datapackage-digest.json"))
        package_bytes = zf.read("datapackage.json")
        package = json.loads(package_bytes)
    except (KeyError, ValueError):
        return ["datapackage-digest.json or datapackage.json missing or not JSON"] if require else []
    actual = "sha256:" + hashlib.sha256(package_bytes).hexdigest()
    problems = []
    signed = doc.get("signedData")
    if not isinstance(signed, dict):
        if require or public_key:
            problems.append("datapackage-digest.json: not signed")
    else:
        if signed.get("hash") != actual or doc.get("hash") != actual:
            problems.append("signedData.hash is not the hash of datapackage.json")
        if signed.get("created") != package.get("created"):
            problems.append("signedData.created differs from datapackage.json created")
        if public_key and signed.get("publicKey") != public_key:
            problems.append("signedData: signed by another key than the one expected")
        if not verify_signature(str(signed.get("hash")), str(signed.get("signature")),
                                str(signed.get("publicKey"))):
            problems.append("signedData: signature does not verify")
    stamp = doc.get("timestamp")
    if isinstance(stamp, dict):
        try:
            check_token(str(stamp.get("token")), digest_of(actual), trusted_tsa)
        except TimestampError as exc:
            problems.append(f"datapackage-digest.json timestamp: {exc}")
    return problems
