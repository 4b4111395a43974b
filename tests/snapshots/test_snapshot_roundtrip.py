"""capture / restore / verify_restored on real directories."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from jupiter.errors import InputError, SnapshotError
from jupiter.snapshots import (
    BlobStore,
    ManifestEntry,
    StreamingTarget,
    capture,
    capture_tree,
    restore,
    verify_restored,
)
from jupiter.targets.base import CommandResult, FileState, Target
from jupiter.targets.local import LocalTarget


class PlainTarget:
    """A Target with only the protocol's methods (no streaming), so the
    generic capture/restore path is exercised as it would be over SSH."""

    def __init__(self, inner: LocalTarget) -> None:
        self._inner = inner

    def describe(self) -> str:
        return "plain:" + self._inner.describe()

    def read_bytes(self, path: str) -> bytes:
        return self._inner.read_bytes(path)

    def stat(self, path: str) -> FileState | None:
        return self._inner.stat(path)

    def glob(self, pattern: str) -> list[str]:
        return self._inner.glob(pattern)

    def walk(self, under: str = "") -> list[str]:
        return self._inner.walk(under)

    def write_bytes(self, path: str, data: bytes, mode: int | None = None) -> None:
        self._inner.write_bytes(path, data, mode)

    def set_mode(self, path: str, mode: int) -> None:
        self._inner.set_mode(path, mode)

    def set_owner(self, path: str, uid: int, gid: int) -> None:
        self._inner.set_owner(path, uid, gid)

    def remove(self, path: str) -> None:
        self._inner.remove(path)

    def run(self, argv: list[str], timeout: float) -> CommandResult:
        return self._inner.run(argv, timeout)

    def close(self) -> None:
        self._inner.close()


def tree_state(root: Path) -> dict[str, tuple[str, int, bytes | None]]:
    out: dict[str, tuple[str, int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            st = full.lstat()
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            data = full.read_bytes() if kind == "file" else None
            out[str(full.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), data)
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc" / "ssh").mkdir(parents=True)
    (r / "etc" / "ssh" / "sshd_config").write_bytes(b"PermitRootLogin yes\n")
    (r / "etc" / "ssh" / "sshd_config").chmod(0o600)
    (r / "etc" / "motd").write_bytes(b"welcome\n")
    (r / "bin").mkdir()
    (r / "bin" / "tool").write_bytes(b"\x7fELF\x00\x01binary")
    (r / "bin" / "tool").chmod(0o4755)
    return r


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


PATHS = ["etc/ssh/sshd_config", "etc/motd", "bin/tool", "etc/new.conf"]


@pytest.mark.parametrize("plain", [False, True], ids=["local", "plain-target"])
def test_round_trip_restores_content_modes_and_removes_created_files(
    root: Path, blobs: BlobStore, plain: bool
) -> None:
    local = LocalTarget(root)
    target: Target = PlainTarget(local) if plain else local
    assert isinstance(target, StreamingTarget) is not plain
    before = tree_state(root)
    entries = capture(target, PATHS, blobs)
    assert [e.path for e in entries] == PATHS
    absent = entries[3]
    assert (absent.existed, absent.kind, absent.sha256) == (False, "absent", None)
    tool = entries[2]
    assert (tool.kind, tool.mode, tool.size) == ("file", 0o4755, 12)
    assert tool.sha256 == hashlib.sha256(b"\x7fELF\x00\x01binary").hexdigest()

    # The "fix": rewrite, chmod, remove, create.
    target.write_bytes("etc/ssh/sshd_config", b"PermitRootLogin no\n", mode=0o644)
    target.set_mode("bin/tool", 0o755)
    target.remove("etc/motd")
    target.write_bytes("etc/new.conf", b"created by the fix\n")
    assert verify_restored(target, entries) == sorted(PATHS)

    report = restore(target, entries, blobs)
    assert tree_state(root) == before
    assert verify_restored(target, entries) == []
    assert report.removed == ("etc/new.conf",)
    assert set(report.written) == {"etc/ssh/sshd_config", "etc/motd", "bin/tool"}
    assert report.complete
    # Restoring twice is the same as once.
    restore(target, entries, blobs)
    assert tree_state(root) == before


def test_partial_restore_only_touches_named_paths(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    entries = capture(target, PATHS, blobs)
    target.write_bytes("etc/ssh/sshd_config", b"changed\n")
    target.write_bytes("etc/motd", b"changed too\n")
    target.write_bytes("etc/new.conf", b"new\n")
    report = restore(target, entries, blobs, only=["./etc/motd", "etc/new.conf"])
    assert report.written == ("etc/motd",) and report.removed == ("etc/new.conf",)
    assert (root / "etc" / "motd").read_bytes() == b"welcome\n"
    assert not (root / "etc" / "new.conf").exists()
    assert (root / "etc" / "ssh" / "sshd_config").read_bytes() == b"changed\n"
    assert verify_restored(target, entries) == ["etc/ssh/sshd_config"]
    with pytest.raises(InputError, match="not in this snapshot"):
        restore(target, entries, blobs, only=["etc/passwd"])


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
def test_bad_blob_means_nothing_is_restored(root: Path, blobs: BlobStore, damage: str) -> None:
    target = LocalTarget(root)
    entries = capture(target, PATHS, blobs)
    target.write_bytes("etc/ssh/sshd_config", b"changed\n")
    target.write_bytes("etc/motd", b"changed too\n")
    target.write_bytes("etc/new.conf", b"new\n")
    after_fix = tree_state(root)
    victim = next(e for e in entries if e.path == "bin/tool")
    assert victim.sha256 is not None
    blob_path = blobs.path_for(victim.sha256)
    if damage == "missing":
        blob_path.unlink()
    else:
        blob_path.write_bytes(b"bit rot")
    with pytest.raises(
        SnapshotError, match=f"{damage} blobs {victim.sha256}.*nothing was restored"
    ):
        restore(target, entries, blobs)
    assert tree_state(root) == after_fix
    # A partial restore that does not need the bad blob still works.
    restore(target, entries, blobs, only=["etc/motd"])
    assert (root / "etc" / "motd").read_bytes() == b"welcome\n"


def test_dedup_stores_identical_content_once(root: Path, blobs: BlobStore) -> None:
    for i in range(5):
        (root / f"copy{i}").write_bytes(b"PermitRootLogin yes\n")
    target = LocalTarget(root)
    entries = capture_tree(target, blobs)
    shas = {e.sha256 for e in entries}
    assert len(entries) == 8 and len(shas) == 3
    stored = [p for p in blobs.directory.rglob("*") if p.is_file() and len(p.parent.name) == 2]
    plain = [p for p in stored if p.parent.parent == blobs.directory]
    # sshd_config is 0600, so its content is also kept sealed, even though
    # the 0644 copies with the same content are stored plain.
    assert len(plain) == 3 and len(stored) == 4
    assert entries == capture(target, target.walk(), blobs)


def test_manifest_entries_round_trip_through_json(root: Path, blobs: BlobStore) -> None:
    import json

    os.symlink("motd", root / "etc" / "motd-link")
    entries = capture(LocalTarget(root), [*PATHS, "etc", "etc/motd-link"], blobs)
    kinds = {e.path: e.kind for e in entries}
    assert kinds["etc"] == "dir" and kinds["etc/motd-link"] == "symlink"
    assert next(e for e in entries if e.path == "etc/motd-link").sha256 is None
    text = json.dumps([e.to_dict() for e in entries])
    assert [ManifestEntry.from_dict(d) for d in json.loads(text)] == entries


@pytest.mark.parametrize(
    "data",
    [
        {"path": "a", "existed": True},
        {"path": "a", "existed": True, "kind": "file", "sha256": None},
        {"path": "a", "existed": False, "kind": "file"},
        {"path": "a", "existed": True, "kind": "weird"},
        {"path": "a", "existed": True, "kind": "dir", "mode": "0644"},
        {"path": "a", "existed": "yes", "kind": "dir"},
        {"path": "a", "existed": True, "kind": "dir", "colour": "red"},
    ],
)
def test_damaged_manifest_entries_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(SnapshotError, match="damaged"):
        ManifestEntry.from_dict(data)


def test_directory_mode_is_restored_and_symlink_left_alone(root: Path, blobs: BlobStore) -> None:
    os.symlink("motd", root / "etc" / "motd-link")
    target = LocalTarget(root)
    entries = capture(target, ["etc/ssh", "etc/motd-link"], blobs)
    target.set_mode("etc/ssh", 0o777)
    report = restore(target, entries, blobs)
    assert report.modes_set == ("etc/ssh",)
    assert stat.S_IMODE((root / "etc" / "ssh").stat().st_mode) == 0o755
    assert verify_restored(target, entries) == []
    target.remove("etc/motd-link")
    report = restore(target, entries, blobs)
    assert not report.complete and report.skipped[0][0] == "etc/motd-link"
    assert verify_restored(target, entries) == ["etc/motd-link"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_owner_is_restored(root: Path, blobs: BlobStore) -> None:
    os.chown(root / "etc" / "motd", 1001, 1002)
    target = LocalTarget(root)
    entries = capture(target, ["etc/motd"], blobs)
    target.set_owner("etc/motd", 0, 0)
    target.write_bytes("etc/motd", b"x")
    restore(target, entries, blobs)
    st = (root / "etc" / "motd").stat()
    assert (st.st_uid, st.st_gid) == (1001, 1002)


def test_stat_cache_skips_unchanged_files_but_sees_every_change(
    root: Path, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupiter.snapshots import statcache

    # Our files were just written; pretend the racy window is over.
    monkeypatch.setattr(statcache, "RACY_MARGIN_NS", -(10**12))
    target = LocalTarget(root)
    first = capture_tree(target, blobs)
    reads: list[str] = []
    real_open = LocalTarget.open_read

    def counting_open(self: LocalTarget, path: str):  # type: ignore[no-untyped-def]
        reads.append(path)
        return real_open(self, path)

    monkeypatch.setattr(LocalTarget, "open_read", counting_open)
    assert capture(target, [e.path for e in first], blobs) == first
    assert reads == []  # nothing re-read

    # Same size, mtime put back: only ctime/inode betray the change.
    cfg = root / "etc" / "ssh" / "sshd_config"
    st = cfg.stat()
    cfg.write_bytes(b"PermitRootLogin no!\n"[:20])
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cfg.stat().st_size == st.st_size
    again = capture(target, ["etc/ssh/sshd_config"], blobs)
    assert reads == ["etc/ssh/sshd_config"]
    assert again[0].sha256 == hashlib.sha256(cfg.read_bytes()).hexdigest()
    tree = capture_tree(target, blobs)
    assert {e.path: e.sha256 for e in tree}["etc/ssh/sshd_config"] == again[0].sha256

    # A blob deleted from the store is written again, not trusted from the cache.
    motd_sha = next(e.sha256 for e in first if e.path == "etc/motd")
    assert motd_sha is not None
    blobs.path_for(motd_sha).unlink()
    capture(target, ["etc/motd"], blobs)
    assert blobs.verify(motd_sha)


def test_recently_changed_files_are_not_cached(root: Path, blobs: BlobStore) -> None:
    target = LocalTarget(root)
    capture_tree(target, blobs)
    cache_files = list((blobs.directory / "statcache").glob("*.json"))
    assert len(cache_files) == 1
    import json

    cached = json.loads(cache_files[0].read_text())
    assert cached["files"] == {}  # all written within the racy window


def test_capture_refuses_hostile_paths(root: Path, blobs: BlobStore, tmp_path: Path) -> None:
    from jupiter.errors import PathEscapeError

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    os.symlink(outside, root / "escape")
    target = LocalTarget(root)
    for bad in ("../outside/secret", "/etc/passwd", "escape/secret"):
        with pytest.raises(PathEscapeError):
            capture(target, [bad], blobs)
    assert "escape/secret" not in {e.path for e in capture_tree(target, blobs)}
