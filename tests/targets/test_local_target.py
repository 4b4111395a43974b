"""LocalTarget: protocol behaviour, hostile paths, atomic writes, commands."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from jupiter.errors import InputError, PathEscapeError, TargetError
from jupiter.targets.base import Target, TargetView
from jupiter.targets.local import LocalTarget


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A root with some content and a sibling 'outside' directory."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "etc" / "ssh").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_bytes(b"top secret\n")
    (root / "etc" / "ssh" / "sshd_config").write_bytes(b"PermitRootLogin yes\n")
    (root / "etc" / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    return root, outside


def snapshot_dir(path: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry below ``path`` with its mode and content (for 'untouched' checks)."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = Path(full).read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(full, path)] = (st.st_mode, data)
    return out


def test_implements_protocols_and_describes_itself(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    target = LocalTarget(root)
    assert isinstance(target, Target)
    assert isinstance(target, TargetView)
    assert target.describe() == f"local:{root.resolve()}"


def test_missing_root_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"target root .*nope does not exist; "):
        LocalTarget(tmp_path / "nope")


def test_read_stat_glob_walk(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "etc" / "ssh" / "sshd_config").chmod(0o4755)
    (root / "etc" / ".hidden").write_bytes(b"")
    os.symlink("hosts", root / "etc" / "hosts-link")
    target = LocalTarget(root)
    assert target.read_bytes("etc/ssh/sshd_config") == b"PermitRootLogin yes\n"
    assert target.read_bytes("./etc//hosts-link") == b"127.0.0.1 localhost\n"
    st = target.stat("etc/ssh/sshd_config")
    assert st is not None
    assert (st.kind, st.size, st.mode) == ("file", 20, 0o4755)
    assert st.uid == os.getuid()
    link = target.stat("etc/hosts-link")
    assert link is not None and link.kind == "symlink"
    dir_state = target.stat("etc")
    assert dir_state is not None and dir_state.kind == "dir"
    assert target.stat("etc/missing") is None
    assert target.stat("etc/hosts/below-a-file") is None
    assert target.glob("etc/*") == ["etc/.hidden", "etc/hosts", "etc/hosts-link", "etc/ssh"]
    assert target.glob("*/ssh/sshd_*") == ["etc/ssh/sshd_config"]
    assert target.glob("nothing/*") == []
    assert target.walk() == ["etc/.hidden", "etc/hosts", "etc/ssh/sshd_config"]
    assert target.walk("etc/ssh") == ["etc/ssh/sshd_config"]
    assert target.walk("absent") == []
    with pytest.raises(FileNotFoundError):
        target.read_bytes("etc/absent")
    os.mkfifo(root / "etc" / "fifo")
    with pytest.raises(TargetError, match="is a special file, not a regular file"):
        target.read_bytes("etc/fifo")  # must not block waiting for a writer
    fifo = target.stat("etc/fifo")
    assert fifo is not None and fifo.kind == "other"
    with pytest.raises(TargetError, match="is a directory, not a regular file"):
        target.read_bytes("etc/ssh")


@pytest.mark.parametrize(
    "bad",
    ["../x", "/etc/passwd", "a/../../x", "etc/../../outside/secret", "a\x00b", "", "."],
)
def test_hostile_relative_paths_are_refused(layout: tuple[Path, Path], bad: str) -> None:
    root, _ = layout
    target = LocalTarget(root)
    before = snapshot_dir(root.parent)
    for op in (
        lambda: target.write_bytes(bad, b"pwned"),
        lambda: target.read_bytes(bad),
        lambda: target.stat(bad),
        lambda: target.remove(bad),
        lambda: target.set_mode(bad, 0o777),
        lambda: target.set_owner(bad, 0, 0),
    ):
        with pytest.raises(PathEscapeError):
            op()
    assert snapshot_dir(root.parent) == before


def test_symlinked_directory_leading_outside_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    os.symlink(outside, root / "escape")
    os.symlink("../../outside", root / "etc" / "rel-escape")
    target = LocalTarget(root)
    before = snapshot_dir(outside)
    for path in ("escape/secret", "escape/new", "etc/rel-escape/new", "escape/sub/dir/new"):
        with pytest.raises(PathEscapeError, match="outside the target root"):
            target.write_bytes(path, b"pwned")
        with pytest.raises(PathEscapeError):
            target.read_bytes(path)
        with pytest.raises(PathEscapeError):
            target.stat(path)
        with pytest.raises(PathEscapeError):
            target.remove(path)
        with pytest.raises(PathEscapeError):
            target.set_mode(path, 0o777)
    assert snapshot_dir(outside) == before
    assert target.walk() == ["etc/hosts", "etc/ssh/sshd_config"]
    assert "escape" in target.glob("*")
    assert target.glob("escape/*") == []


def test_symlinked_file_leading_outside_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    os.symlink(outside / "secret", root / "etc" / "shadow")
    target = LocalTarget(root)
    with pytest.raises(PathEscapeError, match="outside the target root"):
        target.read_bytes("etc/shadow")
    with pytest.raises(PathEscapeError):
        target.write_bytes("etc/shadow", b"pwned")
    with pytest.raises(PathEscapeError):
        target.set_mode("etc/shadow", 0o777)
    with pytest.raises(PathEscapeError):
        target.set_owner("etc/shadow", 0, 0)
    assert (outside / "secret").read_bytes() == b"top secret\n"
    assert stat.S_IMODE((outside / "secret").stat().st_mode) != 0o777
    # lstat semantics: the link itself is described, not what it points to.
    st = target.stat("etc/shadow")
    assert st is not None and st.kind == "symlink"
    # remove deletes the link, never the file outside.
    target.remove("etc/shadow")
    assert not (root / "etc" / "shadow").is_symlink()
    assert (outside / "secret").read_bytes() == b"top secret\n"


def test_inside_symlinks_are_read_but_never_written_through(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    os.symlink("ssh", root / "etc" / "ssh-alias")
    os.symlink("hosts", root / "etc" / "hosts-link")
    target = LocalTarget(root)
    assert target.read_bytes("etc/ssh-alias/sshd_config") == b"PermitRootLogin yes\n"
    # A symlinked *directory* inside the root is fine for writes.
    target.write_bytes("etc/ssh-alias/new", b"x")
    assert (root / "etc" / "ssh" / "new").read_bytes() == b"x"
    # A symlinked *final component* is refused, even inside the root.
    with pytest.raises(TargetError, match="does not write through symlinks") as info:
        target.write_bytes("etc/hosts-link", b"changed")
    assert not isinstance(info.value, PathEscapeError)
    with pytest.raises(TargetError, match="does not write through symlinks"):
        target.set_mode("etc/hosts-link", 0o600)
    assert (root / "etc" / "hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert (root / "etc" / "hosts-link").is_symlink()


def test_atomic_write_keeps_mode_and_owner(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    cfg = root / "etc" / "ssh" / "sshd_config"
    cfg.chmod(0o2640)
    can_chown = os.geteuid() == 0
    if can_chown:
        os.chown(cfg, 1234, 4321)
    inode_before = cfg.stat().st_ino
    target = LocalTarget(root)
    target.write_bytes("etc/ssh/sshd_config", b"PermitRootLogin no\n")
    st = cfg.stat()
    assert cfg.read_bytes() == b"PermitRootLogin no\n"
    assert stat.S_IMODE(st.st_mode) == 0o2640
    if can_chown:
        assert (st.st_uid, st.st_gid) == (1234, 4321)
    # Replaced by rename, not rewritten in place; no temp file left behind.
    assert st.st_ino != inode_before
    assert sorted(os.listdir(cfg.parent)) == ["sshd_config"]
    target.write_bytes("etc/ssh/sshd_config", b"x", mode=0o600)
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600


def test_write_creates_parents_and_new_files_get_default_modes(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    target = LocalTarget(root)
    target.write_bytes("new/deep/dir/file.conf", b"")
    assert (root / "new" / "deep" / "dir" / "file.conf").read_bytes() == b""
    assert stat.S_IMODE((root / "new" / "deep" / "dir" / "file.conf").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "new" / "deep").stat().st_mode) == 0o755
    target.write_bytes("new/exec.sh", b"#!/bin/sh\n", mode=0o4750)
    assert stat.S_IMODE((root / "new" / "exec.sh").stat().st_mode) == 0o4750
    with pytest.raises(TargetError, match="is a file, not a directory"):
        target.write_bytes("etc/hosts/below", b"x")
    with pytest.raises(TargetError, match="is a directory, not a regular file"):
        target.write_bytes("etc/ssh", b"x")


def test_streaming_write_and_read(layout: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = layout
    src = tmp_path / "big.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(payload)
    target = LocalTarget(root)
    with src.open("rb") as fh:
        target.write_stream("var/big.bin", fh)
    with target.open_read("var/big.bin") as fh:
        assert fh.read() == payload


def test_set_mode_set_owner_remove(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    target = LocalTarget(root)
    target.set_mode("etc/hosts", 0o1600)
    assert stat.S_IMODE((root / "etc" / "hosts").stat().st_mode) == 0o1600
    target.set_mode("etc/ssh", 0o700)
    assert stat.S_IMODE((root / "etc" / "ssh").stat().st_mode) == 0o700
    if os.geteuid() == 0:
        target.set_owner("etc/hosts", 42, 43)
        st = (root / "etc" / "hosts").stat()
        assert (st.st_uid, st.st_gid) == (42, 43)
    with pytest.raises(FileNotFoundError):
        target.set_mode("etc/absent", 0o600)
    target.remove("etc/hosts")
    assert not (root / "etc" / "hosts").exists()
    target.remove("etc/hosts")  # already absent: no error
    target.remove("nowhere/at/all")
    with pytest.raises(TargetError, match="is a directory that is not empty"):
        target.remove("etc/ssh")
    (root / "empty").mkdir()
    target.remove("empty")
    assert not (root / "empty").exists()


def test_run_uses_root_and_a_scrubbed_environment(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = layout
    monkeypatch.setenv("JUPITER_SECRET_TOKEN", "hunter2")
    target = LocalTarget(root)
    result = target.run(["sh", "-c", 'pwd; env; echo "$1" >&2; exit 3', "sh", "a b; c"], 10)
    assert not result.ok
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert lines[0] == str(root.resolve())
    env_names = {line.split("=", 1)[0] for line in lines[1:]}
    assert "JUPITER_SECRET_TOKEN" not in result.stdout
    assert {"PATH", "LANG"} <= env_names
    assert "LANG=C.UTF-8" in lines
    assert result.stderr == "a b; c\n"  # an argument, never parsed by a shell
    assert target.run(["true"], 10).ok
    missing = target.run(["jupiter-no-such-program"], 10)
    assert missing.returncode == 127 and not missing.ok
    with pytest.raises(InputError):
        target.run([], 10)


def test_run_timeout_kills_the_process_group(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    target = LocalTarget(root)
    started = time.monotonic()
    # The grandchild 'sleep' keeps stdout open: only a group kill ends it.
    result = target.run(["sh", "-c", "sleep 30 & echo $! > pid; sleep 30"], timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert elapsed < 10
    grandchild = int((root / "pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # A killed child of an orphaned group may linger as a zombie briefly.
        status = Path(f"/proc/{grandchild}/stat")
        if status.exists() and status.read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the grandchild survived the timeout kill")


def test_closed_target_refuses_work(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    target = LocalTarget(root)
    target.close()
    with pytest.raises(TargetError, match="is closed"):
        target.read_bytes("etc/hosts")


def test_a_directory_swapped_for_a_symlink_after_the_check_is_not_followed(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate the race: the symlink check has passed (here: skipped), then
    'escape' points outside. The descriptor walk with O_NOFOLLOW must refuse."""
    root, outside = layout
    os.symlink(outside, root / "escape")
    target = LocalTarget(root)
    monkeypatch.setattr(LocalTarget, "_resolve", lambda self, rel, follow_final: rel)
    before = snapshot_dir(outside)
    for op in (
        lambda: target.write_bytes("escape/new", b"pwned"),
        lambda: target.write_bytes("escape/secret", b"pwned"),
        lambda: target.set_mode("escape/secret", 0o777),
        lambda: target.remove("escape/secret"),
        lambda: target.read_bytes("escape/secret"),
    ):
        with pytest.raises(TargetError, match="turned into a symlink"):
            op()
    assert snapshot_dir(outside) == before
