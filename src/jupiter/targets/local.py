"""A target rooted at a local directory.

Every path is relative to the root. Safety rules, in the order they apply:

* :func:`normalise_relpath` refuses absolute paths, ``..`` and NUL bytes.
* Existing components are resolved; a symlink anywhere in the path that leads
  outside the root raises :class:`PathEscapeError`. Symlinks that stay inside
  the root are followed for *reading* (and for parent directories of writes).
* Every mutation then walks the resolved, symlink-free path from the root with
  directory file descriptors and ``O_NOFOLLOW``, so a component swapped for a
  symlink between the check and the write makes the operation fail instead of
  landing outside the root.
* Writes, mode and owner changes refuse a path whose *final* component is a
  symlink, even one pointing inside the root: writing "through" a link would
  change a file other than the one named in the plan. Change the link's target
  path instead. ``remove`` deletes the link itself, never what it points to.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import stat as stat_mod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from jupiter.errors import PathEscapeError, TargetError
from jupiter.targets.base import (
    CommandResult,
    Expected,
    FileState,
    TargetLockHandle,
    hard_link_refusal,
    normalise_relpath,
)
from jupiter.targets.local_commands import run_argv
from jupiter.targets.local_io import DIR_FLAGS, ScannedFile, kind_of, scan_tree, what_of
from jupiter.targets.local_links import LocalLinks
from jupiter.targets.local_lock import flock_dir, noted_owner
from jupiter.targets.local_write import LocalWrites

NEW_DIR_MODE = 0o755


class LocalTarget(LocalWrites, LocalLinks):
    """The :class:`~jupiter.targets.base.Target` protocol on a local directory.

    New files get mode 0o644 and new parent directories 0o755 when no mode is
    given. ``run`` executes an argument vector (no shell) in the root with only
    ``PATH`` and ``LANG=C.UTF-8`` in its environment; a command that is not
    installed yields return code 127, as it would over SSH.
    """

    def __init__(self, root: Path) -> None:
        root = Path(root)
        if not root.is_dir():
            raise TargetError(
                f"target root {root} does not exist; create the directory or fix the path"
            )
        self._root = Path(os.path.realpath(root))
        self._closed = False

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        return self._root

    def describe(self) -> str:
        return f"local:{self._root}"

    # -- path resolution -------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TargetError(f"target {self.describe()} is closed; open a new LocalTarget")
        if not os.path.isdir(self._root):
            # Without this, a vanished root reads as "every file is absent".
            raise TargetError(
                f"target root {self._root} has disappeared; check the host or mount, then run again"
            )

    def _inside(self, real: str) -> str | None:
        """``real`` relative to the root, or ``None`` when it lies outside."""
        root = str(self._root)
        if real == root:
            return ""
        if real.startswith(root.rstrip("/") + "/"):
            return real[len(root.rstrip("/")) + 1 :]
        return None

    def _resolve(self, rel: str, *, follow_final: bool) -> str:
        """Resolve symlinks in ``rel`` and return the root-relative real path.

        With ``follow_final=False`` only the parent directories are resolved
        (lstat semantics). Raises PathEscapeError when a symlink leads outside.
        """
        parent, _, name = rel.rpartition("/")
        if follow_final:
            real = os.path.realpath(self._root / rel)
            inside = self._inside(real)
            if inside is None:
                raise PathEscapeError(
                    f"path {rel!r} on {self.describe()} resolves through a symlink to {real}, "
                    "outside the target root; remove the symlink or use a path inside the root"
                )
            return inside
        if not parent:
            return name
        real_parent = os.path.realpath(self._root / parent)
        inside = self._inside(real_parent)
        if inside is None:
            raise PathEscapeError(
                f"directory {parent!r} of path {rel!r} on {self.describe()} resolves through a "
                f"symlink to {real_parent}, outside the target root; use a path inside the root"
            )
        return f"{inside}/{name}" if inside else name

    @contextlib.contextmanager
    def _parent_fd(self, real_rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """Open the parent directory of a resolved path without following any
        symlink, yielding ``(dir_fd, final_name)``; optionally create missing
        directories (0o755)."""
        parts = real_rel.split("/")
        fd = os.open(self._root, DIR_FLAGS)
        try:
            for part in parts[:-1]:
                try:
                    nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, NEW_DIR_MODE, dir_fd=fd)
                    nxt = self._open_dir_nofollow(part, fd, real_rel)
                except OSError as exc:
                    # O_NOFOLLOW|O_DIRECTORY on a symlink fails with ELOOP or
                    # ENOTDIR depending on the kernel: look at what is there.
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and self._is_link_at(fd, part):
                        raise TargetError(
                            f"directory {part!r} of {real_rel!r} on {self.describe()} turned into "
                            "a symlink while being accessed; check the target and retry"
                        ) from exc
                    if exc.errno == errno.ENOTDIR and create:
                        raise TargetError(
                            f"component {part!r} of {real_rel!r} on {self.describe()} is a file, "
                            "not a directory; remove it or choose another path"
                        ) from exc
                    raise
                os.close(fd)
                fd = nxt
            yield fd, parts[-1]
        finally:
            os.close(fd)

    @staticmethod
    def _is_link_at(fd: int, name: str) -> bool:
        try:
            return stat_mod.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _open_dir_nofollow(self, part: str, fd: int, real_rel: str) -> int:
        try:
            return os.open(part, DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise TargetError(
                f"directory {part!r} of {real_rel!r} on {self.describe()} could not be opened "
                f"after creating it ({exc.strerror}); check the target and retry"
            ) from exc

    def _lstat_at(self, fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _refuse_symlink(self, rel: str, fd: int, name: str) -> None:
        target = os.readlink(name, dir_fd=fd)
        real = os.path.realpath(self._root / rel)
        if self._inside(real) is None:
            raise PathEscapeError(
                f"path {rel!r} on {self.describe()} is a symlink to {target}, outside the target "
                "root; Jupiter does not write through symlinks"
            )
        raise TargetError(
            f"path {rel!r} on {self.describe()} is a symlink to {target}; Jupiter does not write "
            "through symlinks, so name the file it points to instead"
        )

    # -- reading ---------------------------------------------------------

    def open_read(self, path: str) -> BinaryIO:
        """Open a regular file for streaming reads (the caller closes it).

        Follows symlinks that stay inside the root; FileNotFoundError if absent.
        """
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=True)
        if not real_rel:
            raise TargetError(f"path {rel!r} on {self.describe()} is the root directory")
        with self._parent_fd(real_rel) as (fd, name):
            try:
                # O_NONBLOCK: a FIFO planted here must not hang us; fstat rejects it.
                file_fd = os.open(
                    name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise TargetError(
                        f"path {rel!r} on {self.describe()} changed into a symlink while being "
                        "read; retry"
                    ) from exc
                raise
        st = os.fstat(file_fd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(file_fd)
            raise TargetError(
                f"path {rel!r} on {self.describe()} is a {what_of(st)}, not a regular file; "
                "name a file"
            )
        return os.fdopen(file_fd, "rb")

    def lstat(self, path: str) -> os.stat_result | None:
        """The raw ``lstat`` of ``path`` (parents resolved inside the root, the
        final component not followed), or ``None`` if absent. Snapshots use the
        inode and timestamps to skip re-reading unchanged files."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        try:
            with self._parent_fd(real_rel) as (fd, name):
                return self._lstat_at(fd, name)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_bytes(self, path: str) -> bytes:
        with self.open_read(path) as fh:
            return fh.read()

    def stat(self, path: str) -> FileState | None:
        rel = normalise_relpath(path)
        st = self.lstat(rel)
        if st is None:
            return None
        return FileState(
            rel,
            kind_of(st),
            st.st_size,
            stat_mod.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            st.st_ino,
            st.st_mtime_ns,
            st.st_nlink,
        )

    def glob(self, pattern: str) -> list[str]:
        """Paths of any kind matching ``pattern`` one segment at a time; ``*``
        also matches names starting with a dot. Symlinked directories leading
        outside the root are not descended into."""
        self._check_open()
        segments = normalise_relpath(pattern).split("/")
        found: list[str] = []
        frontier = [""]
        for depth, seg in enumerate(segments):
            last = depth == len(segments) - 1
            nxt: list[str] = []
            for prefix in frontier:
                base = self._root / prefix if prefix else self._root
                real = self._inside(os.path.realpath(base))
                if real is None:
                    continue
                try:
                    names = sorted(os.listdir(base))
                except (FileNotFoundError, NotADirectoryError, PermissionError):
                    continue
                for name in names:
                    if not fnmatch.fnmatchcase(name, seg):
                        continue
                    child = f"{prefix}/{name}" if prefix else name
                    if last:
                        found.append(child)
                    elif os.path.isdir(self._root / child):
                        nxt.append(child)
            frontier = nxt
        return sorted(found)

    def walk(self, under: str = "") -> list[str]:
        """Every regular file (not symlinks) below ``under``, sorted; symlinked
        directories are not descended into."""
        return sorted(item.rel for item in self.scan(under))

    def scan(self, under: str = "") -> Iterator[ScannedFile]:
        """Yield every regular file below ``under`` with its ``lstat``, in no
        particular order, walking with directory descriptors so a directory
        swapped for a symlink mid-walk is never followed. Each item's
        :meth:`ScannedFile.open_fd` works only until the iterator moves on to
        another directory."""
        self._check_open()
        prefix = normalise_relpath(under) if under else ""
        start = self._resolve(prefix, follow_final=True) if prefix else ""
        if start:
            try:
                with self._parent_fd(start) as (parent, name):
                    top = os.open(name, DIR_FLAGS, dir_fd=parent)
            except (FileNotFoundError, NotADirectoryError):
                return iter(())
        else:
            top = os.open(self._root, DIR_FLAGS)
        return scan_tree(top, prefix)

    # -- writing ---------------------------------------------------------

    def flush(self) -> None:
        """Make writes done with ``sync=False`` durable (one ``sync(2)``)."""
        os.sync()

    def _existing_nonlink(self, rel: str, fd: int, name: str) -> os.stat_result:
        st = self._lstat_at(fd, name)
        if st is None:
            raise FileNotFoundError(errno.ENOENT, f"{rel} does not exist on {self.describe()}")
        if stat_mod.S_ISLNK(st.st_mode):
            self._refuse_symlink(rel, fd, name)
        return st

    def _refuse_hard_link(self, rel: str, st: os.stat_result, action: str) -> None:
        """Refuse to change a non-directory with several hard links: mode,
        owner and in-place content belong to the inode, so the change would
        reach every other name of it, inside the root or not. (A directory's
        link count is its subdirectories and says nothing of the kind.)"""
        if st.st_nlink > 1 and not stat_mod.S_ISDIR(st.st_mode):
            raise hard_link_refusal(rel, self.describe(), st.st_nlink, action)

    def set_mode(self, path: str, mode: int) -> None:
        """Set permission bits (including setuid/setgid/sticky) of a file or directory."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel) as (fd, name):
            self._existing_nonlink(rel, fd, name)
            # An O_PATH descriptor pins the inode we checked; chmod through
            # /proc/self/fd cannot be redirected by a symlink swapped in later.
            pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                pinned = os.fstat(pfd)
                if stat_mod.S_ISLNK(pinned.st_mode):
                    self._refuse_symlink(rel, fd, name)
                self._refuse_hard_link(rel, pinned, "changing the mode of")
                os.chmod(f"/proc/self/fd/{pfd}", mode)
            finally:
                os.close(pfd)

    def set_owner(self, path: str, uid: int, gid: int) -> None:
        """Set the owner; needs root unless only the group changes to one of ours."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel) as (fd, name):
            st = self._existing_nonlink(rel, fd, name)
            self._refuse_hard_link(rel, st, "changing the owner of")
            try:
                # follow_symlinks=False: never changes what a swapped-in link points to.
                os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
            except PermissionError as exc:
                raise TargetError(
                    f"cannot set owner {uid}:{gid} on {rel!r} on {self.describe()}; "
                    "run Jupiter as root to change ownership"
                ) from exc

    def remove(self, path: str, *, expect: Expected | None = None) -> None:
        """Remove a file, a symlink (the link, not its target) or an empty
        directory; absent is fine. With ``expect`` a regular file is removed
        only while it matches (checked before and after, as for writes)."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        try:
            with self._parent_fd(real_rel) as (fd, name):
                st = self._lstat_at(fd, name)
                if st is None:
                    return
                if stat_mod.S_ISDIR(st.st_mode):
                    try:
                        os.rmdir(name, dir_fd=fd)
                    except OSError as exc:
                        if exc.errno != errno.ENOTEMPTY:
                            raise
                        raise TargetError(
                            f"path {rel!r} on {self.describe()} is a directory that is not "
                            "empty; remove only removes files and empty directories"
                        ) from exc
                elif expect is not None and stat_mod.S_ISREG(st.st_mode):
                    self._remove_checked(fd, name, rel, expect)
                    return
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=fd)
                os.fsync(fd)
        except (FileNotFoundError, NotADirectoryError):
            return

    # -- locking -----------------------------------------------------------

    def acquire_lock(self, timeout: float) -> TargetLockHandle | None:
        """``flock`` the root directory (exclusive), waiting up to ``timeout``
        seconds; ``None`` when another process holds it. The lock is the
        kernel's: it ends with the process, so a crash never leaves it behind."""
        self._check_open()
        return flock_dir(self._root, timeout)

    def lock_owner(self) -> str | None:
        return noted_owner(self._root)

    # -- commands --------------------------------------------------------

    def run(self, argv: list[str], timeout: float) -> CommandResult:
        """Run ``argv`` in the root with a scrubbed environment; see
        :func:`~jupiter.targets.local_commands.run_argv`."""
        self._check_open()
        return run_argv(argv, self._root, timeout)

    def close(self) -> None:
        """Mark the target closed; later calls raise TargetError."""
        self._closed = True
