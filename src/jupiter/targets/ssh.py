"""A target on a remote host, reached over SSH (SFTP for files, exec for commands).

:class:`SSHTarget` offers the synchronous :class:`~jupiter.targets.base.Target`
methods. Underneath, asyncssh runs on a private event loop in a background
thread; one SSH connection (and one SFTP session on it) is opened on first use
and reused by every call until :meth:`SSHTarget.close`. A connection that is
lost or stops answering is dropped and reopened by the next call.

Safety, as for ``LocalTarget``:

* the host key must be in the known_hosts file (default ``~/.ssh/known_hosts``);
  an unknown or changed key is refused, never accepted silently;
* authentication is by key only (no passwords, no keyboard-interactive);
* every path is relative to the remote root; each existing component is
  checked with SFTP ``lstat``, and a symlink is followed only when SFTP
  ``realpath`` shows it stays inside the root (otherwise PathEscapeError);
* writes, mode and owner changes refuse a final component that is a symlink;
  ``remove`` deletes a link itself, never what it points to;
* writes go to a temp file in the same directory, then ``posix-rename``
  (plain rename as fallback), keeping the old file's mode and owner;
* commands are sent as ``cd ROOT && exec [timeout -s KILL N] env -i PATH=...
  LANG=C.UTF-8 ARGV`` with every word quoted by :func:`shlex.quote`, so the
  remote login shell (which must be POSIX ``sh``-compatible) never interprets
  caller input; see :meth:`SSHTarget.command_line` for why ``timeout``.

SFTP offers no descriptor-relative calls, so unlike ``LocalTarget`` a symlink
swapped in between the check and the operation cannot be excluded; the
account Jupiter logs in with should not share write access with untrusted
users below the root.
"""

from __future__ import annotations

import errno
import math
import posixpath
import shlex
import stat as stat_mod
import threading
from collections.abc import Awaitable, Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import TypeVar

from jupiter.errors import InputError, TargetError
from jupiter.targets._asyncssh import asyncssh
from jupiter.targets._loopthread import LoopThread
from jupiter.targets._ssh_links import SSHLinks, state_of
from jupiter.targets._ssh_session import SSHSession
from jupiter.targets._ssh_writes import SSHWrites, kind_of
from jupiter.targets.base import (
    CommandResult,
    FileState,
    TargetLockHandle,
    hard_link_refusal,
    normalise_relpath,
)
from jupiter.targets.connection import LocalConnection, SSHConnection, parse_connection

T = TypeVar("T")
# The same fixed PATH as LocalTarget's: a command must not depend on (or be
# hijacked through) the login environment on the host.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
StrPath = str | PathLike[str]


class SSHTarget(SSHWrites, SSHLinks):
    """The Target protocol on directory ``root`` of ``host``, over one SSH connection.

    ``client_keys``: private key files to offer (``None``: asyncssh's defaults,
    i.e. ``~/.ssh/id_*`` and a running ssh-agent). ``known_hosts``: the file
    the host key must be in (``None``: ``~/.ssh/known_hosts``).
    ``connect_timeout`` bounds connecting and logging in, ``command_timeout``
    each file operation (``run`` takes its own timeout). Use as a context
    manager or call :meth:`close`.
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        username: str = "root",
        root: str = "/",
        client_keys: Sequence[StrPath] | None = None,
        known_hosts: StrPath | None = None,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
    ) -> None:
        if not root.startswith("/") or "\x00" in root or ".." in root.split("/"):
            raise InputError(
                f"SSH target root {root!r} is not a plain absolute path; give one like /srv/host1"
            )
        if not 0 < port < 65536:
            raise InputError(f"SSH port {port!r} is out of range; use a number 1-65535")
        if connect_timeout <= 0 or command_timeout <= 0:
            raise InputError("SSH connect_timeout and command_timeout must be positive seconds")
        self._connection = SSHConnection(username, host, port, posixpath.normpath(root))
        self._session = SSHSession(
            self._connection,
            client_keys=[Path(key) for key in client_keys] if client_keys is not None else None,
            known_hosts=Path(known_hosts) if known_hosts is not None else None,
            connect_timeout=connect_timeout,
        )
        self._command_timeout = command_timeout
        self._loop: LoopThread | None = None
        self._closed = False
        self._state_lock = threading.Lock()
        self._owner: SSHTarget | None = None  # set on sub-targets (see sub_target)

    @classmethod
    def from_connection(
        cls,
        connection: str | SSHConnection,
        *,
        client_keys: Sequence[StrPath] | None = None,
        known_hosts: StrPath | None = None,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
    ) -> SSHTarget:
        """Build a target from ``ssh:USER@HOST[:PORT]/ROOT`` (or a parsed connection)."""
        parsed = parse_connection(connection) if isinstance(connection, str) else connection
        if isinstance(parsed, LocalConnection):
            raise InputError(
                f"connection {connection!r} is local, not SSH; open it with LocalTarget"
            )
        return cls(
            parsed.host,
            parsed.port,
            parsed.username,
            parsed.root,
            client_keys=client_keys,
            known_hosts=known_hosts,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )

    def describe(self) -> str:
        return str(self._connection)

    # -- plumbing --------------------------------------------------------

    def _running_loop(self) -> LoopThread:
        with self._state_lock:
            if self._closed:
                raise TargetError(f"target {self.describe()} is closed; open a new SSHTarget")
            if self._owner is None and self._loop is None:
                self._loop = LoopThread(f"jupiter-ssh-{self._connection.host}")
            loop = self._loop
        return self._owner._running_loop() if self._owner is not None else _opened(loop)

    def _call(self, what: str, op: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        loop = self._running_loop()
        limit = self._command_timeout if timeout is None else timeout
        return loop.call(self._session.guarded(what, op, limit))

    def _child(self, rel: str) -> SSHTarget:
        """A target rooted at ``rel`` below this root, sharing this target's
        loop and connection (see :meth:`SSHLinks.sub_target`)."""
        info = self._connection
        child = SSHTarget.__new__(SSHTarget)
        child._connection = SSHConnection(
            info.username, info.host, info.port, posixpath.join(info.root, rel)
        )
        child._session = self._session.sub_session(child._connection)
        child._command_timeout = self._command_timeout
        child._loop = None
        child._closed = False
        child._state_lock = threading.Lock()
        child._owner = self
        return child

    def share(self) -> SSHTarget:
        """Another handle on this very target (same root, same connection and
        loop): closing it leaves the connection open for the next step; the
        connection closes with this target (see ``targets.factory.TargetPool``)."""
        twin = SSHTarget.__new__(SSHTarget)
        twin._connection = self._connection
        twin._session = self._session
        twin._command_timeout = self._command_timeout
        twin._loop = None
        twin._closed = False
        twin._state_lock = threading.Lock()
        twin._owner = self._owner or self
        return twin

    def close(self) -> None:
        """Close the connection and stop the background loop; later calls raise
        TargetError. A sub-target only closes itself: the connection is its owner's."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            loop, self._loop = self._loop, None
        if self._owner is not None:
            return
        if loop is not None:
            try:
                loop.call(self._session.drop())
            finally:
                loop.stop()

    def __enter__(self) -> SSHTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        rel = normalise_relpath(path)

        async def op() -> bytes:
            remote, attrs = await self._session.resolve(rel, follow_final=True)
            if attrs is None:
                raise FileNotFoundError(
                    errno.ENOENT, f"{rel} does not exist on {self.describe()}", rel
                )
            if not stat_mod.S_ISREG(attrs.permissions or 0):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {kind_of(attrs)}, not a regular "
                    "file; name a file"
                )
            async with self._session.sftp.open(remote, "rb") as fh:
                data = await fh.read()
            assert isinstance(data, bytes)
            return data

        return self._call(f"reading {rel}", op)

    def stat(self, path: str) -> FileState | None:
        rel = normalise_relpath(path)

        async def op() -> FileState | None:
            _, attrs = await self._session.resolve(rel, follow_final=False)
            return None if attrs is None else state_of(rel, attrs)

        return self._call(f"checking {rel}", op)

    def glob(self, pattern: str) -> list[str]:
        """Paths of any kind matching ``pattern`` one segment at a time; ``*``
        also matches names starting with a dot. Symlinked directories leading
        outside the root are not descended into."""
        segments = normalise_relpath(pattern).split("/")
        return self._call(f"listing {pattern}", lambda: self._session.glob(segments))

    def walk(self, under: str = "") -> list[str]:
        """Every regular file (not symlinks) below ``under``, sorted; symlinked
        directories are not descended into."""
        prefix = normalise_relpath(under) if under else ""
        return self._call(f"listing {prefix or 'the root'}", lambda: self._session.walk(prefix))

    # -- writing ---------------------------------------------------------

    async def _existing_nonlink(self, rel: str, action: str) -> str:
        """The remote path of ``rel`` for a mode or owner change: not a
        symlink, and not a file with other hard links (the change would reach
        them too)."""
        session = self._session
        remote, attrs = await session.resolve(rel, follow_final=False)
        if attrs is None:
            raise FileNotFoundError(errno.ENOENT, f"{rel} does not exist on {self.describe()}", rel)
        if stat_mod.S_ISLNK(attrs.permissions or 0):
            await session.refuse_link(rel, remote)
        if not stat_mod.S_ISDIR(attrs.permissions or 0):
            links = await session.link_count(rel, remote)
            if links > 1:
                raise hard_link_refusal(rel, self.describe(), links, action)
        return remote

    def set_mode(self, path: str, mode: int) -> None:
        """Set permission bits of a file or directory (never through a symlink)."""
        rel = normalise_relpath(path)

        async def op() -> None:
            remote = await self._existing_nonlink(rel, "changing the mode of")
            await self._session.sftp.chmod(remote, mode, follow_symlinks=False)

        self._call(f"changing the mode of {rel}", op)

    def set_owner(self, path: str, uid: int, gid: int) -> None:
        """Set the owner; the login user needs the right to chown (usually root)."""
        rel = normalise_relpath(path)

        async def op() -> None:
            remote = await self._existing_nonlink(rel, "changing the owner of")
            try:
                await self._session.sftp.chown(remote, uid, gid, follow_symlinks=False)
            except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure) as exc:
                raise TargetError(
                    f"cannot set owner {uid}:{gid} on {rel!r} on {self.describe()}; connect as "
                    "root to change ownership"
                ) from exc

        self._call(f"changing the owner of {rel}", op)

    # -- locking ---------------------------------------------------------

    def acquire_lock(self, timeout: float) -> TargetLockHandle | None:
        """Hold the host's ``flock`` on the root directory through a remote
        command that lives as long as this connection (see
        :mod:`._ssh_lock`); ``None`` when another process holds it."""
        from jupiter.targets import _ssh_lock

        command = self.command_line(_ssh_lock.lock_argv(timeout))
        where = self.describe()

        async def op() -> asyncssh.SSHClientProcess[str] | None:
            return await _ssh_lock.hold(self._session.connection, command, where)

        process = self._call("taking the target lock", op, max(timeout, 0) + self._command_timeout)
        return None if process is None else _ssh_lock.RemoteLock(self, process)

    def lock_owner(self) -> str | None:
        """Unknown over SSH: the holder's own workspace names it."""
        return None

    def call_on_loop(self, what: str, op: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run ``op`` on this target's connection loop (for its helpers)."""
        return self._call(what, op, timeout)

    # -- commands --------------------------------------------------------

    def command_line(self, argv: Sequence[str], timeout: float | None = None) -> str:
        """The exact string sent to the remote shell for ``argv`` (every word quoted).

        With ``timeout``, the command runs under the host's ``timeout`` utility
        (when installed) with a kill deadline one to two seconds after ours:
        OpenSSH neither ends a command whose channel closes nor accepts signal
        requests for root logins, so this backstop is what stops a hung command.
        """
        if not argv:
            raise InputError("command argument vector is empty; give the program and its arguments")
        if "=" in argv[0]:
            raise InputError(
                f"command name {argv[0]!r} contains '='; give the program's name or path"
            )
        run = f"env -i PATH={shlex.quote(SAFE_PATH)} LANG=C.UTF-8 {shlex.join(argv)}"
        cd = f"cd {shlex.quote(self._connection.root)}"
        if timeout is None:
            return f"{cd} && exec {run}"
        deadline = _remote_deadline(timeout)
        return (
            f"{cd} && if command -v timeout >/dev/null 2>&1; "
            f"then exec timeout -s KILL {deadline} {run}; else exec {run}; fi"
        )

    def run(self, argv: list[str], timeout: float) -> CommandResult:
        """Run ``argv`` in the root. On timeout the command is sent SIGKILL and
        its channel closed, and ``timed_out`` is set; the host's ``timeout``
        utility ends it at the latest two seconds later (see :meth:`command_line`)."""
        if not timeout > 0:
            raise InputError(f"command timeout {timeout!r} must be a positive number of seconds")
        command = self.command_line(argv, timeout)
        args = tuple(argv)
        grace = _remote_deadline(timeout) - timeout + 1.0
        # The operation limit covers opening the channel too; the command's own
        # timeout is enforced inside execute() so partial output survives.
        return self._call(
            f"running {argv[0]}",
            lambda: self._session.execute(args, command, timeout, grace),
            timeout + grace + self._command_timeout,
        )


def _opened(loop: LoopThread | None) -> LoopThread:
    assert loop is not None
    return loop


def _remote_deadline(timeout: float) -> int:
    # Whole seconds (busybox's timeout takes no fractions), never before ours.
    return math.ceil(timeout) + 1


__all__ = ["SSHTarget"]
