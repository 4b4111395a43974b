"""The asyncio half of ``SSHTarget``: one SSH connection, its SFTP session,
path resolution under the root, listing and command execution.

Everything here runs on the target's private event loop; ``SSHTarget`` is the
synchronous face. Errors from asyncssh are translated into
:class:`~jupiter.errors.TargetError` sentences at this boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import posixpath
import secrets
import shlex
import stat as stat_mod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from jupiter.errors import PathEscapeError, TargetError
from jupiter.targets._asyncssh import asyncssh
from jupiter.targets._ssh_connect import open_connection
from jupiter.targets.base import CommandResult
from jupiter.targets.connection import SSHConnection

T = TypeVar("T")
NEW_DIR_MODE = 0o755
_PARALLEL_LISTINGS = 16  # SFTP requests in flight while walking a tree
_CLOSE_GRACE = 2.0  # seconds a clean disconnect may take before we abort
_STAT_TIMEOUT = 30.0  # seconds for the remote stat(1) that counts hard links


def _mode(attrs: asyncssh.SFTPAttrs | None) -> int:
    return (attrs.permissions or 0) if attrs is not None else 0


class SSHSession:
    """Lazily opened connection + SFTP client for one :class:`SSHConnection`."""

    def __init__(
        self,
        connection: SSHConnection,
        *,
        client_keys: list[Path] | None,
        known_hosts: Path | None,
        connect_timeout: float,
    ) -> None:
        self._info = connection
        self._client_keys = client_keys
        self._known_hosts = known_hosts
        self._connect_timeout = connect_timeout
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._root_real = ""
        self._lock: asyncio.Lock | None = None
        self._listing_slots: asyncio.Semaphore | None = None
        # A sub-session (see sub_session) borrows its parent's connection.
        self._parent: SSHSession | None = None
        self._checked_on: asyncssh.SSHClientConnection | None = None

    def sub_session(self, connection: SSHConnection) -> SSHSession:
        """A session rooted at ``connection.root`` (a directory below this
        root) on this session's connection: opening, dropping and reconnecting
        are the parent's; only the root and its checks are its own."""
        child = SSHSession(
            connection,
            client_keys=self._client_keys,
            known_hosts=self._known_hosts,
            connect_timeout=self._connect_timeout,
        )
        child._parent = self
        return child

    def _describe(self) -> str:
        return str(self._info)

    @property
    def sftp(self) -> asyncssh.SFTPClient:
        if self._parent is not None:
            return self._parent.sftp
        assert self._sftp is not None, "SSHSession used before guarded() opened it"
        return self._sftp

    @property
    def connection(self) -> asyncssh.SSHClientConnection:
        if self._parent is not None:
            return self._parent.connection
        assert self._conn is not None, "SSHSession used before guarded() opened it"
        return self._conn

    @property
    def root_real(self) -> str:
        """The root as the server resolves it (symlinks in the root itself followed)."""
        return self._root_real

    # -- connection lifecycle --------------------------------------------

    async def guarded(self, what: str, op: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Open the connection if needed, then run ``op`` within ``timeout`` seconds."""
        await self._ensure_open()
        where = self._describe()
        try:
            return await asyncio.wait_for(op(), timeout)
        except TimeoutError as exc:
            await self.drop(abort=True)
            raise TargetError(
                f"{where} did not answer within {timeout:g} s while {what}; check the host's "
                "load and the network, or raise command_timeout"
            ) from exc
        except (
            asyncssh.SFTPConnectionLost,
            asyncssh.SFTPNoConnection,
            asyncssh.DisconnectError,
            ConnectionError,
        ) as exc:
            await self.drop(abort=True)
            raise TargetError(
                f"the connection to {where} was lost while {what} ({exc}); check the host and retry"
            ) from exc
        except asyncssh.SFTPPermissionDenied as exc:
            raise TargetError(
                f"{where} denied permission while {what} ({exc.reason}); check the login "
                "user's rights below the root"
            ) from exc
        except asyncssh.SFTPError as exc:
            raise TargetError(
                f"{where} failed while {what} ({exc.reason}); check the path and the server"
            ) from exc
        except asyncssh.ChannelOpenError as exc:
            raise TargetError(
                f"{where} refused to open a session while {what} ({exc.reason}); check the "
                "server's session limits (MaxSessions)"
            ) from exc

    async def _ensure_open(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._listing_slots = asyncio.Semaphore(_PARALLEL_LISTINGS)
        if self._parent is not None:
            await self._parent._ensure_open()
            async with self._lock:
                conn = self._parent.connection
                if self._checked_on is not conn:
                    self._root_real = await asyncio.wait_for(
                        self._check_sub_root(self._parent), self._connect_timeout
                    )
                    self._checked_on = conn
            return
        async with self._lock:
            if self._conn is not None and self._conn.is_closed():
                # Closed under us (the host went away between two steps of a
                # kept connection): open a new one, or say it is unreachable.
                self._conn.abort()
                self._conn, self._sftp = None, None
            if self._conn is not None:
                return
            conn = await open_connection(
                self._info, self._client_keys, self._known_hosts, self._connect_timeout
            )
            try:
                sftp = await asyncio.wait_for(conn.start_sftp_client(), self._connect_timeout)
                self._root_real = await asyncio.wait_for(
                    self._check_root(sftp), self._connect_timeout
                )
            except BaseException as exc:
                conn.abort()
                await conn.wait_closed()
                if isinstance(exc, TargetError | asyncio.CancelledError):
                    raise
                if isinstance(exc, TimeoutError):
                    raise TargetError(
                        f"{self._describe()} did not answer within {self._connect_timeout:g} s "
                        "while starting SFTP; check the host's load and its sftp subsystem"
                    ) from exc
                raise TargetError(
                    f"{self._describe()} accepted the login but offers no usable SFTP ({exc}); "
                    "enable the sftp subsystem in the server's sshd_config"
                ) from exc
            self._conn, self._sftp = conn, sftp

    async def _check_root(self, sftp: asyncssh.SFTPClient) -> str:
        root = self._info.root
        problem = f"target root {root} does not exist on {self._info.host} or is not a directory"
        try:
            real = await sftp.realpath(root)
            attrs = await sftp.stat(real)
        except asyncssh.SFTPNoSuchFile as exc:
            raise TargetError(f"{problem}; create it or fix the connection string") from exc
        if not stat_mod.S_ISDIR(_mode(attrs)):
            raise TargetError(f"{problem}; create it or fix the connection string")
        assert isinstance(real, str)
        return real

    async def _check_sub_root(self, parent: SSHSession) -> str:
        """The sub-root's real path: a directory inside the parent's root."""
        real = await self._check_root(parent.sftp)
        below = posixpath.relpath(self._info.root, parent._info.root)
        if below.startswith("..") or real != posixpath.join(parent.root_real, below):
            raise TargetError(
                f"target root {self._info.root} on {self._info.host} resolves to {real}, not "
                f"to the directory {below} of {parent.root_real}; remove the symlink or fix the "
                "layout"
            )
        return real

    async def drop(self, *, abort: bool = False) -> None:
        """Close the connection (abort it when it stopped answering); idempotent."""
        if self._parent is not None:
            self._checked_on = None
            await self._parent.drop(abort=abort)
            return
        conn, sftp = self._conn, self._sftp
        self._conn = self._sftp = None
        if sftp is not None and not abort:
            sftp.exit()
        if conn is None:
            return
        if abort:
            conn.abort()
        else:
            conn.close()
        try:
            await asyncio.wait_for(conn.wait_closed(), _CLOSE_GRACE)
        except TimeoutError:
            conn.abort()
            await conn.wait_closed()

    # -- paths -----------------------------------------------------------

    def inside(self, real: str) -> bool:
        root = self._root_real
        return real == root or real.startswith(root.rstrip("/") + "/")

    async def lstat_or_none(self, remote: str) -> asyncssh.SFTPAttrs | None:
        try:
            return await self.sftp.lstat(remote)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath, asyncssh.SFTPNotADirectory):
            return None

    async def realpath_or_none(self, remote: str) -> str | None:
        """The server's canonical path, or ``None`` when it cannot resolve it
        (OpenSSH fails on a dangling symlink)."""
        try:
            real = await self.sftp.realpath(remote)
        except asyncssh.SFTPError:
            return None
        assert isinstance(real, str)
        return real

    async def resolve(
        self, rel: str, *, follow_final: bool
    ) -> tuple[str, asyncssh.SFTPAttrs | None]:
        """Remote path of root-relative ``rel`` with in-root symlinks resolved,
        and its lstat attributes (``None`` if absent).

        Without ``follow_final`` a final symlink is returned as the link itself.
        Raises PathEscapeError for a symlink leading outside the root.
        """
        parts = rel.split("/")
        root = self._root_real
        # Most paths hold no symlink: lstat all lexical prefixes in one round trip.
        prefetched = await asyncio.gather(
            *(self.lstat_or_none(posixpath.join(root, *parts[: i + 1])) for i in range(len(parts)))
        )
        cur, lexical = root, True
        attrs: asyncssh.SFTPAttrs | None = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            candidate = posixpath.join(cur, part)
            attrs = prefetched[i] if lexical else await self.lstat_or_none(candidate)
            if attrs is None:
                return posixpath.join(candidate, *parts[i + 1 :]), None
            if stat_mod.S_ISLNK(_mode(attrs)) and (follow_final or not last):
                shown = "/".join(parts[: i + 1])
                real = await self.realpath_or_none(candidate)
                if real is None or not self.inside(real):
                    raise PathEscapeError(
                        f"path {rel!r} on {self._describe()} goes through symlink {shown!r}, which "
                        f"leads {'outside the target root' if real else 'nowhere resolvable'}; "
                        "remove the symlink or use a path inside the root"
                    )
                cur, lexical = real, False
                if last:
                    attrs = await self.lstat_or_none(real)
            else:
                cur = candidate
        return cur, attrs

    async def refuse_link(self, rel: str, remote: str) -> None:
        """Raise for a final symlink that a write or mode change would go through."""
        real = await self.realpath_or_none(remote)
        if real is None or not self.inside(real):
            raise PathEscapeError(
                f"path {rel!r} on {self._describe()} is a symlink leading outside the target "
                "root; Jupiter does not write through symlinks"
            )
        raise TargetError(
            f"path {rel!r} on {self._describe()} is a symlink to {real}; Jupiter does not write "
            "through symlinks, so name the file it points to instead"
        )

    async def link_count(self, rel: str, remote: str) -> int:
        """The hard link count of ``remote`` (SFTP version 3, which OpenSSH
        speaks, does not report it): ``stat -c %h`` on the host. A host
        without ``stat(1)`` is refused rather than written through a link."""
        command = shlex.join(["stat", "-c", "%h", "--", remote])
        result = await self.execute(("stat",), command, _STAT_TIMEOUT, _CLOSE_GRACE)
        text = result.stdout.strip()
        if not result.ok or not text.isdigit():
            said = (result.stderr or result.stdout).strip().splitlines()
            raise TargetError(
                f"could not count the hard links of {rel!r} on {self._describe()} with stat(1) "
                f"({said[-1] if said else f'exit {result.returncode}'}); Jupiter needs it to "
                "make sure a change does not reach other names of the file — install coreutils"
            )
        return int(text)

    async def ensure_dir(self, rel: str) -> str:
        """Resolved remote path of directory ``rel``, creating missing ones (0o755)."""
        remote, attrs = await self.resolve(rel, follow_final=True)
        if attrs is None:
            up, _, name = rel.rpartition("/")
            base = await self.ensure_dir(up) if up else self._root_real
            remote = posixpath.join(base, name)
            try:
                await self.sftp.mkdir(remote, asyncssh.SFTPAttrs(permissions=NEW_DIR_MODE))
            except asyncssh.SFTPError:
                attrs = await self.lstat_or_none(remote)  # created meanwhile? check below
                if attrs is None or not stat_mod.S_ISDIR(_mode(attrs)):
                    raise
            return remote
        if not stat_mod.S_ISDIR(_mode(attrs)):
            raise TargetError(
                f"{rel!r} on {self._describe()} is not a directory, so nothing can be written "
                "below it; remove it or choose another path"
            )
        return remote

    async def replace(self, tmp: str, remote: str, existed: bool) -> None:
        """Move ``tmp`` over ``remote`` atomically (posix-rename), else as close as SFTP allows."""
        sftp = self.sftp
        try:
            await sftp.posix_rename(tmp, remote)
            return
        except asyncssh.SFTPOpUnsupported:
            pass
        if not existed:
            await sftp.rename(tmp, remote)
            return
        # SFTPv3 rename refuses to overwrite: move the old file aside first.
        backup = f"{remote}.jupiter-old-{secrets.token_hex(6)}"
        await sftp.rename(remote, backup)
        try:
            await sftp.rename(tmp, remote)
        except BaseException:
            # Put the old file back, bounded: this may run after a timeout cancelled us.
            await asyncio.wait_for(sftp.rename(backup, remote), _CLOSE_GRACE)
            raise
        await sftp.remove(backup)

    # -- listing ---------------------------------------------------------

    async def entries(self, remote: str) -> list[tuple[str, asyncssh.SFTPAttrs]]:
        assert self._listing_slots is not None
        async with self._listing_slots:
            try:
                names = await self.sftp.readdir(remote)
            except (
                asyncssh.SFTPNoSuchFile,
                asyncssh.SFTPNotADirectory,
                asyncssh.SFTPFailure,
                asyncssh.SFTPPermissionDenied,
                asyncssh.SFTPNoSuchPath,
            ):
                return []
        out = []
        for entry in names:
            name = entry.filename
            assert isinstance(name, str)
            if name in (".", ".."):
                continue
            attrs = entry.attrs
            if attrs.permissions is None:  # a server may omit attributes in listings
                attrs = await self.lstat_or_none(posixpath.join(remote, name)) or attrs
            out.append((name, attrs))
        return sorted(out, key=lambda item: item[0])

    async def glob(self, segments: list[str]) -> list[str]:
        found: list[str] = []
        frontier = [("", self._root_real)]
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            if any(ch in segment for ch in "*?["):
                listings = await asyncio.gather(*(self.entries(r) for _, r in frontier))
            else:  # a literal segment needs one lstat, not a listing
                stats = await asyncio.gather(
                    *(self.lstat_or_none(posixpath.join(r, segment)) for _, r in frontier)
                )
                listings = [[(segment, a)] if a is not None else [] for a in stats]
            nxt: list[tuple[str, str]] = []
            for (prefix, remote), entries in zip(frontier, listings, strict=True):
                for name, attrs in entries:
                    if not fnmatch.fnmatchcase(name, segment):
                        continue
                    child = f"{prefix}/{name}" if prefix else name
                    if last:
                        found.append(child)
                    elif stat_mod.S_ISDIR(_mode(attrs)):
                        nxt.append((child, posixpath.join(remote, name)))
                    elif stat_mod.S_ISLNK(_mode(attrs)):
                        real = await self.realpath_or_none(posixpath.join(remote, name))
                        if real is not None and self.inside(real):
                            nxt.append((child, real))
            frontier = nxt
        return sorted(found)

    async def walk(self, prefix: str) -> list[str]:
        if prefix:
            start, attrs = await self.resolve(prefix, follow_final=True)
            if not stat_mod.S_ISDIR(_mode(attrs)):
                return []
        else:
            start = self._root_real
        out: list[str] = []
        level = [(start, prefix)]
        while level:
            listings = await asyncio.gather(*(self.entries(r) for r, _ in level))
            nxt: list[tuple[str, str]] = []
            for (remote, logical), entries in zip(level, listings, strict=True):
                for name, attrs in entries:
                    rel = f"{logical}/{name}" if logical else name
                    if stat_mod.S_ISDIR(_mode(attrs)):
                        nxt.append((posixpath.join(remote, name), rel))
                    elif stat_mod.S_ISREG(_mode(attrs)):
                        out.append(rel)
            level = nxt
        return sorted(out)

    # -- commands --------------------------------------------------------

    async def execute(
        self, argv: tuple[str, ...], command: str, timeout: float, close_grace: float
    ) -> CommandResult:
        """Run the (already quoted) ``command``; on timeout kill it and close the
        channel, waiting at most ``close_grace`` seconds for the server to agree."""
        process = await self.connection.create_process(command, encoding="utf-8", errors="replace")
        process.stdin.write_eof()  # commands get no input, like stdin=DEVNULL locally
        try:
            done = await process.wait(timeout=timeout)
        except asyncssh.TimeoutError as exc:
            # OpenSSH does not end a command whose channel closes: ask it to
            # kill the command's process group first (a "signal" request, which
            # sshd >= 8.1 honours), then close the channel for servers that don't.
            with contextlib.suppress(OSError, asyncssh.Error):
                process.kill()
            process.close()
            # A server slow to confirm is fine: the channel is closed on our side.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait_closed(), close_grace)
            return CommandResult(
                argv, -1, str(exc.stdout or ""), str(exc.stderr or ""), timed_out=True
            )
        returncode = done.returncode if done.returncode is not None else 255
        return CommandResult(argv, returncode, str(done.stdout or ""), str(done.stderr or ""))
