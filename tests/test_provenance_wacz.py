"""Signed, timestamped WACZ exports: the WACZ 1.1.1 ``signedData`` block, tampering named by
``socialark verify --wacz``, and ReplayWeb.page (wabac.js, in Chromium) verifying the signature.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.signing import create_key, verify_signature
from tests.conftest import socialark
from tests.replay_helpers import HOST, build_archive
from tests.tsa_server import LocalTSA

JSON_MEMBERS = ("datapackage.json", "datapackage-digest.json")


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as server:
        yield server


@pytest.fixture(scope="module")
def signed_wacz(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTSA) -> tuple[Path, Path]:
    """(the WACZ, the key's .pub file): exported by the CLI with the collection's default key."""
    base = tmp_path_factory.mktemp("wacz")
    data = base / "data"
    build_archive(data, "test").close()
    made = socialark("keys", "create", "--collection", "test", data_dir=data)
    assert made.returncode == 0, made.stderr
    out = base / "signed.wacz"
    proc = socialark("export", "wacz", "--collection", "test", "--sign", "--tsa", tsa.url,
                     "-o", str(out), data_dir=data)
    assert proc.returncode == 0, proc.stderr
    return out, data / "keys" / "test.pem.pub"


def rewrite(src: Path, dst: Path, change: Callable[[str, bytes], bytes]) -> None:
    """Copy a WACZ member by member (valid CRCs, same compression), passing each through
    ``change(name, data)``: what someone editing the package with zip tools produces."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, change(info.filename, zin.read(info.filename)))


def verify_wacz_cli(path: Path, *args: str) -> tuple[int, str]:
    proc = socialark("verify", "--wacz", str(path), *args)
    return proc.returncode, proc.stdout


def test_signed_block_is_the_wacz_1_1_1_form(signed_wacz: tuple[Path, Path], tsa: LocalTSA) -> None:
    wacz, pub = signed_wacz
    with zipfile.ZipFile(wacz) as zf:
        package_bytes = zf.read("datapackage.json")
        doc = json.loads(zf.read("datapackage-digest.json"))
    package = json.loads(package_bytes)
    digest = "sha256:" + hashlib.sha256(package_bytes).hexdigest()
    assert doc["path"] == "datapackage.json" and doc["hash"] == digest
    signed = doc["signedData"]
    assert set(signed) == {"hash", "created", "software", "signature", "publicKey"}
    assert signed["hash"] == digest
    assert signed["created"] == package["created"]
    assert signed["software"].startswith("socialark ")
    assert signed["publicKey"] == pub.read_text().strip()
    assert verify_signature(digest, signed["signature"], signed["publicKey"])
    assert doc["timestamp"]["tsa"] == tsa.url
    code, out = verify_wacz_cli(wacz, "--public-key", str(pub), "--tsa-cert", str(tsa.ca_pem))
    assert code == 0, out
    assert out.strip() == f"verify {wacz.name}: OK"


def test_altered_member_is_named(signed_wacz: tuple[Path, Path], tmp_path: Path) -> None:
    wacz, _ = signed_wacz
    warc = "archive/TEST-20240102030405-00000-host-1.warc.gz"

    def flip(name: str, data: bytes) -> bytes:
        if name != warc:
            return data
        raw = bytearray(data)
        raw[len(raw) // 2] ^= 0x01
        return bytes(raw)

    altered = tmp_path / "altered.wacz"
    rewrite(wacz, altered, flip)
    code, out = verify_wacz_cli(altered)
    assert code == 1
    assert f"FAIL altered.wacz: {warc}: hash sha256:" in out

    # The same change with datapackage.json and the digest made to match: the signature and
    # the timestamp, which cover the old hash, give it away.
    new_hash = {}

    def cover_up(name: str, data: bytes) -> bytes:
        data = flip(name, data)
        if name == "datapackage.json":
            package = json.loads(data)
            for res in package["resources"]:
                if res["path"] == warc:
                    res["hash"] = "sha256:" + hashlib.sha256(flip(warc, zipfile.ZipFile(wacz).read(warc))).hexdigest()
            data = json.dumps(package, indent=2).encode()
            new_hash["v"] = "sha256:" + hashlib.sha256(data).hexdigest()
        if name == "datapackage-digest.json":
            doc = json.loads(data)
            doc["hash"] = doc["signedData"]["hash"] = new_hash["v"]
            data = json.dumps(doc).encode()
        return data

    forged = tmp_path / "forged.wacz"
    rewrite(wacz, forged, cover_up)
    code, out = verify_wacz_cli(forged)
    assert code == 1
    assert "FAIL forged.wacz: signedData: signature does not verify" in out
    assert "FAIL forged.wacz: datapackage-digest.json timestamp: timestamp token is for another hash" in out
    assert f"{warc}: hash" not in out  # the member matches its (forged) listing


def test_swapped_signature_is_named(signed_wacz: tuple[Path, Path], tmp_path: Path) -> None:
    wacz, pub = signed_wacz
    swapped = tmp_path / "swapped.wacz"
    rewrite(wacz, swapped, _swap_signature(tmp_path))
    code, out = verify_wacz_cli(swapped)
    assert code == 1
    assert "FAIL swapped.wacz: signedData: signature does not verify" in out
    # A whole new signature by another key holds on its own, not against the expected key.
    resigned = tmp_path / "resigned.wacz"
    other = create_key(tmp_path / "other.pem")

    def resign(name: str, data: bytes) -> bytes:
        if name != "datapackage-digest.json":
            return data
        doc = json.loads(data)
        doc["signedData"].update(signature=other.sign(doc["hash"]), publicKey=other.public_b64)
        return json.dumps(doc).encode()

    rewrite(wacz, resigned, resign)
    assert verify_wacz_cli(resigned)[0] == 0
    code, out = verify_wacz_cli(resigned, "--public-key", str(pub))
    assert code == 1
    assert "signedData: signed by another key than the one expected" in out


def _swap_signature(tmp_path: Path) -> Callable[[str, bytes], bytes]:
    """Replace the signature with a real one by another key over another hash."""
    other = create_key(tmp_path / "swap.pem")

    def change(name: str, data: bytes) -> bytes:
        if name != "datapackage-digest.json":
            return data
        doc = json.loads(data)
        doc["signedData"]["signature"] = other.sign("sha256:" + "0" * 64)
        return json.dumps(doc).encode()

    return change


def test_sign_without_a_key_is_a_usage_error(tmp_path: Path) -> None:
    build_archive(tmp_path / "data", "test").close()
    proc = socialark("export", "wacz", "--collection", "test", "--sign", "-o",
                     str(tmp_path / "x.wacz"), data_dir=tmp_path / "data")
    assert proc.returncode == 2
    assert "no signing key at" in proc.stderr and "socialark keys create" in proc.stderr
    assert not (tmp_path / "x.wacz").exists()


# --- ReplayWeb.page ---------------------------------------------------------------------------

VERIFICATION_JS = """async () => {
  const out = {};
  for (const d of await indexedDB.databases()) {
    const db = await new Promise((ok, fail) => {
      const r = indexedDB.open(d.name); r.onsuccess = () => ok(r.result); r.onerror = fail; });
    if ([...db.objectStoreNames].includes("verification")) {
      out[d.name] = await new Promise((ok, fail) => {
        const r = db.transaction("verification").objectStore("verification").getAll();
        r.onsuccess = () => ok(r.result); r.onerror = fail; });
    }
    db.close();
  }
  return out;
}"""


def replaywebpage_verification(wacz: Path) -> dict[str, object]:
    """Load ``wacz`` in ReplayWeb.page; return its verification records ({id: row}).

    wabac.js checks ``signedData`` with WebCrypto while loading the package and stores the
    outcome in the collection's ``verification`` store (what its archive info view shows).
    """
    from playwright.sync_api import sync_playwright

    from tests.test_replaywebpage import CHROMIUM, CHROMIUM_ARGS, serve

    with serve(wacz, f"{HOST}/", "20240102030405") as embed, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(embed)
            for _ in range(120):  # bounded wait for the service worker to load the package
                for frame in page.frames:
                    if "/replay/" not in frame.url or "mp_/" in frame.url:
                        continue
                    try:
                        stores = frame.evaluate(VERIFICATION_JS)
                    except Exception:  # the frame navigates while replay starts
                        continue
                    for rows in stores.values():
                        found = {row["id"]: row for row in rows}
                        if "signature" in found:
                            return found
                page.wait_for_timeout(500)
        finally:
            browser.close()
    raise AssertionError("ReplayWeb.page recorded no signature verification")


@pytest.mark.browser
def test_replaywebpage_verifies_the_signature(signed_wacz: tuple[Path, Path], tmp_path: Path) -> None:
    wacz, pub = signed_wacz
    found = replaywebpage_verification(wacz)
    assert found["signature"]["matched"] is True
    assert found["publicKey"]["expected"] == pub.read_text().strip()
    with zipfile.ZipFile(wacz) as zf:
        created = json.loads(zf.read("datapackage.json"))["created"]
    assert found["created"]["expected"] == created
    assert str(found["software"]["expected"]).startswith("socialark ")

    swapped = tmp_path / "swapped.wacz"
    rewrite(wacz, swapped, _swap_signature(tmp_path))
    assert replaywebpage_verification(swapped)["signature"]["matched"] is False
