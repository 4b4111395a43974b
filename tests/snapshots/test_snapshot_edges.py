"""Snapshot edge cases: created directories, replaced kinds, bulk paths, cache damage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jupiter.snapshots import BlobStore, ManifestEntry, capture, capture_tree, restore
from jupiter.snapshots import verify_restored as verify
from jupiter.targets.local import LocalTarget


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "motd").write_bytes(b"welcome\n")
    return r


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_directories_created_by_the_change_are_removed(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, ["etc/new/deeper/file.conf"], blobs)
    assert entries == [
        ManifestEntry.absent("etc/new/deeper/file.conf"),
        ManifestEntry.absent("etc/new"),
        ManifestEntry.absent("etc/new/deeper"),
    ]
    target.write_bytes("etc/new/deeper/file.conf", b"x")
    report = restore(target, entries, blobs)
    assert not (root / "etc" / "new").exists()
    assert set(report.removed) == {"etc/new/deeper/file.conf", "etc/new/deeper", "etc/new"}
    assert verify(target, entries) == []


def test_foreign_files_in_a_created_directory_are_left_alone(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, ["etc/new/file.conf"], blobs)
    target.write_bytes("etc/new/file.conf", b"x")
    (root / "etc" / "new" / "someone-elses").write_bytes(b"keep me")
    report = restore(target, entries, blobs)
    assert (root / "etc" / "new" / "someone-elses").read_bytes() == b"keep me"
    assert [path for path, _ in report.skipped] == ["etc/new"]
    assert not report.complete
    assert verify(target, entries) == ["etc/new"]


def test_file_replaced_by_a_directory_is_written_back(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, ["etc/motd", "etc/motd/inner"], blobs)
    target.remove("etc/motd")
    target.write_bytes("etc/motd/inner", b"now a directory")
    restore(target, entries, blobs)
    assert (root / "etc" / "motd").read_bytes() == b"welcome\n"
    assert verify(target, entries) == []


def test_file_replaced_by_a_symlink_is_written_back(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, ["etc/motd"], blobs)
    (root / "etc" / "motd").unlink()
    os.symlink("/etc/passwd", root / "etc" / "motd")
    restore(target, entries, blobs)
    assert not (root / "etc" / "motd").is_symlink()
    assert (root / "etc" / "motd").read_bytes() == b"welcome\n"


def test_bulk_capture_and_restore_use_the_batched_paths(root: Path, blobs: BlobStore) -> None:
    for i in range(90):
        sub = root / f"d{i % 7}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}").write_bytes(os.urandom(i * 50))
        (sub / f"f{i}").chmod(0o600 if i % 2 else 0o644)
    target = LocalTarget(root)
    paths = target.walk()
    assert len(paths) == 91
    via_paths = capture(target, paths, blobs)  # >= 64 paths: thread pool, one sync
    via_tree = capture_tree(target, blobs)
    assert via_paths == via_tree
    for i in range(0, 90, 3):
        target.write_bytes(f"d{i % 7}/f{i}", b"changed", mode=0o777)
    target.remove("d1/f1")
    assert len(verify(target, via_tree)) == 31
    report = restore(target, via_tree, blobs)  # >= 64 entries: batched flush
    assert len(report.written) == 91
    assert verify(target, via_tree) == []
    assert stat.S_IMODE((root / "d0" / "f0").stat().st_mode) == 0o644


def test_capture_tree_of_a_subdirectory_and_missing_ones(root: Path, blobs: BlobStore) -> None:
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "syslog").write_bytes(b"log")
    os.symlink("var", root / "var-alias")
    target = LocalTarget(root)
    assert [e.path for e in capture_tree(target, blobs, "var")] == ["var/log/syslog"]
    # A symlinked directory inside the root is followed when named explicitly,
    # and paths keep the name the caller used.
    assert [e.path for e in capture_tree(target, blobs, "var-alias")] == ["var-alias/log/syslog"]
    assert capture_tree(target, blobs, "absent") == []
    assert capture_tree(target, blobs, "etc/motd") == []
    # The whole-tree scan does not descend into the symlinked directory.
    assert [e.path for e in capture_tree(target, blobs)] == ["etc/motd", "var/log/syslog"]


def test_a_damaged_stat_cache_is_ignored(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    first = capture_tree(target, blobs)
    for cache in (blobs.directory / "statcache").glob("*.json"):
        cache.write_bytes(b"{not json")
    assert capture_tree(target, blobs) == first
    for cache in (blobs.directory / "statcache").glob("*.json"):
        cache.write_bytes(b'{"root": "%s", "files": {"etc/motd": [1, 2]}}' % str(root).encode())
    assert capture_tree(target, blobs) == first


def test_streaming_write_without_a_descriptor(root: Path) -> None:
    import io

    target = LocalTarget(root)
    target.write_stream("etc/from-memory", io.BytesIO(b"abc" * 1000))
    assert (root / "etc" / "from-memory").read_bytes() == b"abc" * 1000


def test_file_entry_without_blob_is_refused_before_anything_changes(
    root: Path, blobs: BlobStore
) -> None:
    from jupiter.errors import SnapshotError

    target = LocalTarget(root)
    good = capture(target, ["etc/motd", "etc/new"], blobs)
    broken = [*good, ManifestEntry("etc/other", True, "file", 0o644, 0, 0, 3, None)]
    target.write_bytes("etc/new", b"created")
    with pytest.raises(SnapshotError, match=r"etc/other have no blob.*nothing was restored"):
        restore(target, broken, blobs)
    assert (root / "etc" / "new").exists()
