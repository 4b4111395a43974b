"""LocalTarget's check-then-replace: a write or removal carrying an
expectation never loses an edit made by someone else, before or during the
atomic replace."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from jupiter.errors import ConflictError
from jupiter.targets.base import Expected
from jupiter.targets.local import LocalTarget


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.conf").write_bytes(b"a = 1\n")
    return tmp_path


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if ".jupiter-" in p.name)


def test_matching_expectation_replaces(root: Path) -> None:
    target = LocalTarget(root)
    target.write_bytes("etc/app.conf", b"a = 2\n", expect=Expected(sha(b"a = 1\n")))
    assert (root / "etc/app.conf").read_bytes() == b"a = 2\n"
    target.write_bytes("etc/new.conf", b"n\n", expect=Expected(None))
    assert (root / "etc/new.conf").read_bytes() == b"n\n"
    target.remove("etc/new.conf", expect=Expected(sha(b"n\n")))
    assert not (root / "etc/new.conf").exists()
    assert leftovers(root) == []


def test_edit_before_the_replace_is_kept_and_nothing_written(root: Path) -> None:
    target = LocalTarget(root)
    conf = root / "etc/app.conf"
    conf.write_bytes(b"a = 1\nadmin = yes\n")  # edited after planning
    with pytest.raises(ConflictError, match="changed after it was planned"):
        target.write_bytes("etc/app.conf", b"a = 2\n", expect=Expected(sha(b"a = 1\n")))
    assert conf.read_bytes() == b"a = 1\nadmin = yes\n"
    with pytest.raises(ConflictError, match="changed after it was planned"):
        target.remove("etc/app.conf", expect=Expected(sha(b"a = 1\n")))
    assert conf.read_bytes() == b"a = 1\nadmin = yes\n"
    # Created by someone else where the plan expected nothing.
    (root / "etc/new.conf").write_bytes(b"theirs\n")
    with pytest.raises(ConflictError, match="created by someone else"):
        target.write_bytes("etc/new.conf", b"ours\n", expect=Expected(None))
    assert (root / "etc/new.conf").read_bytes() == b"theirs\n"
    # Removed by someone else where the plan expected a file.
    (root / "etc/new.conf").unlink()
    with pytest.raises(ConflictError, match="was removed after it was planned"):
        target.write_bytes("etc/new.conf", b"ours\n", expect=Expected(sha(b"theirs\n")))
    assert not (root / "etc/new.conf").exists()
    assert leftovers(root) == []


def _edit_through_descriptor_opened_before(root: Path, action: str) -> tuple[bytes, Exception]:
    """A writer opened the file *before* Jupiter's rename and writes through
    that descriptor *after* it: the edit lands on the replaced inode."""
    conf = root / "etc/app.conf"
    target = LocalTarget(root)
    writer = os.open(conf, os.O_WRONLY | os.O_APPEND)
    errors: list[Exception] = []

    def jupiter() -> None:
        try:
            if action == "write":
                target.write_bytes("etc/app.conf", b"a = 2\n", expect=Expected(sha(b"a = 1\n")))
            else:
                target.remove("etc/app.conf", expect=Expected(sha(b"a = 1\n")))
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=jupiter)
    thread.start()
    deadline = time.monotonic() + 5
    # Wait until the rename (or unlink) happened: the name no longer has our inode.
    original = os.fstat(writer).st_ino
    while time.monotonic() < deadline:
        try:
            if conf.stat().st_ino != original:
                break
        except FileNotFoundError:
            break
        time.sleep(0.001)
    os.write(writer, b"admin = yes\n")
    os.close(writer)
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1, errors
    return conf.read_bytes(), errors[0]


def test_edit_through_an_old_descriptor_after_the_rename_is_put_back(root: Path) -> None:
    content, error = _edit_through_descriptor_opened_before(root, "write")
    assert isinstance(error, ConflictError)
    assert "their version was put back" in str(error)
    assert content == b"a = 1\nadmin = yes\n"
    assert leftovers(root) == []


def test_edit_during_a_checked_removal_is_put_back(root: Path) -> None:
    mode = 0o640
    (root / "etc/app.conf").chmod(mode)
    content, error = _edit_through_descriptor_opened_before(root, "remove")
    assert isinstance(error, ConflictError)
    assert content == b"a = 1\nadmin = yes\n"
    assert (root / "etc/app.conf").stat().st_mode & 0o777 == mode


def test_restore_with_expectation_refuses_over_a_newer_edit(root: Path, tmp_path: Path) -> None:
    from jupiter.snapshots import BlobStore, capture, restore

    target = LocalTarget(root)
    blobs = BlobStore(tmp_path / "blobs")
    entries = capture(target, ["etc/app.conf"], blobs)
    target.write_bytes("etc/app.conf", b"a = 2\n")
    (root / "etc/app.conf").write_bytes(b"a = 2\nadmin = yes\n")
    with pytest.raises(ConflictError):
        restore(target, entries, blobs, expect={"etc/app.conf": Expected(sha(b"a = 2\n"))})
    assert (root / "etc/app.conf").read_bytes() == b"a = 2\nadmin = yes\n"
    restore(target, entries, blobs, expect={"etc/app.conf": Expected(sha(b"a = 2\nadmin = yes\n"))})
    assert (root / "etc/app.conf").read_bytes() == b"a = 1\n"


def test_without_leases_the_settle_time_still_catches_the_edit(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the file's owner and no CAP_LEASE (or a filesystem without
    leases): the lease probe fails and the re-check waits the settle time."""
    import errno
    import fcntl

    from jupiter.targets import local_guard

    real = fcntl.fcntl

    def no_leases(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETLEASE:
            raise OSError(errno.EACCES, "leases not permitted")
        return real(fd, cmd, arg)

    monkeypatch.setattr(local_guard.fcntl, "fcntl", no_leases)
    monkeypatch.setattr(local_guard, "SETTLE_SECONDS", 1.0)
    content, error = _edit_through_descriptor_opened_before(root, "write")
    assert isinstance(error, ConflictError)
    assert content == b"a = 1\nadmin = yes\n"
