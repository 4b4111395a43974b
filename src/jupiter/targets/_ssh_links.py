"""Symlinks, directories and sub-roots for :class:`~jupiter.targets.ssh.SSHTarget`
(a mixin), for blue-green slots (:mod:`jupiter.targets.bluegreen`).

A link is replaced atomically the way ``ln -sfn`` cannot: ``ln -s`` makes the
new link at a temp name in the same directory, then ``mv -T`` renames it over
the old link (one ``rename(2)``), so a reader sees the old link or the new
one, never none. Both run as argument vectors through :meth:`SSHTarget.run`
(every word quoted), never as a shell string.
"""

from __future__ import annotations

import asyncio
import errno
import posixpath
import secrets
import stat as stat_mod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from jupiter.errors import TargetError
from jupiter.targets._asyncssh import asyncssh
from jupiter.targets._ssh_writes import kind_of
from jupiter.targets.base import CommandResult, FileState, normalise_relpath
from jupiter.targets.local_links import link_value

if TYPE_CHECKING:
    from jupiter.targets._ssh_session import SSHSession
    from jupiter.targets.ssh import SSHTarget

T = TypeVar("T")
_LINK_COMMAND_TIMEOUT = 30.0


class SSHLinks:
    """Mixed into SSHTarget, which provides the session, the loop and ``run``."""

    _session: SSHSession

    if TYPE_CHECKING:

        def describe(self) -> str: ...

        def _call(
            self, what: str, op: Callable[[], Awaitable[T]], timeout: float | None = None
        ) -> T: ...

        def run(self, argv: list[str], timeout: float) -> CommandResult: ...

        def _child(self, rel: str) -> SSHTarget: ...

    async def _lstat_final(self, rel: str) -> tuple[str, asyncssh.SFTPAttrs | None]:
        return await self._session.resolve(rel, follow_final=False)

    def read_link(self, path: str) -> str:
        """The text of symlink ``path``; FileNotFoundError if absent,
        TargetError if it is not a symlink."""
        rel = normalise_relpath(path)

        async def op() -> str:
            remote, attrs = await self._lstat_final(rel)
            if attrs is None:
                raise FileNotFoundError(
                    errno.ENOENT, f"{rel} does not exist on {self.describe()}", rel
                )
            if not stat_mod.S_ISLNK(attrs.permissions or 0):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {kind_of(attrs)}, not a symlink; "
                    "name a symlink"
                )
            value = await self._session.sftp.readlink(remote)
            assert isinstance(value, str)
            return value

        return self._call(f"reading link {rel}", op)

    def replace_link(self, path: str, value: str) -> None:
        """Make ``path`` a symlink to ``value`` (relative, inside the root)
        atomically with ``ln -s`` at a temp name and ``mv -T`` over ``path``.
        A ``path`` that exists must be a symlink."""
        rel = normalise_relpath(path)
        link_value(rel, value)

        async def op() -> str:
            remote, attrs = await self._lstat_final(rel)
            if attrs is not None and not stat_mod.S_ISLNK(attrs.permissions or 0):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {kind_of(attrs)}, not a symlink; "
                    "Jupiter only replaces symlinks here"
                )
            return remote

        remote = self._call(f"checking link {rel}", op)
        parent, name = posixpath.split(remote)
        tmp = posixpath.join(parent, f".{name}.jupiter-link-{secrets.token_hex(6)}")
        made = self.run(["ln", "-s", "--", value, tmp], _LINK_COMMAND_TIMEOUT)
        if not made.ok:
            raise TargetError(
                f"could not create a symlink next to {rel!r} on {self.describe()} "
                f"({_said(made)}); check the login user's rights there"
            )
        moved = self.run(["mv", "-T", "--", tmp, remote], _LINK_COMMAND_TIMEOUT)
        if not moved.ok:
            self.run(["rm", "-f", "--", tmp], _LINK_COMMAND_TIMEOUT)
            raise TargetError(
                f"could not rename the new symlink over {rel!r} on {self.describe()} "
                f"({_said(moved)}); the host needs GNU or BusyBox mv with -T"
            )

    def make_dir(self, path: str, mode: int = 0o755) -> None:
        """Create directory ``path`` (and missing parents, 0o755) with ``mode``;
        an existing directory just gets ``mode``."""
        rel = normalise_relpath(path)

        async def op() -> None:
            session = self._session
            remote, attrs = await self._lstat_final(rel)
            if attrs is not None and stat_mod.S_ISLNK(attrs.permissions or 0):
                await session.refuse_link(rel, remote)
            remote = await session.ensure_dir(rel)
            await session.sftp.chmod(remote, mode, follow_symlinks=False)

        self._call(f"creating directory {rel}", op)

    def remove_dir(self, path: str) -> None:
        """Remove the empty directory ``path`` (not a symlink to one); absent is fine."""
        rel = normalise_relpath(path)

        async def op() -> None:
            remote, attrs = await self._lstat_final(rel)
            if attrs is None:
                return
            if not stat_mod.S_ISDIR(attrs.permissions or 0):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {kind_of(attrs)}, not a directory; "
                    "remove it as a file"
                )
            try:
                await self._session.sftp.rmdir(remote)
            except asyncssh.SFTPFailure as exc:
                raise TargetError(
                    f"directory {rel!r} on {self.describe()} could not be removed ({exc.reason}); "
                    "empty it first"
                ) from exc

        self._call(f"removing directory {rel}", op)

    def list_tree(self) -> list[FileState]:
        """Every entry below the root (files, directories, symlinks, others)
        with its attributes, sorted by path; symlinks are not followed. One
        round of parallel SFTP listings per directory level."""

        async def op() -> list[FileState]:
            session = self._session
            out: list[FileState] = []
            level = [(session.root_real, "")]
            while level:
                listings = await asyncio.gather(*(session.entries(r) for r, _ in level))
                nxt: list[tuple[str, str]] = []
                for (remote, prefix), entries in zip(level, listings, strict=True):
                    for name, attrs in entries:
                        rel = f"{prefix}/{name}" if prefix else name
                        out.append(state_of(rel, attrs))
                        if stat_mod.S_ISDIR(attrs.permissions or 0):
                            nxt.append((posixpath.join(remote, name), rel))
                level = nxt
            return sorted(out, key=lambda f: f.path)

        return self._call("listing the root", op)

    def sub_target(self, path: str) -> SSHTarget:
        """An SSHTarget rooted at directory ``path`` (not a symlink) below this
        root, on this target's connection: closing it leaves the connection to
        this target, and closing this target ends both."""
        rel = normalise_relpath(path)

        async def op() -> asyncssh.SFTPAttrs | None:
            return (await self._lstat_final(rel))[1]

        attrs = self._call(f"checking {rel}", op)
        if attrs is None or not stat_mod.S_ISDIR(attrs.permissions or 0):
            what = "absent" if attrs is None else f"a {kind_of(attrs)}"
            raise TargetError(
                f"path {rel!r} on {self.describe()} is {what}, not a directory; a sub-target "
                "must be a real directory below the root"
            )
        return self._child(rel)


def state_of(rel: str, attrs: asyncssh.SFTPAttrs) -> FileState:
    """A FileState from SFTP attributes (no inode over SFTP)."""
    mtime_ns = None
    if attrs.mtime is not None:
        mtime_ns = int(attrs.mtime) * 1_000_000_000 + (attrs.mtime_ns or 0) % 1_000_000_000
    return FileState(
        rel,
        kind_of(attrs),
        attrs.size or 0,
        stat_mod.S_IMODE(attrs.permissions or 0),
        attrs.uid if attrs.uid is not None else -1,
        attrs.gid if attrs.gid is not None else -1,
        None,
        mtime_ns,
    )


def _said(result: CommandResult) -> str:
    if result.timed_out:
        return "timed out"
    text = (result.stderr or result.stdout).strip().splitlines()
    return text[-1] if text else f"exit {result.returncode}"
