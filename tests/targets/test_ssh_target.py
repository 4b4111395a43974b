"""SSHTarget against a real SSH server (tests/sshserver.py) on 127.0.0.1.

The server's SFTP and exec work on this machine's filesystem, so every
assertion about the remote side is checked on the real files below tmp_path.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from tests.conftest import need_service

from jupiter.errors import InputError, PathEscapeError, TargetError
from jupiter.targets.base import Target
from jupiter.targets.ssh import SSHTarget

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshserver import (
    SSHTestServer,
    openssh_available,
    running_server,
    write_keypair,
    write_known_hosts,
)


@pytest.fixture(scope="module", params=["asyncssh", "openssh"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SSHTestServer]:
    """Every test runs against asyncssh's server and against the system's OpenSSH sshd."""
    if request.param == "openssh" and not openssh_available():
        need_service(False, "OpenSSH sshd is not installed or the tests do not run as root")
    with running_server(tmp_path_factory.mktemp(request.param), request.param) as srv:
        yield srv


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


def make_target(server: SSHTestServer, root: Path, **overrides: object) -> SSHTarget:
    options: dict[str, object] = {
        "client_keys": [server.client_key],
        "known_hosts": server.known_hosts,
        "connect_timeout": 5.0,
        "command_timeout": 5.0,
    }
    options.update(overrides)
    return SSHTarget(server.host, server.port, server.username, str(root), **options)  # type: ignore[arg-type]


@pytest.fixture
def target(server: SSHTestServer, layout: tuple[Path, Path]) -> Iterator[SSHTarget]:
    with make_target(server, layout[0]) as tgt:
        yield tgt


def tree(path: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry below ``path`` with mode and content, for 'nothing changed' checks."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = Path(full).read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(full, path)] = (st.st_mode, data)
    return out


# -- files -------------------------------------------------------------------


def test_implements_the_target_protocol(target: SSHTarget, server: SSHTestServer) -> None:
    assert isinstance(target, Target)
    assert target.describe().startswith(f"ssh:{server.username}@127.0.0.1:{server.port}/")


def test_round_trip_on_real_files(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    root, _ = layout
    assert target.read_bytes("etc/ssh/sshd_config") == b"PermitRootLogin yes\n"

    target.write_bytes("etc/ssh/sshd_config", b"PermitRootLogin no\n")
    assert (root / "etc/ssh/sshd_config").read_bytes() == b"PermitRootLogin no\n"

    target.write_bytes("new/deep/file.conf", b"x" * 100_000, mode=0o640)
    assert (root / "new/deep/file.conf").read_bytes() == b"x" * 100_000
    assert stat.S_IMODE((root / "new/deep/file.conf").stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "new/deep").stat().st_mode) == 0o755

    state = target.stat("new/deep/file.conf")
    assert state is not None
    assert (state.kind, state.size, state.mode) == ("file", 100_000, 0o640)
    assert (state.uid, state.gid) == (os.getuid(), os.getgid())
    assert target.stat("new").kind == "dir"  # type: ignore[union-attr]
    assert target.stat("nope") is None
    assert target.stat("etc/hosts/below-a-file") is None

    target.set_mode("etc/hosts", 0o600)
    assert stat.S_IMODE((root / "etc/hosts").stat().st_mode) == 0o600

    assert target.glob("etc/*") == ["etc/hosts", "etc/ssh"]
    assert target.walk() == ["etc/hosts", "etc/ssh/sshd_config", "new/deep/file.conf"]
    assert target.walk("etc") == ["etc/hosts", "etc/ssh/sshd_config"]

    target.remove("etc/hosts")
    assert not (root / "etc/hosts").exists()
    target.remove("etc/hosts")  # already absent: no error
    with pytest.raises(FileNotFoundError):
        target.read_bytes("etc/hosts")


def test_new_file_gets_0644(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    target.write_bytes("fresh", b"")
    assert stat.S_IMODE((layout[0] / "fresh").stat().st_mode) == 0o644
    assert (layout[0] / "fresh").read_bytes() == b""


def test_atomic_write_keeps_mode_and_leaves_no_temp_file(
    target: SSHTarget, layout: tuple[Path, Path]
) -> None:
    path = layout[0] / "etc/ssh/sshd_config"
    path.chmod(0o4751)
    inode = path.stat().st_ino
    target.write_bytes("etc/ssh/sshd_config", b"PermitRootLogin no\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o4751
    assert path.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["sshd_config"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_write_keeps_owner_and_set_owner_works(
    target: SSHTarget, layout: tuple[Path, Path]
) -> None:
    path = layout[0] / "etc/hosts"
    os.chown(path, 1234, 2345)
    target.write_bytes("etc/hosts", b"::1 localhost\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345)
    target.set_owner("etc/hosts", 4321, 5432)
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 5432)
    state = target.stat("etc/hosts")
    assert state is not None and (state.uid, state.gid) == (4321, 5432)


def test_unhappy_file_operations(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    with pytest.raises(FileNotFoundError):
        target.read_bytes("missing/file")
    with pytest.raises(FileNotFoundError):
        target.set_mode("missing", 0o600)
    with pytest.raises(TargetError, match="is a dir, not a regular file"):
        target.read_bytes("etc")
    with pytest.raises(TargetError, match="is a directory; remove only removes files"):
        target.remove("etc/ssh")
    with pytest.raises(TargetError, match="is a dir, not a regular file"):
        target.write_bytes("etc/ssh", b"x")
    with pytest.raises(TargetError, match="is not a directory"):
        target.write_bytes("etc/hosts/below", b"x")
    assert (layout[0] / "etc/ssh").is_dir()


def test_missing_root_is_reported(server: SSHTestServer, tmp_path: Path) -> None:
    with (
        make_target(server, tmp_path / "absent") as tgt,
        pytest.raises(TargetError, match=r"does not exist .* or is not a directory"),
    ):
        tgt.stat("x")


def test_constructor_refuses_bad_arguments() -> None:
    with pytest.raises(InputError, match="not a plain absolute path"):
        SSHTarget("web1", 22, "root", "srv/x")
    with pytest.raises(InputError, match="not a plain absolute path"):
        SSHTarget("web1", 22, "root", "/srv/../etc")
    with pytest.raises(InputError, match="must be positive"):
        SSHTarget("web1", 22, "root", "/", connect_timeout=0)
    with SSHTarget("web1", 22, "root", "/srv/") as tgt, pytest.raises(InputError):
        tgt.run(["true"], timeout=0)
    assert tgt.describe() == "ssh:root@web1:22/srv"


# -- path escapes ------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../outside/secret", "/etc/passwd", "etc/../../x", ""])
def test_lexical_escapes_are_refused(
    target: SSHTarget, layout: tuple[Path, Path], bad: str
) -> None:
    before = tree(layout[0].parent)
    with pytest.raises(PathEscapeError):
        target.write_bytes(bad, b"pwned")
    with pytest.raises(PathEscapeError):
        target.read_bytes(bad)
    assert tree(layout[0].parent) == before


def test_symlinks_leading_outside_are_refused(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "linkdir").symlink_to(outside)
    (root / "linkfile").symlink_to(outside / "secret")
    (root / "abs").symlink_to("/")
    before = tree(outside)
    for op in (
        lambda: target.write_bytes("linkdir/new", b"pwned"),
        lambda: target.write_bytes("linkdir/secret", b"pwned"),
        lambda: target.write_bytes("abs/tmp/pwned", b"pwned"),
        lambda: target.read_bytes("linkdir/secret"),
        lambda: target.read_bytes("linkfile"),
        lambda: target.write_bytes("linkfile", b"pwned"),
        lambda: target.set_mode("linkfile", 0o777),
        lambda: target.set_mode("linkdir/secret", 0o777),
        lambda: target.stat("linkdir/secret"),
        lambda: target.walk("linkdir"),
    ):
        with pytest.raises(PathEscapeError):
            op()
    assert tree(outside) == before
    assert not Path("/tmp/pwned").exists()
    # lstat semantics: the link itself may be looked at and removed
    assert target.stat("linkfile").kind == "symlink"  # type: ignore[union-attr]
    target.remove("linkfile")
    assert not (root / "linkfile").is_symlink()
    assert (outside / "secret").read_bytes() == b"top secret\n"


def test_dangling_symlink_out_of_the_root_is_refused(
    target: SSHTarget, layout: tuple[Path, Path]
) -> None:
    root, outside = layout
    (root / "dangle").symlink_to(outside / "not-yet")
    (root / "dangledir").symlink_to(outside / "no-dir")
    for op in (
        lambda: target.write_bytes("dangle", b"pwned"),
        lambda: target.write_bytes("dangledir/x", b"pwned"),
        lambda: target.read_bytes("dangle"),
        lambda: target.set_mode("dangle", 0o777),
    ):
        with pytest.raises(PathEscapeError):
            op()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_write_without_posix_rename_falls_back_to_plain_renames(
    target: SSHTarget, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unsupported(self: object, oldpath: object, newpath: object) -> None:
        raise asyncssh.SFTPOpUnsupported("posix-rename not supported")

    monkeypatch.setattr(asyncssh.SFTPClient, "posix_rename", unsupported)
    path = layout[0] / "etc/hosts"
    path.chmod(0o640)
    target.write_bytes("etc/hosts", b"::1 localhost\n")
    target.write_bytes("etc/brand-new", b"new\n")
    assert path.read_bytes() == b"::1 localhost\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert (layout[0] / "etc/brand-new").read_bytes() == b"new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["brand-new", "hosts", "ssh"]


def test_symlinks_inside_the_root(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "cfg").symlink_to("etc/ssh")
    (root / "hosts-link").symlink_to("etc/hosts")
    assert target.read_bytes("cfg/sshd_config") == b"PermitRootLogin yes\n"
    assert target.read_bytes("hosts-link") == b"127.0.0.1 localhost\n"
    target.write_bytes("cfg/new", b"via a linked directory\n")
    assert (root / "etc/ssh/new").read_bytes() == b"via a linked directory\n"
    with pytest.raises(TargetError, match="does not write through symlinks") as info:
        target.write_bytes("hosts-link", b"x")
    assert not isinstance(info.value, PathEscapeError)
    assert (root / "hosts-link").is_symlink()
    assert (root / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"


def test_glob_matches_per_segment(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "etc/ssh/sshd_config.d").mkdir()
    (root / "etc/ssh/sshd_config.d/10-a.conf").write_text("a")
    (root / "etc/ssh/sshd_config.d/.hidden.conf").write_text("h")
    (root / "etc/ssh/sshd_config.d/20-b.txt").write_text("b")
    (root / "out").symlink_to(outside)
    (root / "in").symlink_to("etc")
    assert target.glob("etc/ssh/sshd_config.d/*.conf") == [
        "etc/ssh/sshd_config.d/.hidden.conf",
        "etc/ssh/sshd_config.d/10-a.conf",
    ]
    assert target.glob("etc/ssh/sshd_config.d/[12]0-?.*") == [
        "etc/ssh/sshd_config.d/10-a.conf",
        "etc/ssh/sshd_config.d/20-b.txt",
    ]
    assert target.glob("*/hosts") == ["etc/hosts", "in/hosts"]  # not out/…
    assert target.glob("*/secret") == []
    assert target.glob("etc/ssh/sshd_config") == ["etc/ssh/sshd_config"]
    assert target.glob("nothing/*") == []
    with pytest.raises(PathEscapeError):
        target.glob("../*")


def test_walk_lists_regular_files_only(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "out").symlink_to(outside)
    (root / "hosts-link").symlink_to("etc/hosts")
    (root / "empty").mkdir()
    os.mkfifo(root / "fifo")
    assert target.walk() == ["etc/hosts", "etc/ssh/sshd_config"]
    assert target.walk("etc/ssh") == ["etc/ssh/sshd_config"]
    assert target.walk("missing") == []
    assert target.walk("etc/hosts") == []


# -- commands ----------------------------------------------------------------


def test_run_returns_output_and_exit_codes(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    ok = target.run(["cat", "etc/hosts"], timeout=10)
    assert ok.ok and ok.stdout == "127.0.0.1 localhost\n" and ok.stderr == ""
    assert ok.argv == ("cat", "etc/hosts")
    failed = target.run(["sh", "-c", "pwd; echo err >&2; exit 3"], timeout=10)
    assert (failed.returncode, failed.stdout, failed.stderr, failed.ok) == (
        3,
        os.path.realpath(layout[0]) + "\n",
        "err\n",
        False,
    )
    env = target.run(["env"], timeout=10)
    assert sorted(line.split("=")[0] for line in env.stdout.splitlines()) == ["LANG", "PATH"]
    missing = target.run(["no-such-program-xyz"], timeout=10)
    assert missing.returncode == 127


def test_run_quotes_hostile_arguments(target: SSHTarget, layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "x").write_text("keep me")
    hostile = ["; rm -rf x", "$(id)", "`id`", "a b", "'", '"', "\\", "*", "$HOME", "\n;touch y"]
    result = target.run(["printf", "%s|", *hostile], timeout=10)
    assert result.ok, result.stderr
    assert result.stdout == "|".join(hostile) + "|"
    assert (root / "x").read_text() == "keep me"
    assert not (root / "y").exists()
    with pytest.raises(InputError):
        target.run([], timeout=10)
    with pytest.raises(InputError):
        target.run(["A=B", "sh"], timeout=10)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by PID 1 whenever it gets to it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_run_timeout_closes_the_channel_and_ends_the_command(
    target: SSHTarget, layout: tuple[Path, Path]
) -> None:
    pidfile = layout[0] / "pid"
    started = time.monotonic()
    result = target.run(["sh", "-c", "echo $$ > pid; echo started; exec sleep 30"], timeout=1.0)
    # OpenSSH (root login) ignores the kill request; the remote `timeout` backstop
    # ends the command at 2 s and only then does the server close the channel.
    assert time.monotonic() - started < 4.5
    assert result.timed_out and not result.ok
    assert result.stdout == "started\n"
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _running(pid):
        if time.monotonic() > deadline:
            pytest.fail(f"remote command {pid} still runs after the timeout")
        time.sleep(0.02)
    assert target.run(["true"], timeout=10).ok  # the connection survives


# -- connection --------------------------------------------------------------


def test_one_connection_is_reused(server: SSHTestServer, layout: tuple[Path, Path]) -> None:
    before = server.connection_count()
    tgt = make_target(server, layout[0])
    assert server.connection_count() == before  # lazily opened
    results: list[bytes] = []
    with tgt:
        for i in range(10):
            tgt.write_bytes(f"f{i}", b"%d" % i)
            results.append(tgt.read_bytes(f"f{i}"))
            tgt.stat(f"f{i}")
        tgt.glob("*")
        tgt.walk()
        tgt.run(["true"], timeout=10)
        threads = [
            threading.Thread(target=lambda: results.append(tgt.read_bytes("etc/hosts")))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 18
    assert server.connection_count() == before + 1
    assert not [t for t in threading.enumerate() if t.name.startswith("jupiter-ssh")]


def test_close_is_final_and_idempotent(server: SSHTestServer, layout: tuple[Path, Path]) -> None:
    tgt = make_target(server, layout[0])
    tgt.stat("etc")
    tgt.close()
    tgt.close()
    with pytest.raises(TargetError, match="is closed"):
        tgt.stat("etc")
    never_used = make_target(server, layout[0])
    never_used.close()


def test_from_connection_string(server: SSHTestServer, layout: tuple[Path, Path]) -> None:
    spec = f"ssh:{server.username}@127.0.0.1:{server.port}{layout[0]}"
    with SSHTarget.from_connection(
        spec, client_keys=[server.client_key], known_hosts=server.known_hosts
    ) as tgt:
        assert tgt.describe() == spec
        assert tgt.read_bytes("etc/hosts") == b"127.0.0.1 localhost\n"
    with pytest.raises(InputError, match="is local, not SSH"):
        SSHTarget.from_connection("local:/srv")
    with pytest.raises(InputError):
        SSHTarget.from_connection("ssh:nobody")


def test_unknown_host_key_is_refused(
    server: SSHTestServer, layout: tuple[Path, Path], tmp_path: Path
) -> None:
    other = write_keypair(tmp_path / "keys" / "other_host")
    wrong = write_known_hosts(
        tmp_path / "wrong_known_hosts", "127.0.0.1", server.port, Path(f"{other}.pub")
    )
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    for known in (wrong, empty):
        with make_target(server, layout[0], known_hosts=known) as tgt:
            with pytest.raises(TargetError, match="ssh-keyscan -p") as info:
                tgt.write_bytes("pwned", b"x")
            assert str(known) in str(info.value)
    with (
        make_target(server, layout[0], known_hosts=tmp_path / "absent") as tgt,
        pytest.raises(TargetError, match=r"does not exist.*ssh-keyscan"),
    ):
        tgt.stat("etc")
    assert not (layout[0] / "pwned").exists()


def test_wrong_client_key_is_refused(
    server: SSHTestServer, layout: tuple[Path, Path], tmp_path: Path
) -> None:
    stranger = write_keypair(tmp_path / "stranger")
    with (
        make_target(server, layout[0], client_keys=[stranger]) as tgt,
        pytest.raises(TargetError, match="refused the SSH login") as info,
    ):
        tgt.stat("etc")
    assert str(stranger) in str(info.value)
    with (
        make_target(server, layout[0], client_keys=[tmp_path / "no-key"]) as tgt,
        pytest.raises(TargetError, match="does not exist"),
    ):
        tgt.stat("etc")


@pytest.fixture
def client_files(tmp_path: Path) -> tuple[Path, Path]:
    """A client key and a known_hosts file, for tests that need no server."""
    key = write_keypair(tmp_path / "keys" / "client")
    known = write_known_hosts(tmp_path / "known_hosts", "127.0.0.1", 22, Path(f"{key}.pub"))
    return key, known


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_fails_fast(client_files: tuple[Path, Path], tmp_path: Path) -> None:
    key, known = client_files
    tgt = SSHTarget(
        "127.0.0.1", _free_port(), "nobody", str(tmp_path), client_keys=[key], known_hosts=known
    )
    started = time.monotonic()
    with tgt, pytest.raises(TargetError, match="refused the connection on port"):
        tgt.stat("etc")
    assert time.monotonic() - started < 2


def test_silent_host_times_out_on_connect(client_files: tuple[Path, Path], tmp_path: Path) -> None:
    key, known = client_files
    with socket.socket() as listener:  # accepts TCP (backlog) but never speaks SSH
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        tgt = SSHTarget(
            "127.0.0.1",
            port,
            "nobody",
            str(tmp_path),
            client_keys=[key],
            known_hosts=known,
            connect_timeout=0.3,
        )
        started = time.monotonic()
        with tgt, pytest.raises(TargetError, match=r"did not answer within 0\.3 s"):
            tgt.stat("etc")
        assert time.monotonic() - started < 2


def test_operation_timeout_then_reconnect(server: SSHTestServer, layout: tuple[Path, Path]) -> None:
    if server.kind != "asyncssh":
        pytest.skip("freezing the server needs the single-process asyncssh server")
    hosts = layout[0] / "etc/hosts"
    with make_target(server, layout[0], command_timeout=0.4) as tgt:
        for what, operation in (
            ("reading", lambda: tgt.read_bytes("etc/hosts")),
            ("writing", lambda: tgt.write_bytes("etc/hosts", b"lost\n")),
        ):
            assert tgt.stat("etc") is not None  # (re)connects while the server answers
            count = server.connection_count()
            server.pause()
            try:
                started = time.monotonic()
                expected = rf"did not answer within 0\.4 s while {what}"
                with pytest.raises(TargetError, match=expected):
                    operation()
                assert time.monotonic() - started < 2
            finally:
                server.resume()
            assert tgt.read_bytes("etc/hosts") == b"127.0.0.1 localhost\n"
            assert server.connection_count() == count + 1  # dropped, then one new connection
    assert hosts.read_bytes() == b"127.0.0.1 localhost\n"
