"""Symlinks, directories and sub-roots for :class:`~jupiter.targets.local.LocalTarget`
(a mixin), for blue-green slots (:mod:`jupiter.targets.bluegreen`).

A link is replaced atomically: a new symlink at a temp name in the same
directory, then ``rename(2)`` over the old one, so a reader sees the old link
or the new one, never none. Every call walks the parent directories with
``O_NOFOLLOW`` descriptors, like the writes in :mod:`.local_write`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import stat as stat_mod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from jupiter.errors import PathEscapeError, TargetError
from jupiter.targets.base import FileState, normalise_relpath
from jupiter.targets.local_io import DIR_FLAGS, kind_of, what_of

if TYPE_CHECKING:
    from jupiter.targets.local import LocalTarget


def link_value(path: str, value: str) -> str:
    """Check a symlink's text for ``path``: relative, and (read lexically
    from the link's directory) naming a path inside the root; PathEscapeError
    otherwise. Returns it unchanged."""
    if not value or value.startswith("/") or "\x00" in value:
        normalise_relpath(value)  # raises with the reason
    named = posixpath.normpath(posixpath.join(posixpath.dirname(path), value))
    if named == ".." or named.startswith("../"):
        raise PathEscapeError(
            f"symlink {path!r} -> {value!r} would lead outside the target root; link to a path "
            "inside it"
        )
    normalise_relpath(named)
    return value


class LocalLinks:
    """Mixed into LocalTarget, which provides the path machinery below."""

    if TYPE_CHECKING:

        @property
        def root(self) -> Path: ...

        def describe(self) -> str: ...

        def _check_open(self) -> None: ...

        def _resolve(self, rel: str, *, follow_final: bool) -> str: ...

        def _parent_fd(
            self, real_rel: str, *, create: bool = False
        ) -> AbstractContextManager[tuple[int, str]]: ...

        def _lstat_at(self, fd: int, name: str) -> os.stat_result | None: ...

        def _refuse_symlink(self, rel: str, fd: int, name: str) -> None: ...

    def read_link(self, path: str) -> str:
        """The text of symlink ``path``; FileNotFoundError if absent,
        TargetError if it is not a symlink."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel) as (fd, name):
            st = self._lstat_at(fd, name)
            if st is None:
                raise FileNotFoundError(f"{rel} does not exist on {self.describe()}")
            if not stat_mod.S_ISLNK(st.st_mode):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {what_of(st)}, not a symlink; "
                    "name a symlink"
                )
            return os.readlink(name, dir_fd=fd)

    def replace_link(self, path: str, value: str) -> None:
        """Make ``path`` a symlink to ``value`` (relative, inside the root)
        atomically: new link at a temp name, then rename over ``path``. A
        ``path`` that exists must be a symlink."""
        self._check_open()
        rel = normalise_relpath(path)
        link_value(rel, value)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel) as (fd, name):
            st = self._lstat_at(fd, name)
            if st is not None and not stat_mod.S_ISLNK(st.st_mode):
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is a {what_of(st)}, not a symlink; "
                    "Jupiter only replaces symlinks here"
                )
            tmp = f".{name}.jupiter-link-{secrets.token_hex(6)}"
            os.symlink(value, tmp, dir_fd=fd)
            try:
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise
            os.fsync(fd)

    def make_dir(self, path: str, mode: int = 0o755) -> None:
        """Create directory ``path`` (and missing parents, 0o755) with ``mode``;
        an existing directory just gets ``mode``."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel, create=True) as (fd, name):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=fd)
            st = self._lstat_at(fd, name)
            if st is None or not stat_mod.S_ISDIR(st.st_mode):
                if st is not None and stat_mod.S_ISLNK(st.st_mode):
                    self._refuse_symlink(rel, fd, name)
                raise TargetError(
                    f"path {rel!r} on {self.describe()} exists and is not a directory; remove it "
                    "or choose another path"
                )
            dfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                os.fchmod(dfd, mode)
            finally:
                os.close(dfd)

    def remove_dir(self, path: str) -> None:
        """Remove the empty directory ``path`` (not a symlink to one); absent is fine."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        try:
            with self._parent_fd(real_rel) as (fd, name):
                st = self._lstat_at(fd, name)
                if st is None:
                    return
                if not stat_mod.S_ISDIR(st.st_mode):
                    raise TargetError(
                        f"path {rel!r} on {self.describe()} is a {what_of(st)}, not a "
                        "directory; remove it as a file"
                    )
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError as exc:
                    raise TargetError(
                        f"directory {rel!r} on {self.describe()} could not be removed "
                        f"({exc.strerror}); empty it first"
                    ) from exc
                os.fsync(fd)
        except (FileNotFoundError, NotADirectoryError):
            return

    def list_tree(self) -> list[FileState]:
        """Every entry below the root (files, directories, symlinks, others)
        with its lstat, sorted by path; symlinks are not followed."""
        self._check_open()
        out: list[FileState] = []
        pending = [("", os.open(self.root, DIR_FLAGS))]
        while pending:
            prefix, fd = pending.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        st = entry.stat(follow_symlinks=False)
                        rel = f"{prefix}/{entry.name}" if prefix else entry.name
                        out.append(
                            FileState(
                                rel,
                                kind_of(st),
                                st.st_size,
                                stat_mod.S_IMODE(st.st_mode),
                                st.st_uid,
                                st.st_gid,
                                st.st_ino,
                                st.st_mtime_ns,
                            )
                        )
                        if stat_mod.S_ISDIR(st.st_mode):
                            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                                pending.append((rel, os.open(entry.name, DIR_FLAGS, dir_fd=fd)))
            finally:
                os.close(fd)
        return sorted(out, key=lambda f: f.path)

    def sub_target(self, path: str) -> LocalTarget:
        """A LocalTarget rooted at directory ``path`` (not a symlink) below this root."""
        from jupiter.targets.local import LocalTarget

        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel) as (fd, name):
            st = self._lstat_at(fd, name)
            if st is None or not stat_mod.S_ISDIR(st.st_mode):
                what = "absent" if st is None else f"a {what_of(st)}"
                raise TargetError(
                    f"path {rel!r} on {self.describe()} is {what}, not a directory; a sub-target "
                    "must be a real directory below the root"
                )
        child = LocalTarget(self.root / real_rel)
        if child.root != self.root / real_rel:  # swapped for a symlink meanwhile
            raise TargetError(
                f"path {rel!r} on {self.describe()} changed into a symlink while being opened; "
                "check the target and retry"
            )
        return child
