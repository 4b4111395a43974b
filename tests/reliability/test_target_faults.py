"""Target faults: the target root removed mid-run, a full disk, a read-only
filesystem (permission denied), an SSH connection cut mid-transfer, hard
links over SSH. Each ends as one clear error or a failed/rolled back step,
with the target's files as they were and no temp file left behind (after
recovery where a process could not clean up itself)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import HardLinkRefused, JupiterError, TargetError
from jupiter.scratch import sweep_target_temps
from jupiter.targets.local import LocalTarget
from jupiter.targets.ssh import SSHTarget
from tests.conftest import ROOT, need_service
from tests.reliability.counts import count

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshserver import SSHTestServer, openssh_available, running_server


def tree_state(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def temps(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if ".jupiter-" in p.name)


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    """A small tmpfs the test mounts (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; this fault cannot be made otherwise")
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join((f"size={size}", *options))
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_root_removed_mid_run(engine: Engine, tmp_path: Path) -> None:
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    gone = tmp_path / "moved-away"

    def remove_root(preview: list[dict[str, object]]) -> bool:
        if host.exists():
            host.rename(gone)  # between the review and the first step
        return True

    try:
        result = engine.fix(str(host), only=["config.ssh"], confirm=remove_root)
    except JupiterError as exc:
        assert "disappeared" in str(exc) or "does not exist" in str(exc), exc
    else:
        changed = [s for s in result["steps"] if s["status"] == "verified"]
        assert changed == [], "nothing can be fixed on a root that is gone"
        assert any("disappeared" in str(s["detail"]) for s in result["steps"]), result["steps"]
    count("faults injected")
    assert tree_state(gone) == tree_state(ROOT / "examples/host")
    assert temps(gone) == []
    assert engine.audit_verify().ok


def test_disk_full_on_write_leaves_the_file_and_no_temp(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as mnt:
        root = mnt / "root"
        root.mkdir()
        (root / "app.conf").write_bytes(b"a = 1\n")
        target = LocalTarget(root)
        with pytest.raises(OSError) as info:
            target.write_bytes("app.conf", b"x" * 200_000)
        assert info.value.errno == errno.ENOSPC
        count("faults injected")
        assert (root / "app.conf").read_bytes() == b"a = 1\n"
        assert temps(root) == []


def test_disk_full_during_a_fix_rolls_back(engine: Engine, tmp_path: Path) -> None:
    """The fix's write fails for lack of space: the step fails, the file is
    as it was, the run's record and the audit chain are intact."""
    with tmpfs(tmp_path / "small", "96k") as mnt:
        host = mnt / "host"
        shutil.copytree(ROOT / "examples/host", host, symlinks=True)
        original = tree_state(host)
        filler = mnt / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        result = engine.fix(str(host), only=["config.ssh"])
        count("faults injected")
        statuses = {s["status"] for s in result["steps"]}
        assert "verified" not in statuses, result["steps"]
        assert tree_state(host) == original
        assert temps(host) == []
        assert engine.audit_verify().ok


def test_read_only_filesystem_is_one_clear_failure(engine: Engine, tmp_path: Path) -> None:
    """Permission denied by the filesystem (as root, DAC does not stop us:
    a read-only mount does)."""
    with tmpfs(tmp_path / "ro", "1m") as mnt:
        host = mnt / "host"
        shutil.copytree(ROOT / "examples/host", host, symlinks=True)
        original = tree_state(host)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        result = engine.fix(str(host), only=["config.ssh"])
        count("faults injected")
        assert "verified" not in {s["status"] for s in result["steps"]}
        assert any("Read-only" in str(s["detail"]) for s in result["steps"]), result["steps"]
        assert tree_state(host) == original
        assert engine.audit_verify().ok


@pytest.fixture(scope="module", params=["asyncssh", "openssh"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SSHTestServer]:
    if request.param == "openssh" and not openssh_available():
        need_service(False, "OpenSSH sshd is not installed or the tests do not run as root")
    with running_server(tmp_path_factory.mktemp(request.param), request.param) as srv:
        yield srv


def connect(server: SSHTestServer, root: Path) -> SSHTarget:
    return SSHTarget(
        server.host,
        server.port,
        server.username,
        str(root),
        client_keys=[server.client_key],
        known_hosts=server.known_hosts,
        connect_timeout=5.0,
        command_timeout=5.0,
    )


def test_ssh_target_refuses_hard_linked_files(server: SSHTestServer, tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "shadow").write_bytes(b"root:*:1::::::\n")
    (root / "shadow").chmod(0o644)
    os.link(root / "shadow", tmp_path / "etc-shadow")
    target = connect(server, root)
    try:
        for attempt in (
            lambda: target.set_mode("shadow", 0o666),
            lambda: target.set_owner("shadow", os.getuid(), os.getgid()),
            lambda: target.write_bytes("shadow", b"pwned\n"),
        ):
            with pytest.raises(HardLinkRefused, match="2 hard links"):
                attempt()
            count("faults injected")
        # A file with one name is changed as usual.
        (tmp_path / "etc-shadow").unlink()
        target.set_mode("shadow", 0o600)
        target.write_bytes("shadow", b"new\n")
    finally:
        target.close()
    assert (root / "shadow").read_bytes() == b"new\n"


def test_ssh_connection_cut_mid_transfer(tmp_path: Path) -> None:
    """The server dies while a large file is being sent: one TargetError, the
    file keeps its old content; the temp file the dead transfer left is
    removed by recovery's sweep."""
    root = tmp_path / "r"
    root.mkdir()
    (root / "big.bin").write_bytes(b"old\n")
    with running_server(tmp_path / "srv", "asyncssh") as srv:
        target = connect(srv, root)
        errors: list[BaseException] = []

        def write() -> None:
            try:
                target.write_bytes("big.bin", os.urandom(64 << 20))
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        worker = threading.Thread(target=write)
        worker.start()
        deadline = time.monotonic() + 20
        while not temps(root) and time.monotonic() < deadline:
            time.sleep(0.005)
        srv.stop()
        worker.join(60)
        target.close()
    count("faults injected")
    assert len(errors) == 1 and isinstance(errors[0], TargetError), errors
    assert (root / "big.bin").read_bytes() == b"old\n"
    left = temps(root)
    removed = sweep_target_temps(LocalTarget(root), ["big.bin"])
    assert len(removed) == len(left)
    assert temps(root) == []
