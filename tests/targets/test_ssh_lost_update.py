"""The lost-update contract and the target lock over SSH, against asyncssh's
server and the system's OpenSSH (tests/sshserver.py); the remote side is
this machine's filesystem, so every check looks at the real files."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ROOT, need_service

from jupiter.errors import ConflictError
from jupiter.targets import _ssh_guard
from jupiter.targets.base import Expected
from jupiter.targets.local_lock import flock_dir
from jupiter.targets.ssh import SSHTarget

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshserver import SSHTestServer, openssh_available, running_server


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module", params=["asyncssh", "openssh"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SSHTestServer]:
    if request.param == "openssh" and not openssh_available():
        need_service(False, "OpenSSH sshd is not installed or the tests do not run as root")
    with running_server(tmp_path_factory.mktemp(request.param), request.param) as srv:
        yield srv


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "r" / "etc").mkdir(parents=True)
    (tmp_path / "r" / "etc" / "app.conf").write_bytes(b"a = 1\n")
    return tmp_path / "r"


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


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if ".jupiter-" in p.name)


def test_expectations_over_sftp(server: SSHTestServer, root: Path) -> None:
    conf = root / "etc/app.conf"
    with connect(server, root) as target:
        target.write_bytes("etc/app.conf", b"a = 2\n", expect=Expected(sha(b"a = 1\n")))
        assert conf.read_bytes() == b"a = 2\n"
        conf.write_bytes(b"a = 2\nadmin = yes\n")
        with pytest.raises(ConflictError, match="changed after it was planned"):
            target.write_bytes("etc/app.conf", b"a = 3\n", expect=Expected(sha(b"a = 2\n")))
        assert conf.read_bytes() == b"a = 2\nadmin = yes\n"
        with pytest.raises(ConflictError, match="changed after it was planned"):
            target.remove("etc/app.conf", expect=Expected(sha(b"a = 2\n")))
        assert conf.exists()
        (root / "etc/new.conf").write_bytes(b"theirs\n")
        with pytest.raises(ConflictError, match="created by someone else"):
            target.write_bytes("etc/new.conf", b"ours\n", expect=Expected(None))
        assert (root / "etc/new.conf").read_bytes() == b"theirs\n"
        target.remove("etc/new.conf", expect=Expected(sha(b"theirs\n")))
        target.write_bytes("etc/new.conf", b"ours\n", expect=Expected(None))
        assert (root / "etc/new.conf").read_bytes() == b"ours\n"
    assert leftovers(root) == []


def test_an_edit_landing_on_the_replaced_file_is_put_back(
    server: SSHTestServer, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that opened the file before the rename writes after it: the
    re-read through the kept SFTP handle sees it and puts it back."""
    monkeypatch.setattr(_ssh_guard, "SETTLE_SECONDS", 1.0)  # a wide window to land in
    conf = root / "etc/app.conf"
    writer = os.open(conf, os.O_WRONLY | os.O_APPEND)
    original = os.fstat(writer).st_ino
    errors: list[Exception] = []
    with connect(server, root) as target:

        def jupiter() -> None:
            try:
                target.write_bytes("etc/app.conf", b"a = 2\n", expect=Expected(sha(b"a = 1\n")))
            except Exception as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)

        thread = threading.Thread(target=jupiter)
        thread.start()
        deadline = time.monotonic() + 10
        while conf.stat().st_ino == original and time.monotonic() < deadline:
            time.sleep(0.002)
        os.write(writer, b"admin = yes\n")
        os.close(writer)
        thread.join(20)
    assert len(errors) == 1 and isinstance(errors[0], ConflictError), errors
    assert "their version was put back" in str(errors[0])
    assert conf.read_bytes() == b"a = 1\nadmin = yes\n"
    assert leftovers(root) == []


def test_the_remote_flock_excludes_local_and_remote_holders(
    server: SSHTestServer, root: Path
) -> None:
    with connect(server, root) as first, connect(server, root) as second:
        held = first.acquire_lock(0)
        assert held is not None and held.alive()
        assert flock_dir(root, 0) is None, "a local run must see the remote holder"
        assert second.acquire_lock(0) is None
        timer = threading.Timer(0.5, held.release)
        timer.start()
        started = time.monotonic()
        waited = second.acquire_lock(10)
        timer.join()
        assert waited is not None and time.monotonic() - started >= 0.4
        local = flock_dir(root, 0)
        assert local is None
        waited.release()
        local = flock_dir(root, 0)
        assert local is not None
        assert first.acquire_lock(0) is None, "and a remote run sees the local holder"
        local.release()
        again = first.acquire_lock(0)
        assert again is not None
    # Closing the connection ends the remote command, and with it the lock.
    deadline = time.monotonic() + 10
    while (free := flock_dir(root, 0)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert free is not None
    free.release()


def test_a_writer_appending_during_fix_over_ssh_loses_no_line(
    sqlite_engine: object, server: SSHTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.concurrency import Appender

    from jupiter.engine import Engine

    assert isinstance(sqlite_engine, Engine)
    remote = tmp_path / "remote-root"
    shutil.copytree(ROOT / "examples/host", remote)
    monkeypatch.setenv("JUPITER_SSH_KEY", str(server.client_key))
    monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(server.known_hosts))
    target = f"ssh:{server.username}@{server.host}:{server.port}{remote}"
    with Appender(remote / "etc/ssh/sshd_config", 0.003) as appender:
        result = sqlite_engine.fix(target, asset="remote", only=["config.ssh"])
    assert appender.count > 0 and appender.missing() == []
    statuses = {s["status"] for s in result["steps"]}
    assert statuses <= {"verified", "conflict", "needs_manual", "already_fixed"}


@pytest.mark.soak
@pytest.mark.parametrize("trial", range(4))
def test_soak_appending_during_fix_over_ssh(
    sqlite_engine: object,
    server: SSHTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trial: int,
) -> None:
    test_a_writer_appending_during_fix_over_ssh_loses_no_line(
        sqlite_engine, server, tmp_path, monkeypatch
    )


def test_a_host_without_flock_is_a_clear_error(
    server: SSHTestServer, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupiter.errors import TargetError
    from jupiter.targets import _ssh_lock

    real = _ssh_lock.lock_argv
    # As on a host where flock is not installed: the command is not found.
    monkeypatch.setattr(
        _ssh_lock, "lock_argv", lambda timeout: ["jupiter-no-such-flock", *real(timeout)[1:]]
    )
    with connect(server, root) as target, pytest.raises(TargetError, match="has no flock"):
        target.acquire_lock(0)


def test_a_fix_over_ssh_is_refused_while_the_host_is_locked(
    sqlite_engine: object, server: SSHTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another workspace (here: a run on the host itself) holds the target."""
    from jupiter.engine import Engine
    from jupiter.locks import LockBusy

    assert isinstance(sqlite_engine, Engine)
    remote = tmp_path / "remote-root"
    shutil.copytree(ROOT / "examples/host", remote)
    monkeypatch.setenv("JUPITER_SSH_KEY", str(server.client_key))
    monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(server.known_hosts))
    target = f"ssh:{server.username}@{server.host}:{server.port}{remote}"
    before = (remote / "etc/ssh/sshd_config").read_bytes()
    held = flock_dir(remote, 0)
    assert held is not None
    try:
        with pytest.raises(LockBusy, match="locked on the target itself"):
            sqlite_engine.fix(target, asset="remote", only=["config.ssh"])
    finally:
        held.release()
    assert (remote / "etc/ssh/sshd_config").read_bytes() == before
    result = sqlite_engine.fix(target, asset="remote", only=["config.ssh"])
    assert result["status"] == "succeeded"
