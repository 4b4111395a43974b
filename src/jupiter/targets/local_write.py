"""Atomic, checked writes and removals for :class:`~jupiter.targets.local.LocalTarget`
(a mixin): temp file + rename, keeping mode and owner, and with an
:class:`~jupiter.targets.base.Expected` the lost-update protection of
:mod:`.local_guard`."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat as stat_mod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, BinaryIO

from jupiter.errors import ConflictError, TargetError
from jupiter.faults import checkpoint
from jupiter.targets import local_guard as guard
from jupiter.targets.base import Expected, normalise_relpath
from jupiter.targets.local_io import fill_fd, what_of

NEW_FILE_MODE = 0o644


class LocalWrites:
    """Mixed into LocalTarget, which provides the path machinery below."""

    if TYPE_CHECKING:

        def describe(self) -> str: ...

        def _check_open(self) -> None: ...

        def _resolve(self, rel: str, *, follow_final: bool) -> str: ...

        def _parent_fd(
            self, real_rel: str, *, create: bool = False
        ) -> AbstractContextManager[tuple[int, str]]: ...

        def _lstat_at(self, fd: int, name: str) -> os.stat_result | None: ...

        def _refuse_symlink(self, rel: str, fd: int, name: str) -> None: ...

        def _refuse_hard_link(self, rel: str, st: os.stat_result, action: str) -> None: ...

    def write_bytes(
        self, path: str, data: bytes, mode: int | None = None, *, expect: Expected | None = None
    ) -> None:
        self.write_stream(path, [data], mode, expect=expect)

    def write_stream(
        self,
        path: str,
        chunks: BinaryIO | list[bytes],
        mode: int | None = None,
        *,
        sync: bool = True,
        expect: Expected | None = None,
    ) -> None:
        """Atomically replace ``path`` with the concatenated ``chunks`` (a list
        of byte strings, or a binary file object: copied in the kernel when
        possible, else read in 1 MiB pieces).

        Temp file in the same directory, fsync, rename, fsync of the directory.
        Keeps mode and owner of an existing file when ``mode`` is ``None``.
        Bulk writers pass ``sync=False`` and call :meth:`flush` once at the end.
        With ``expect`` the replace happens only while the path still matches
        it, checked before and after the rename (:mod:`.local_guard`); a
        mismatch raises ConflictError with the other party's content in place.
        """
        self._replace(normalise_relpath(path), chunks, mode, sync, expect, compensate=True)

    def _replace(
        self,
        rel: str,
        chunks: BinaryIO | list[bytes],
        mode: int | None,
        sync: bool,
        expect: Expected | None,
        *,
        compensate: bool,
    ) -> None:
        self._check_open()
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel, create=True) as (fd, name):
            old = self._lstat_at(fd, name)
            if old is not None and stat_mod.S_ISLNK(old.st_mode):
                self._refuse_symlink(rel, fd, name)
            if old is not None and not stat_mod.S_ISREG(old.st_mode):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {what_of(old)}, not a regular file; "
                    "remove it first or name a file"
                )
            if old is not None:
                self._refuse_hard_link(rel, old, "replacing")
            pinned = guard.pin(fd, name, rel, expect, self.describe()) if expect else None
            try:
                if pinned is not None:
                    old = os.fstat(pinned)  # the file we checked is the one we replace
                    self._refuse_hard_link(rel, old, "replacing")
                ours = self._fill_temp_and_move(fd, name, rel, chunks, mode, sync, old, expect)
                if pinned is None:
                    return
                assert expect is not None
                theirs = guard.lost_edit(pinned, expect)
                if theirs is None:
                    return
                theirs_mode = stat_mod.S_IMODE(os.fstat(pinned).st_mode)
            finally:
                if pinned is not None:
                    os.close(pinned)
            self._put_back(fd, name, rel, theirs, theirs_mode, ours, compensate)

    def _fill_temp_and_move(
        self,
        fd: int,
        name: str,
        rel: str,
        chunks: BinaryIO | list[bytes],
        mode: int | None,
        sync: bool,
        old: os.stat_result | None,
        expect: Expected | None,
    ) -> str:
        """Write the temp file and move it over ``name``; returns its hash
        when ``expect`` is given (needed to withdraw it), else ``""``."""
        tmp = f".{name}.jupiter-{secrets.token_hex(6)}.tmp"
        # O_RDWR: with ``expect`` the content is hashed back before the rename.
        tmp_fd = os.open(
            tmp,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=fd,
        )
        ours = ""
        try:
            try:
                fill_fd(tmp_fd, chunks)
                if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                    self._keep_owner(tmp_fd, old, rel)
                # chmod after chown: chown clears setuid/setgid bits.
                if mode is not None:
                    final_mode = mode
                elif old is not None:
                    final_mode = stat_mod.S_IMODE(old.st_mode)
                else:
                    final_mode = NEW_FILE_MODE
                os.fchmod(tmp_fd, final_mode)
                if sync or expect is not None:
                    os.fsync(tmp_fd)
                if expect is not None:
                    ours = guard.hash_fd(tmp_fd)
            finally:
                os.close(tmp_fd)
            checkpoint("target.before_rename")
            if expect is not None and expect.sha256 is None:
                guard.link_new(fd, tmp, name, rel, self.describe())
            else:
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise
        if sync or expect is not None:
            os.fsync(fd)
        return ours

    def _put_back(
        self,
        fd: int,
        name: str,
        rel: str,
        theirs: bytes,
        theirs_mode: int,
        ours: str,
        compensate: bool,
    ) -> None:
        """An edit landed on the file we replaced: withdraw our content and
        put theirs back (only while ours is still what is there)."""
        if compensate:
            try:
                self._replace(rel, [theirs], theirs_mode, True, Expected(ours), compensate=False)
            except ConflictError:
                pass
            else:
                raise ConflictError(
                    f"{rel} on {self.describe()} was edited by someone else while Jupiter "
                    "replaced it; their version was put back and Jupiter's change withdrawn"
                )
        aside = guard.keep_aside(fd, name, theirs, theirs_mode)
        raise ConflictError(
            f"{rel} on {self.describe()} was edited by two parties while Jupiter replaced it; "
            f"the version Jupiter replaced, with its edit, is saved as {aside} next to it — "
            "merge it by hand"
        )

    def _keep_owner(self, fd: int, old: os.stat_result, rel: str) -> None:
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError as exc:
            raise TargetError(
                f"cannot keep owner {old.st_uid}:{old.st_gid} of {rel!r} on {self.describe()} "
                "when replacing it; run Jupiter as root or as the file's owner"
            ) from exc

    def _remove_checked(self, fd: int, name: str, rel: str, expect: Expected) -> None:
        pinned = guard.pin(fd, name, rel, expect, self.describe())
        if pinned is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
            os.fsync(fd)
            theirs = guard.lost_edit(pinned, expect)
            if theirs is None:
                return
            theirs_mode = stat_mod.S_IMODE(os.fstat(pinned).st_mode)
        finally:
            os.close(pinned)
        try:
            self._replace(rel, [theirs], theirs_mode, True, Expected(None), compensate=False)
        except ConflictError:
            aside = guard.keep_aside(fd, name, theirs, theirs_mode)
            raise ConflictError(
                f"{rel} on {self.describe()} was edited while Jupiter removed it and recreated "
                f"meanwhile; the edited version is saved as {aside} — merge it by hand"
            ) from None
        raise ConflictError(
            f"{rel} on {self.describe()} was edited by someone else while Jupiter removed it; "
            "their version was put back"
        )
