"""Atomic, checked writes and removals for :class:`~jupiter.targets.ssh.SSHTarget`
(a mixin): temp file + ``posix-rename``, keeping mode and owner, and with an
:class:`~jupiter.targets.base.Expected` the lost-update protection of
:mod:`._ssh_guard`. Runs on the target's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import secrets
import stat as stat_mod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from jupiter.errors import ConflictError, TargetError
from jupiter.targets import _ssh_guard as ssh_guard
from jupiter.targets._asyncssh import asyncssh
from jupiter.targets.base import Expected, hard_link_refusal, normalise_relpath

if TYPE_CHECKING:
    from jupiter.targets._ssh_session import SSHSession

T = TypeVar("T")
NEW_FILE_MODE = 0o644
_CLEANUP_LIMIT = 2.0  # seconds spent removing a temp file after a failed write


def kind_of(attrs: asyncssh.SFTPAttrs) -> str:
    mode = attrs.permissions or 0
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "symlink"
    return "other"


class SSHWrites:
    """Mixed into SSHTarget, which provides the session and the loop."""

    _session: SSHSession

    if TYPE_CHECKING:

        def describe(self) -> str: ...

        def _call(
            self, what: str, op: Callable[[], Awaitable[T]], timeout: float | None = None
        ) -> T: ...

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
                f"path {rel!r} on {self.describe()} is a {kind_of(old)}, not a regular file; "
                "remove it first or name a file"
            )
        where = self.describe()
        if old is not None:
            # A rename would split the name off its other hard links, which keep
            # the old content (and may lie outside the root): refuse, as locally.
            links = await session.link_count(rel, remote)
            if links > 1:
                raise hard_link_refusal(rel, where, links, "replacing")
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
