"""A real SSH server (SFTP + exec) on 127.0.0.1 for tests, in its own process.

The server is asyncssh in a child Python process bound to a random loopback
port. Its SFTP subsystem and its exec requests work on this machine's real
filesystem, so a test hands an ``SSHTarget`` a temporary directory as root and
checks the real files. Authentication is by key only. Running it as a
separate process keeps its event loop, its child processes and any warnings
away from the test process (pytest runs with ``filterwarnings = error``).

Use from a test::

    with running_server(tmp_path / "ssh") as server:
        target = SSHTarget(server.host, server.port, server.username, str(root),
                           client_keys=[server.client_key], known_hosts=server.known_hosts)

``server.connection_count()`` says how many SSH connections the server has
accepted so far; ``pause()``/``resume()`` freeze the server (SIGSTOP/SIGCONT)
to provoke client timeouts. Start-up costs about half a second (a Python
interpreter importing asyncssh), so share one server per module.

Run as a script (``python sshserver.py --help``) it is the server itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

_STARTUP_TIMEOUT = 15.0


def write_keypair(path: Path) -> Path:
    """Write a new ed25519 private key to ``path`` and its public key to ``path.pub``."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return path


def write_known_hosts(path: Path, host: str, port: int, host_public_key: Path) -> Path:
    """Write a known_hosts file trusting ``host_public_key`` for ``host:port``."""
    name = host if port == 22 else f"[{host}]:{port}"
    key_line = host_public_key.read_text().split()
    path.write_text(f"{name} {key_line[0]} {key_line[1]}\n")
    return path


@dataclass
class SSHTestServer:
    """A running server; every file it needs lives in ``workdir``."""

    host: str
    port: int
    username: str
    workdir: Path
    host_key: Path
    client_key: Path
    known_hosts: Path
    kind: str  # "asyncssh" or "openssh"
    _process: subprocess.Popen[bytes] = field(repr=False)
    _connections_log: Path = field(repr=False)
    _count_marker: str = field(default="", repr=False)

    def connection_count(self) -> int:
        """How many SSH connections the server has accepted since it started."""
        try:
            lines = self._connections_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return 0
        return sum(1 for line in lines if self._count_marker in line)

    def pause(self) -> None:
        """Freeze the server: it accepts TCP but answers nothing (asyncssh only:
        OpenSSH serves each connection from its own process)."""
        if self.kind != "asyncssh":
            raise NotImplementedError("pause() needs the single-process asyncssh server")
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (and any command it still runs); idempotent."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def log(self) -> str:
        """What the server wrote to stderr (useful in an assertion message)."""
        log = self.workdir / ("server.log" if self.kind == "asyncssh" else "sshd.log")
        return log.read_text(errors="replace") if log.exists() else ""


def start_server(workdir: Path) -> SSHTestServer:
    """Generate keys in ``workdir``, start the server process and wait until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = write_keypair(workdir / "host_ed25519")
    client_key = write_keypair(workdir / "client_ed25519")
    authorized = workdir / "authorized_keys"
    authorized.write_text(Path(str(client_key) + ".pub").read_text())
    connections_log = workdir / "connections.log"
    with open(workdir / "server.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--host-key",
                str(host_key),
                "--authorized-keys",
                str(authorized),
                "--connections-log",
                str(connections_log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    try:
        port = _read_port(process)
    except BaseException:
        process.kill()
        process.wait(timeout=5)
        assert process.stdout is not None
        process.stdout.close()
        raise
    known_hosts = write_known_hosts(
        workdir / "known_hosts", "127.0.0.1", port, Path(str(host_key) + ".pub")
    )
    return SSHTestServer(
        host="127.0.0.1",
        port=port,
        username=getpass.getuser(),
        workdir=workdir,
        host_key=host_key,
        client_key=client_key,
        known_hosts=known_hosts,
        kind="asyncssh",
        _process=process,
        _connections_log=connections_log,
    )


def openssh_available() -> bool:
    """Whether :func:`start_openssh_server` can work here (sshd installed, run as root)."""
    return os.access(_SSHD, os.X_OK) and os.geteuid() == 0


def start_openssh_server(workdir: Path) -> SSHTestServer:
    """The system's OpenSSH ``sshd`` with a throw-away config on a free loopback port.

    Needs root (sshd's privilege separation) and the ``/run/sshd`` directory,
    which is created if missing. The login user is root, by key only.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    host_key = write_keypair(workdir / "host_ed25519")
    client_key = write_keypair(workdir / "client_ed25519")
    authorized = workdir / "authorized_keys"
    authorized.write_text(Path(str(client_key) + ".pub").read_text())
    log_path = workdir / "sshd.log"
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = _free_port()
        config = workdir / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{port}\n"
            f"HostKey {host_key}\n"
            f"PidFile {workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\n"
            "StrictModes no\nUsePAM no\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
            "Subsystem sftp internal-sftp\n"
        )
        process = subprocess.Popen(
            [_SSHD, "-D", "-f", str(config), "-E", str(log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_for_port(port, process):
            break
        process.wait(timeout=5)
    else:
        raise RuntimeError(f"sshd did not start; see {log_path}")
    known_hosts = write_known_hosts(
        workdir / "known_hosts", "127.0.0.1", port, Path(str(host_key) + ".pub")
    )
    return SSHTestServer(
        host="127.0.0.1",
        port=port,
        username=getpass.getuser(),
        workdir=workdir,
        host_key=host_key,
        client_key=client_key,
        known_hosts=known_hosts,
        kind="openssh",
        _process=process,
        _connections_log=log_path,
        _count_marker="Connection from 127.0.0.1",
    )


_SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    process.kill()
    return False


@contextlib.contextmanager
def running_server(workdir: Path, kind: str = "asyncssh") -> Iterator[SSHTestServer]:
    """Start a server of ``kind`` ("asyncssh" or "openssh"); always stop it afterwards."""
    server = start_server(workdir) if kind == "asyncssh" else start_openssh_server(workdir)
    try:
        yield server
    finally:
        server.stop()


def _read_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=_STARTUP_TIMEOUT):
            raise RuntimeError(f"test SSH server did not start within {_STARTUP_TIMEOUT} s")
    line = process.stdout.readline().decode()
    if not line.startswith("PORT "):
        raise RuntimeError(f"test SSH server failed to start (said {line!r}); see server.log")
    return int(line.split()[1])


# --- the server process -----------------------------------------------------


class _CountingServer(asyncssh.SSHServer):
    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        with open(self._log_path, "a") as log:
            log.write(f"{conn.get_extra_info('peername')}\n")


class _Commands:
    """Runs each exec request with ``/bin/sh -c`` (the server playing a login shell)."""

    def __init__(self) -> None:
        self.running: set[asyncio.subprocess.Process] = set()

    async def handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command
        if command is None:
            process.stderr.write(b"this test server runs commands only, no shells\n")
            process.exit(1)
            return
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # so a closed channel can kill the whole group
        )
        self.running.add(proc)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.create_task(_feed_stdin(process, proc))
        finished = asyncio.ensure_future(
            asyncio.gather(
                _pump(proc.stdout, process.stdout),
                _pump(proc.stderr, process.stderr),
                proc.wait(),
            )
        )
        closed = asyncio.create_task(process.wait_closed())
        either: list[asyncio.Future[Any]] = [finished, closed]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                # The client gave up (timeout) and closed the channel: end the command.
                _kill_group(proc, signal.SIGKILL)
                await finished
                return
            returncode = proc.returncode
            assert returncode is not None
            if returncode < 0:
                process.exit_with_signal(signal.Signals(-returncode).name.removeprefix("SIG"))
            else:
                process.exit(returncode)
        finally:
            self.running.discard(proc)
            for task in (feeder, closed):
                task.cancel()
            await asyncio.gather(feeder, closed, return_exceptions=True)


def _kill_group(proc: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


async def _feed_stdin(
    process: asyncssh.SSHServerProcess[bytes], proc: asyncio.subprocess.Process
) -> None:
    assert proc.stdin is not None
    try:
        while data := await process.stdin.read(65536):
            proc.stdin.write(data)
            await proc.stdin.drain()
    except asyncssh.SignalReceived as exc:
        with contextlib.suppress(KeyError):
            _kill_group(proc, signal.Signals["SIG" + exc.signal])
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, ConnectionError):
        pass
    finally:
        proc.stdin.close()


async def _pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    writable = True
    while data := await source.read(65536):
        if not writable:
            continue  # keep reading so the command never blocks on a full pipe
        try:
            sink.write(data)
            await sink.drain()
        except (OSError, asyncssh.Error):
            writable = False


async def _serve(host_key: str, authorized_keys: str, connections_log: Path) -> None:
    commands = _Commands()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized_keys,
        server_factory=lambda: _CountingServer(connections_log),
        process_factory=commands.handle,
        sftp_factory=True,
        allow_scp=False,
        encoding=None,
        password_auth=False,
        kbdint_auth=False,
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    await stop.wait()
    for proc in list(commands.running):
        _kill_group(proc, signal.SIGKILL)
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SSH test server on 127.0.0.1 (random port)")
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--authorized-keys", required=True)
    parser.add_argument("--connections-log", required=True, type=Path)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host_key, args.authorized_keys, args.connections_log))


if __name__ == "__main__":
    main()
