"""Snapshot copies of secret files are sealed at rest and restore byte for byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from jupiter.errors import KeyFileError, SnapshotError
from jupiter.keys import KeyStore
from jupiter.snapshots import BlobStore, capture, capture_tree, restore, verify_restored
from jupiter.targets.local import LocalTarget

PEM = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    b"-----END OPENSSH PRIVATE KEY-----\n"
)
PASSWORD = b"db_password = Corr3ct-Horse-Battery-Staple-4471\n"


def all_stored_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc" / "app").mkdir(parents=True)
    (r / "etc" / "app" / "secret.conf").write_bytes(PASSWORD)
    (r / "etc" / "app" / "secret.conf").chmod(0o600)
    (r / "etc" / "app" / "id_ed25519").write_bytes(PEM)
    (r / "etc" / "app" / "id_ed25519").chmod(0o644)  # a key left readable: still sealed
    (r / "etc" / "app" / "public.conf").write_bytes(b"listen = 8080\n")
    return r


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "home" / "blobs")


PATHS = ["etc/app/secret.conf", "etc/app/id_ed25519", "etc/app/public.conf"]


def test_secret_files_are_sealed_and_restore_byte_for_byte(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, PATHS, blobs)
    by_path = {e.path: e for e in entries}
    stored = all_stored_bytes(blobs.directory)
    assert PASSWORD not in stored and b"Corr3ct-Horse" not in stored
    assert PEM not in stored and b"b3BlbnNzaC1rZXkt" not in stored
    assert b"listen = 8080" in stored  # ordinary files stay plain (no key needed)
    for path in ("etc/app/secret.conf", "etc/app/id_ed25519"):
        sha = by_path[path].sha256
        assert sha is not None and blobs.has_sealed(sha) and not blobs.path_for(sha).exists()
    # The "fix" overwrites both secrets; the rollback must put them back exactly.
    target.write_bytes("etc/app/secret.conf", b"db_password = changed\n", mode=0o644)
    target.write_bytes("etc/app/id_ed25519", b"not a key\n")
    assert verify_restored(target, entries) == ["etc/app/id_ed25519", "etc/app/secret.conf"]
    # A fresh store object (a later process) reads the same workspace key.
    restore(target, entries, BlobStore(blobs.directory))
    assert verify_restored(target, entries) == []
    assert (root / "etc" / "app" / "secret.conf").read_bytes() == PASSWORD
    assert (root / "etc" / "app" / "id_ed25519").read_bytes() == PEM
    assert stat.S_IMODE((root / "etc" / "app" / "secret.conf").stat().st_mode) == 0o600


def test_sealed_blobs_and_the_key_are_private(root: Path, blobs: BlobStore) -> None:
    entries = capture(LocalTarget(root), PATHS, blobs)
    sealed_files = [p for p in (blobs.directory / "sealed").rglob("*") if p.is_file()]
    sealed_dirs = [blobs.directory / "sealed"] + [
        p for p in (blobs.directory / "sealed").rglob("*") if p.is_dir()
    ]
    assert len(sealed_files) == 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in sealed_files} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in sealed_dirs} == {0o700}
    keys = KeyStore(blobs.directory.parent)
    assert stat.S_IMODE(keys.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.workspace_key_path.stat().st_mode) == 0o600
    # The key is not in the blob store, and the manifest names only plaintext hashes.
    material = keys.workspace_key_path.read_bytes().split()[-1]
    assert material not in all_stored_bytes(blobs.directory)
    assert all(e.sha256 is None or len(e.sha256) == 64 for e in entries)


def test_capture_tree_and_named_secrets_are_sealed(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    tree = capture_tree(target, blobs)
    assert PASSWORD not in all_stored_bytes(blobs.directory)
    # A path the caller names secret is sealed whatever its mode and content.
    named = capture(target, ["etc/app/public.conf"], blobs, secret=["etc/app/public.conf"])
    assert named[0].sha256 is not None and blobs.has_sealed(named[0].sha256)
    # A second, cached capture of an unchanged tree still finds every blob.
    assert capture_tree(target, BlobStore(blobs.directory)) == tree


def test_large_secret_streams_through_the_cipher(tmp_path: Path, blobs: BlobStore) -> None:
    root = tmp_path / "big"
    root.mkdir()
    marker = b"PLAINTEXT-MARKER-0123456789"
    body = (marker + os.urandom(64)) * 80_000  # ~7 MiB: past the in-memory limit
    (root / "dump.sql").write_bytes(body)
    (root / "dump.sql").chmod(0o600)
    target = LocalTarget(root)
    entries = capture(target, ["dump.sql"], blobs)
    assert marker not in all_stored_bytes(blobs.directory)
    assert not list((blobs.directory / "tmp").iterdir())  # no temp file left behind
    (root / "dump.sql").write_bytes(b"truncated")
    restore(target, entries, blobs)
    assert (root / "dump.sql").read_bytes() == body


class _Remote:
    """A target that is not a LocalTarget: the generic capture path (as over SSH)."""

    def __init__(self, inner: LocalTarget) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_generic_targets_seal_too(root: Path, blobs: BlobStore) -> None:
    target = _Remote(LocalTarget(root))
    entries = capture(target, PATHS, blobs)  # type: ignore[arg-type]
    assert PASSWORD not in all_stored_bytes(blobs.directory)
    assert PEM not in all_stored_bytes(blobs.directory)
    (root / "etc" / "app" / "secret.conf").write_bytes(b"x")
    restore(LocalTarget(root), entries, blobs)
    assert (root / "etc" / "app" / "secret.conf").read_bytes() == PASSWORD


def test_missing_key_is_one_sentence_and_nothing_is_restored(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, PATHS, blobs)
    key_path = KeyStore(blobs.directory.parent).workspace_key_path
    key_path.unlink()
    (root / "etc" / "app" / "public.conf").write_bytes(b"changed\n")
    with pytest.raises(KeyFileError) as info:
        restore(target, entries, BlobStore(blobs.directory))
    assert str(info.value) == (
        f"the workspace key at {key_path} is missing; restore it from your backup "
        "(sealed secrets cannot be used without it)"
    )
    assert (root / "etc" / "app" / "public.conf").read_bytes() == b"changed\n"
    assert not key_path.exists()  # reading never invents a new key


def test_corrupt_or_replaced_key_is_one_sentence(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, PATHS, blobs)
    key_path = KeyStore(blobs.directory.parent).workspace_key_path
    original = key_path.read_bytes()
    key_path.write_bytes(original[:20])
    with pytest.raises(KeyFileError, match=r"workspace key at .* is damaged.*restore it"):
        restore(target, entries, BlobStore(blobs.directory))
    key_path.unlink()
    KeyStore(blobs.directory.parent).workspace_key()  # a new, different key
    with pytest.raises(KeyFileError, match=r"sealed under workspace key [0-9a-f]{16}, but"):
        restore(target, entries, BlobStore(blobs.directory))
    key_path.write_bytes(original)
    key_path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"accessible by other users \(mode 0644\)"):
        restore(target, entries, BlobStore(blobs.directory))


def test_tampered_or_swapped_sealed_blob_is_refused(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, PATHS, blobs)
    secret = next(e for e in entries if e.path == "etc/app/secret.conf")
    key = next(e for e in entries if e.path == "etc/app/id_ed25519")
    assert secret.sha256 is not None and key.sha256 is not None
    path = blobs.sealed_path_for(secret.sha256)
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    (root / "etc" / "app" / "public.conf").write_bytes(b"changed\n")
    with pytest.raises(SnapshotError, match=rf"corrupted blobs {secret.sha256}"):
        restore(target, entries, blobs)
    assert (root / "etc" / "app" / "public.conf").read_bytes() == b"changed\n"
    # A valid sealed blob moved under another blob's name fails too: names are authenticated.
    os.replace(blobs.sealed_path_for(key.sha256), path)
    assert blobs.hash_of(secret.sha256) == "unauthentic"
