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

import asyncio
import contextlib
import errno
import hashlib
import math
import posixpath
import secrets
import shlex
import stat as stat_mod
import threading
from collections.abc import Awaitable, Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import TypeVar

import asyncssh

from jupiter.errors import ConflictError, InputError, TargetError
from jupiter.targets import _ssh_guard as ssh_guard
from jupiter.targets._loopthread import LoopThread
from jupiter.targets._ssh_session import SSHSession
from jupiter.targets.base import (
    CommandResult,
    Expected,
    FileState,
    TargetLockHandle,
    normalise_relpath,
)
from jupiter.targets.connection import LocalConnection, SSHConnection, parse_connection

T = TypeVar("T")
NEW_FILE_MODE = 0o644
_CLEANUP_LIMIT = 2.0  # seconds spent removing a temp file after a failed write
# The same fixed PATH as LocalTarget's: a command must not depend on (or be
# hijacked through) the login environment on the host.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
StrPath = str | PathLike[str]


def _kind(attrs: asyncssh.SFTPAttrs) -> str:
    mode = attrs.permissions or 0
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "symlink"
    return "other"


class SSHTarget:
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

    def _call(self, what: str, op: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        with self._state_lock:
            if self._closed:
                raise TargetError(f"target {self.describe()} is closed; open a new SSHTarget")
            if self._loop is None:
                self._loop = LoopThread(f"jupiter-ssh-{self._connection.host}")
            loop = self._loop
        limit = self._command_timeout if timeout is None else timeout
        return loop.call(self._session.guarded(what, op, limit))

    def close(self) -> None:
        """Close the connection and stop the background loop; later calls raise TargetError."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            loop, self._loop = self._loop, None
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
                    f"path {rel!r} on {self.describe()} is a {_kind(attrs)}, not a regular "
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
            if attrs is None:
                return None
            mtime_ns = None
            if attrs.mtime is not None:
                mtime_ns = int(attrs.mtime) * 1_000_000_000 + (attrs.mtime_ns or 0) % 1_000_000_000
            return FileState(
                rel,
                _kind(attrs),
                attrs.size or 0,
                stat_mod.S_IMODE(attrs.permissions or 0),
                attrs.uid if attrs.uid is not None else -1,
                attrs.gid if attrs.gid is not None else -1,
                None,
                mtime_ns,
            )

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

    def write_bytes(
        self, path: str, data: bytes, mode: int | None = None, *, expect: Expected | None = None
    ) -> None:
        """Atomically replace ``path``; new files get 0o644 and new directories
        0o755. With ``expect``, only while the path still matches it, checked
        before and after the rename through a kept SFTP handle
        (:mod:`._ssh_guard`); else ConflictError, the other edit in place."""
        rel = normalise_relpath(path)
        self._call(f"writing {rel}", lambda: self._write(rel, data, mode, expect, True))

    async def _write(
        self,
        rel: str,
        data: bytes,
        mode: int | None,
        expect: Expected | None = None,
        compensate: bool = True,
    ) -> None:
        session = self._session
        sftp = session.sftp
        parent, _, name = rel.rpartition("/")
        directory = await session.ensure_dir(parent) if parent else session.root_real
        remote = posixpath.join(directory, name)
        old = await session.lstat_or_none(remote)
        if old is not None and stat_mod.S_ISLNK(old.permissions or 0):
            await session.refuse_link(rel, remote)
        if old is not None and not stat_mod.S_ISREG(old.permissions or 0):
            raise TargetError(
                f"path {rel!r} on {self.describe()} is a {_kind(old)}, not a regular file; "
                "remove it first or name a file"
            )
        where = self.describe()
        pinned = (
            await ssh_guard.pin(sftp, remote, rel, expect, old is not None, where)
            if expect is not None
            else None
        )
        theirs: bytes | None = None
        try:
            await self._write_tmp_and_move(rel, directory, name, remote, data, mode, old, expect)
            if pinned is not None and expect is not None:
                theirs = await ssh_guard.lost_edit(pinned, expect)
        finally:
            if pinned is not None:
                with contextlib.suppress(asyncssh.Error, OSError):
                    await pinned.close()
        if theirs is None:
            return
        if compensate:
            ours = Expected(hashlib.sha256(data).hexdigest())
            old_mode = stat_mod.S_IMODE(old.permissions or 0) if old is not None else None
            try:
                await self._write(rel, theirs, old_mode, ours, False)
            except ConflictError:
                pass
            else:
                raise ConflictError(
                    f"{rel} on {where} was edited by someone else while Jupiter replaced it; "
                    "their version was put back and Jupiter's change withdrawn"
                )
        aside = await ssh_guard.keep_aside(sftp, remote, theirs)
        raise ConflictError(
            f"{rel} on {where} was edited by two parties while Jupiter replaced it; the version "
            f"Jupiter replaced, with its edit, is saved as {aside} next to it — merge it by hand"
        )

    async def _write_tmp_and_move(
        self,
        rel: str,
        directory: str,
        name: str,
        remote: str,
        data: bytes,
        mode: int | None,
        old: asyncssh.SFTPAttrs | None,
        expect: Expected | None,
    ) -> None:
        session = self._session
        sftp = session.sftp
        tmp = posixpath.join(directory, f".{name}.jupiter-{secrets.token_hex(6)}.tmp")
        # "x": O_EXCL, so a planted file or link at the temp name is never followed.
        fh = await sftp.open(tmp, "xb", asyncssh.SFTPAttrs(permissions=0o600))
        try:
            try:
                await fh.write(data)
                # Without the server's fsync extension the rename still stays atomic.
                with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                    await fh.fsync()
            finally:
                await fh.close()
            if old is not None:
                mine = await sftp.lstat(tmp)
                if (old.uid, old.gid) != (mine.uid, mine.gid):
                    await self._keep_owner(tmp, old, rel)
            # chmod after chown: chown clears setuid/setgid bits.
            final_mode = (
                mode
                if mode is not None
                else (stat_mod.S_IMODE(old.permissions or 0) if old is not None else NEW_FILE_MODE)
            )
            await sftp.chmod(tmp, final_mode)
            if expect is not None and expect.sha256 is None:
                await ssh_guard.link_new(sftp, tmp, remote, rel, self.describe())
            else:
                await session.replace(tmp, remote, old is not None)
        except asyncio.CancelledError:
            raise  # timed out: the connection is being aborted, nothing more gets through
        except BaseException:
            # Best effort: the original error is what the caller needs to see.
            with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
                await asyncio.wait_for(sftp.remove(tmp), _CLEANUP_LIMIT)
            raise

    async def _keep_owner(self, tmp: str, old: asyncssh.SFTPAttrs, rel: str) -> None:
        if old.uid is None or old.gid is None:
            return  # the server does not report owners, so there is nothing to keep
        try:
            await self._session.sftp.chown(tmp, old.uid, old.gid)
        except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure) as exc:
            raise TargetError(
                f"cannot keep owner {old.uid}:{old.gid} of {rel!r} on {self.describe()} when "
                "replacing it; connect as root or as the file's owner"
            ) from exc

    async def _existing_nonlink(self, rel: str) -> str:
        session = self._session
        remote, attrs = await session.resolve(rel, follow_final=False)
        if attrs is None:
            raise FileNotFoundError(errno.ENOENT, f"{rel} does not exist on {self.describe()}", rel)
        if stat_mod.S_ISLNK(attrs.permissions or 0):
            await session.refuse_link(rel, remote)
        return remote

    def set_mode(self, path: str, mode: int) -> None:
        """Set permission bits of a file or directory (never through a symlink)."""
        rel = normalise_relpath(path)

        async def op() -> None:
            remote = await self._existing_nonlink(rel)
            await self._session.sftp.chmod(remote, mode, follow_symlinks=False)

        self._call(f"changing the mode of {rel}", op)

    def set_owner(self, path: str, uid: int, gid: int) -> None:
        """Set the owner; the login user needs the right to chown (usually root)."""
        rel = normalise_relpath(path)

        async def op() -> None:
            remote = await self._existing_nonlink(rel)
            try:
                await self._session.sftp.chown(remote, uid, gid, follow_symlinks=False)
            except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure) as exc:
                raise TargetError(
                    f"cannot set owner {uid}:{gid} on {rel!r} on {self.describe()}; connect as "
                    "root to change ownership"
                ) from exc

        self._call(f"changing the owner of {rel}", op)

    def remove(self, path: str, *, expect: Expected | None = None) -> None:
        """Remove a file or symlink (the link, not its target); absent is fine.
        With ``expect`` a regular file is removed only while it matches it."""
        rel = normalise_relpath(path)

        async def op() -> None:
            remote, attrs = await self._session.resolve(rel, follow_final=False)
            if attrs is None:
                return
            if stat_mod.S_ISDIR(attrs.permissions or 0):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a directory; remove only removes files"
                )
            if expect is not None and stat_mod.S_ISREG(attrs.permissions or 0):
                await self._remove_checked(rel, remote, attrs, expect)
                return
            # Removed by someone else meanwhile is the outcome we wanted.
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await self._session.sftp.remove(remote)

        self._call(f"removing {rel}", op)

    async def _remove_checked(
        self, rel: str, remote: str, attrs: asyncssh.SFTPAttrs, expect: Expected
    ) -> None:
        sftp = self._session.sftp
        where = self.describe()
        pinned = await ssh_guard.pin(sftp, remote, rel, expect, True, where)
        assert pinned is not None
        try:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(remote)
            theirs = await ssh_guard.lost_edit(pinned, expect)
        finally:
            with contextlib.suppress(asyncssh.Error, OSError):
                await pinned.close()
        if theirs is None:
            return
        try:
            await self._write(
                rel, theirs, stat_mod.S_IMODE(attrs.permissions or 0), Expected(None), False
            )
        except ConflictError:
            aside = await ssh_guard.keep_aside(sftp, remote, theirs)
            raise ConflictError(
                f"{rel} on {where} was edited while Jupiter removed it and recreated meanwhile; "
                f"the edited version is saved as {aside} — merge it by hand"
            ) from None
        raise ConflictError(
            f"{rel} on {where} was edited by someone else while Jupiter removed it; their "
            "version was put back"
        )

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


def _remote_deadline(timeout: float) -> int:
    # Whole seconds (busybox's timeout takes no fractions), never before ours.
    return math.ceil(timeout) + 1


__all__ = ["SSHTarget"]
