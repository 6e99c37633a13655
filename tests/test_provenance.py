"""Provenance: the hash-chained manifest, signatures, RFC 3161 timestamps and `socialark verify`.

Real crawls of the core site in subprocesses, a real TSA on loopback (OpenSSL's ``ts -reply``,
tests/tsa_server.py), real kill -9 (``SOCIALARK_CRASH_AT``), a real S3 endpoint (moto), and
tampering done the way an adversary would: bytes flipped, lines deleted, swapped or rewritten
with recomputed hashes, signatures swapped, WACZ members altered.
"""

from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.manifest import entry_hash, read_entries
from storage.signing import create_key, load_key, verify_signature
from tests.conftest import socialark
from tests.sites.core_site import CoreSite
from tests.tsa_server import LocalTSA

COLL = "prov"
pytest_plugins = ["tests.s3server"]  # the s3_server fixture


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as server:
        yield server


@pytest.fixture(scope="module")
def signed_crawl(core_site: CoreSite, tsa: LocalTSA,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crawl into several small WARCs, every manifest entry signed and timestamped."""
    data_dir = tmp_path_factory.mktemp("prov") / "data"
    made = socialark("keys", "create", "--collection", COLL, data_dir=data_dir)
    assert made.returncode == 0, made.stderr
    proc = socialark("crawl", "site", core_site.base_url, "--scope", "host", "--delay", "0",
                     "--warc-size", "200KB", "--collection", COLL, "--tsa", tsa.url,
                     data_dir=data_dir)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return data_dir


def warc_dir(data_dir: Path) -> Path:
    return data_dir / "warcs" / COLL


def manifest(data_dir: Path) -> Path:
    return warc_dir(data_dir) / "manifest.jsonl"


def copy(data_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(data_dir, target)
    return target


def verify(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return socialark("verify", "--collection", COLL, *args, data_dir=data_dir)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


# --- keys ---------------------------------------------------------------------------------


def test_keys_create_private_0600_public_printed_and_stored(tmp_path: Path) -> None:
    path = tmp_path / "k" / "mine.pem"
    proc = socialark("keys", "create", "--path", str(path), data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = (tmp_path / "k" / "mine.pem.pub").read_text().strip()
    assert proc.stdout.strip() == public
    key = load_key(path)
    assert key.public_b64 == public
    der = base64.b64decode(public)
    assert der.startswith(bytes.fromhex("3076301006072a8648ce3d020106052b81040022"))  # P-384 SPKI
    signature = key.sign("sha256:" + "ab" * 32)
    assert len(base64.b64decode(signature)) == 96  # raw r||s, what WebCrypto verifies
    assert verify_signature("sha256:" + "ab" * 32, signature, public)
    assert not verify_signature("sha256:" + "ac" * 32, signature, public)

    again = socialark("keys", "create", "--path", str(path), data_dir=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [f"Error: {path} exists; not replacing a "
                                                 "signing key (remove it first)"]
    assert load_key(path).public_b64 == public


# --- the signed, timestamped crawl --------------------------------------------------------


def test_every_closed_warc_has_a_signed_timestamped_chained_entry(
    signed_crawl: Path, tsa: LocalTSA, tmp_path: Path,
) -> None:
    entries = read_entries(manifest(signed_crawl))
    on_disk = sorted(p.name for p in warc_dir(signed_crawl).glob("*.warc.gz"))
    assert len(on_disk) >= 3
    assert sorted(e["file"] for e in entries) == on_disk
    public = (signed_crawl / "keys" / f"{COLL}.pem.pub").read_text().strip()
    prev = "sha256:" + "0" * 64
    for seq, entry in enumerate(entries):
        assert entry["seq"] == seq and entry["prev"] == prev
        assert entry["hash"] == entry_hash(entry)
        assert entry["publicKey"] == public
        assert verify_signature(entry["hash"], entry["signature"], public)
        assert entry["crawl_id"] and entry["records"] > 0
        prev = entry["hash"]
        # The token is a standard RFC 3161 token: OpenSSL verifies it on its own.
        token = tmp_path / f"{seq}.tst"
        token.write_bytes(base64.b64decode(entry["timestamp"]["token"]))
        checked = subprocess.run(
            ["openssl", "ts", "-verify", "-digest", entry["hash"].split(":")[1], "-token_in",
             "-in", str(token), "-CAfile", str(tsa.ca_pem)], capture_output=True, text=True)
        assert checked.returncode == 0 and "Verification: OK" in checked.stdout, checked.stderr
    assert tsa.requests >= len(entries)

    proc = verify(signed_crawl, "--public-key", str(signed_crawl / "keys" / f"{COLL}.pem.pub"),
                  "--tsa-cert", str(tsa.ca_pem))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "verify: OK"
    assert f"{len(entries)} signed, {len(entries)} timestamped" in proc.stderr
    assert "MB/s" in proc.stderr


def test_timestamps_from_an_untrusted_tsa_are_named(signed_crawl: Path, tmp_path: Path) -> None:
    with LocalTSA() as other:  # another CA: the crawl's tokens are not signed under it
        proc = verify(signed_crawl, "--tsa-cert", str(other.ca_pem))
    assert proc.returncode == 1
    assert "timestamp: timestamp signed by an untrusted TSA: CN=socialark test TSA" in proc.stdout


# --- tampering ------------------------------------------------------------------------------


def test_flipped_byte_in_a_warc_is_named(signed_crawl: Path, tmp_path: Path) -> None:
    data = copy(signed_crawl, tmp_path)
    victim = sorted(warc_dir(data).glob("*.warc.gz"))[1]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    proc = verify(data)
    assert proc.returncode == 1
    assert f"FAIL {COLL}: altered: {victim.name}" in proc.stdout
    assert f"index: warc_files.sha256 of {victim.name} does not match the file" in proc.stdout
    assert proc.stdout.count(f"FAIL {COLL}") == 2  # nothing else is blamed


def test_deleted_manifest_line_breaks_the_chain_and_leaves_an_extra_file(
    signed_crawl: Path, tmp_path: Path,
) -> None:
    data = copy(signed_crawl, tmp_path)
    lines = manifest(data).read_text().splitlines()
    removed, after = json.loads(lines[1])["file"], json.loads(lines[2])["file"]
    write_lines(manifest(data), lines[:1] + lines[2:])
    proc = verify(data)
    assert proc.returncode == 1
    assert (f"first broken link: manifest.jsonl line 2 ({after}): chain broken: prev is not the "
            "hash of the entry before it") in proc.stdout
    assert f"extra: {removed} is on disk but not in the manifest" in proc.stdout
    assert f"index: warc_files lists {removed}, the manifest does not" in proc.stdout


def test_reordered_manifest_lines_break_the_chain(signed_crawl: Path, tmp_path: Path) -> None:
    data = copy(signed_crawl, tmp_path)
    lines = manifest(data).read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(manifest(data), lines)
    proc = verify(data)
    assert proc.returncode == 1
    moved = json.loads(lines[1])["file"]
    assert f"first broken link: manifest.jsonl line 2 ({moved}): chain broken" in proc.stdout


def test_replaced_warc_with_recomputed_entry_is_caught(signed_crawl: Path, tmp_path: Path) -> None:
    """Another valid WARC in place of one, its entry rewritten to match (hash recomputed, prev
    kept) but the chain not re-linked after it, and the signature kept as it was."""
    data = copy(signed_crawl, tmp_path)
    files = sorted(warc_dir(data).glob("*.warc.gz"))
    victim, donor = files[1], files[0]
    shutil.copyfile(donor, victim)
    lines = manifest(data).read_text().splitlines()
    entry = json.loads(lines[1])
    donor_entry = json.loads(lines[0])
    entry.update(size=donor_entry["size"], sha256=donor_entry["sha256"],
                 records=donor_entry["records"])
    entry["hash"] = entry_hash(entry)
    lines[1] = json.dumps(entry, separators=(",", ":"))
    write_lines(manifest(data), lines)
    proc = verify(data)
    assert proc.returncode == 1
    nxt = json.loads(lines[2])["file"]
    assert f"first broken link: manifest.jsonl line 3 ({nxt}): chain broken" in proc.stdout
    assert f"manifest.jsonl line 2 ({victim.name}): signature does not verify" in proc.stdout
    assert f"index: warc_files.sha256 of {victim.name} does not match the file" in proc.stdout
    assert "altered:" not in proc.stdout  # the file does match its (forged) entry


def test_swapped_or_foreign_signatures_are_named(signed_crawl: Path, tmp_path: Path) -> None:
    data = copy(signed_crawl, tmp_path)
    lines = manifest(data).read_text().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    second["signature"] = first["signature"]  # a real signature, of another entry
    lines[1] = json.dumps(second, separators=(",", ":"))
    # The last entry re-signed by an intruder's own key, its public key put beside it.
    intruder = create_key(tmp_path / "intruder.pem")
    last = json.loads(lines[-1])
    last.update(signature=intruder.sign(last["hash"]), publicKey=intruder.public_b64)
    lines[-1] = json.dumps(last, separators=(",", ":"))
    write_lines(manifest(data), lines)
    proc = verify(data)
    assert proc.returncode == 1
    assert f"line 2 ({second['file']}): signature does not verify" in proc.stdout
    assert f"line {len(lines)} ({last['file']}): signed by another key" in proc.stdout
    assert "first broken link" not in proc.stdout  # the chain itself holds
    # Told which key to expect, even a wholly re-signed manifest fails.
    expected = (signed_crawl / "keys" / f"{COLL}.pem.pub").read_text().strip()
    resigned = [dict(json.loads(line), signature=intruder.sign(json.loads(line)["hash"]),
                     publicKey=intruder.public_b64) for line in lines]
    write_lines(manifest(data), [json.dumps(e, separators=(",", ":")) for e in resigned])
    assert verify(data).returncode == 0  # self-consistent without an expected key
    proc = verify(data, "--public-key", expected)
    assert proc.returncode == 1
    assert proc.stdout.count("signed by another key") == len(lines)


def test_missing_and_extra_files_and_a_truncated_manifest_are_named(
    signed_crawl: Path, tmp_path: Path,
) -> None:
    data = copy(signed_crawl, tmp_path)
    files = sorted(warc_dir(data).glob("*.warc.gz"))
    files[0].unlink()
    shutil.copyfile(files[1], warc_dir(data) / "socialark-20200101000000-00000-x-1.warc.gz")
    proc = verify(data)
    assert proc.returncode == 1
    assert f"missing: {files[0].name} is in the manifest but not on disk" in proc.stdout
    assert ("extra: socialark-20200101000000-00000-x-1.warc.gz is on disk but not in the "
            "manifest") in proc.stdout
    # Dropping the last entry and its file leaves a consistent chain: the index still knows.
    data2 = copy(signed_crawl, tmp_path / "2")
    lines = manifest(data2).read_text().splitlines()
    last = json.loads(lines[-1])["file"]
    write_lines(manifest(data2), lines[:-1])
    (warc_dir(data2) / last).unlink()
    proc = verify(data2)
    assert proc.returncode == 1
    assert f"index: warc_files lists {last}, the manifest does not" in proc.stdout


# --- crashes --------------------------------------------------------------------------------


@pytest.mark.parametrize("crash_at", ["warc_renamed:2", "manifest_written:2"])
def test_kill_9_at_file_close_then_resume_keeps_the_manifest_whole(
    core_site: CoreSite, tmp_path: Path, crash_at: str,
) -> None:
    """SIGKILL between a WARC's rename and its manifest entry, or between the manifest's
    temporary copy and its rename: the resumed crawl enters the file and the chain holds."""
    data = tmp_path / "data"
    args = ["crawl", "site", core_site.base_url, "--scope", "host", "--delay", "0",
            "--warc-size", "200KB", "--collection", COLL]
    killed = socialark(*args, data_dir=data, env={"SOCIALARK_CRASH_AT": crash_at})
    assert killed.returncode == -9, killed.stderr[-2000:]
    listed = {e["file"] for e in read_entries(manifest(data))}
    closed = {p.name for p in warc_dir(data).glob("*.warc.gz")}
    assert len(closed - listed) == 1  # the kill came before its entry
    resumed = socialark(*args, "--resume", data_dir=data)
    assert resumed.returncode in (0, 1), resumed.stderr[-3000:]
    entries = read_entries(manifest(data))
    assert sorted(e["file"] for e in entries) == sorted(p.name for p in warc_dir(data).glob("*.warc.gz"))
    recovered = [e for e in entries if "crash recovery" in e.get("note", "")]
    assert [e["file"] for e in recovered] == sorted(closed - listed)
    proc = verify(data)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- remote copies --------------------------------------------------------------------------


def test_verify_remote_copies(signed_crawl: Path, tmp_path: Path, s3_server: object) -> None:
    from tests.s3server import MotoS3Server

    assert isinstance(s3_server, MotoS3Server)
    s3_server.create_bucket("evidence")
    data = copy(signed_crawl, tmp_path)
    env = s3_server.env()
    mirrored = socialark("mirror", "s3://evidence/a", "--collection", COLL, data_dir=data, env=env)
    assert mirrored.returncode == 0, mirrored.stderr
    ok = socialark("verify", "--collection", COLL, "--remote", "s3://evidence/a", data_dir=data,
                   env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    client = s3_server.client()
    names = sorted(p.name for p in warc_dir(data).glob("*.warc.gz"))
    client.put_object(Bucket="evidence", Key=f"a/{COLL}/{names[0]}", Body=b"WARC/1.1\r\n")
    client.delete_object(Bucket="evidence", Key=f"a/{COLL}/{names[1]}")
    client.put_object(Bucket="evidence", Key=f"a/{COLL}/planted.warc.gz", Body=b"x")
    bad = socialark("verify", "--collection", COLL, "--remote", "s3://evidence/a", data_dir=data,
                    env=env)
    assert bad.returncode == 1
    assert f"remote altered: s3://evidence/a/{COLL}/{names[0]} differs" in bad.stdout
    assert f"remote missing: {names[1]} is not in s3://evidence/a/{COLL}/" in bad.stdout
    assert f"remote extra: s3://evidence/a/{COLL}/planted.warc.gz" in bad.stdout


def test_verify_without_a_manifest_fails_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "warcs" / "old").mkdir(parents=True)
    proc = socialark("verify", data_dir=tmp_path)
    assert proc.returncode == 1
    assert "old: no manifest" in proc.stdout
    empty = socialark("verify", data_dir=tmp_path / "nothing")
    assert empty.returncode == 2 and empty.stderr.strip().startswith("Error: no collections")


def test_crawl_rejects_a_key_that_is_not_p384(tmp_path: Path, core_site: CoreSite) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    proc = socialark("crawl", "site", core_site.base_url, "--sign-key", str(bad), data_dir=tmp_path)
    assert proc.returncode == 2
    assert "is not an unencrypted PEM private key" in proc.stderr
    assert not (tmp_path / "warcs").exists()


def test_unreachable_tsa_does_not_stop_the_crawl(core_site: CoreSite, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/tsa"
    data = tmp_path / "data"
    proc = socialark("crawl", "site", f"{core_site.base_url}/robots.txt", "--max-pages", "1",
                     "--collection", COLL, "--tsa", dead, data_dir=data)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    (entry,) = read_entries(manifest(data))
    assert "timestamp" not in entry and entry["timestampError"].startswith(
        f"timestamp authority {dead} failed")
    checked = verify(data)
    assert checked.returncode == 0, checked.stdout
    assert "note: 1 entries have no timestamp (the TSA failed when the file closed)" in checked.stderr
