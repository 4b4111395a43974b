"""BlobStore: content addressing, dedup, permissions, verification."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from jupiter.errors import SnapshotError
from jupiter.snapshots import BlobStore


def blob_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and len(p.parent.name) == 2)


def test_put_get_has_and_layout(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    sha = store.put_bytes(b"hello\n")
    assert sha == hashlib.sha256(b"hello\n").hexdigest()
    assert store.has(sha) and store.has_listed(sha)
    assert store.get(sha) == b"hello\n"
    with store.open(sha) as fh:
        assert fh.read() == b"hello\n"
    path = store.path_for(sha)
    assert path == tmp_path / "blobs" / sha[:2] / sha[2:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700
    assert store.verify(sha)
    empty = store.put_bytes(b"")
    assert empty == hashlib.sha256(b"").hexdigest() and store.get(empty) == b""


def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "src.bin"
    src.write_bytes(b"same bytes" * 1000)
    a = store.put_bytes(b"same bytes" * 1000)
    b, size = store.put_file(src)
    with src.open("rb") as fh:
        c, _ = store.put_stream(fh)
    fd = os.open(src, os.O_RDONLY)
    try:
        d, _ = store.put_fd(fd, src.stat().st_size)
    finally:
        os.close(fd)
    assert a == b == c == d and size == 10_000
    assert len(blob_files(tmp_path / "blobs")) == 1
    # No temp files left behind by any of the paths.
    leftovers = [p for p in (tmp_path / "blobs").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_large_file_is_streamed_and_hashed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    payload = os.urandom(9 * 1024 * 1024 + 3)  # above the 4 MiB in-memory limit
    src = tmp_path / "big"
    src.write_bytes(payload)
    fd = os.open(src, os.O_RDONLY)
    try:
        sha, size = store.put_fd(fd, len(payload))
    finally:
        os.close(fd)
    assert sha == hashlib.sha256(payload).hexdigest() and size == len(payload)
    assert store.verify(sha)
    chunks = io.BytesIO(payload)
    assert store.put_stream(chunks) == (sha, size)


def test_put_fd_copes_with_a_file_that_grew_past_its_size_hint(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    payload = os.urandom(5 * 1024 * 1024)
    src = tmp_path / "grew"
    src.write_bytes(payload)
    fd = os.open(src, os.O_RDONLY)
    try:
        sha, size = store.put_fd(fd, 10)  # stat said 10 bytes; it is 5 MiB now
    finally:
        os.close(fd)
    assert size == len(payload) and store.get(sha) == payload


def test_verify_detects_corruption_and_absence(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    sha = store.put_bytes(b"original")
    path = store.path_for(sha)
    path.chmod(0o600)
    path.write_bytes(b"tampered")
    assert not store.verify(sha)
    assert store.hash_of(sha) == hashlib.sha256(b"tampered").hexdigest()
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.verify(missing) and not store.has(missing)
    assert store.hash_of(missing) is None
    with pytest.raises(SnapshotError, match="is missing from"):
        store.get(missing)


@pytest.mark.parametrize("bad", ["", "abc", "../../etc/passwd", "A" * 64, "g" * 64])
def test_malformed_blob_ids_are_refused(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(SnapshotError, match="not a lowercase sha256"):
        store.path_for(bad)
    assert not store.has(bad)
    assert not store.has_listed(bad)


def test_unusable_directory_is_a_snapshot_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(SnapshotError, match="cannot be created"):
        BlobStore(blocker / "blobs")


def test_rename_fallback_when_anonymous_temp_files_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupiter.snapshots import blobs as blobs_module

    monkeypatch.setattr(blobs_module, "_tmpfile_ok", [False])
    store = BlobStore(tmp_path / "blobs")
    sha = store.put_bytes(b"via rename")
    assert store.verify(sha) and store.put_bytes(b"via rename") == sha
    assert stat.S_IMODE(store.path_for(sha).stat().st_mode) == 0o600
    assert [p.name for p in store.path_for(sha).parent.iterdir()] == [sha[2:]]
