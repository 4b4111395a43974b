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
import secrets
import stat as stat_mod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from jupiter.errors import ConflictError, PathEscapeError, TargetError
from jupiter.targets import local_guard as guard
from jupiter.targets.base import (
    CommandResult,
    Expected,
    FileState,
    TargetLockHandle,
    normalise_relpath,
)
from jupiter.targets.local_commands import run_argv
from jupiter.targets.local_io import DIR_FLAGS, ScannedFile, fill_fd, scan_tree
from jupiter.targets.local_lock import flock_dir, noted_owner

NEW_FILE_MODE = 0o644
NEW_DIR_MODE = 0o755


def _kind(st: os.stat_result) -> str:
    if stat_mod.S_ISREG(st.st_mode):
        return "file"
    if stat_mod.S_ISDIR(st.st_mode):
        return "dir"
    if stat_mod.S_ISLNK(st.st_mode):
        return "symlink"
    return "other"


def _what(st: os.stat_result) -> str:
    return {"dir": "directory", "other": "special file"}.get(_kind(st), _kind(st))


class LocalTarget:
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
                f"path {rel!r} on {self.describe()} is a {_what(st)}, not a regular file; "
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
            _kind(st),
            st.st_size,
            stat_mod.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            st.st_ino,
            st.st_mtime_ns,
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
                    f"path {rel!r} on {self.describe()} is a {_what(old)}, not a regular file; "
                    "remove it first or name a file"
                )
            pinned = guard.pin(fd, name, rel, expect, self.describe()) if expect else None
            try:
                if pinned is not None:
                    old = os.fstat(pinned)  # the file we checked is the one we replace
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

    def flush(self) -> None:
        """Make writes done with ``sync=False`` durable (one ``sync(2)``)."""
        os.sync()

    def _keep_owner(self, fd: int, old: os.stat_result, rel: str) -> None:
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError as exc:
            raise TargetError(
                f"cannot keep owner {old.st_uid}:{old.st_gid} of {rel!r} on {self.describe()} "
                "when replacing it; run Jupiter as root or as the file's owner"
            ) from exc

    def _existing_nonlink(self, rel: str, fd: int, name: str) -> os.stat_result:
        st = self._lstat_at(fd, name)
        if st is None:
            raise FileNotFoundError(errno.ENOENT, f"{rel} does not exist on {self.describe()}")
        if stat_mod.S_ISLNK(st.st_mode):
            self._refuse_symlink(rel, fd, name)
        return st

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
                if stat_mod.S_ISLNK(os.fstat(pfd).st_mode):
                    self._refuse_symlink(rel, fd, name)
                os.chmod(f"/proc/self/fd/{pfd}", mode)
            finally:
                os.close(pfd)

    def set_owner(self, path: str, uid: int, gid: int) -> None:
        """Set the owner; needs root unless only the group changes to one of ours."""
        self._check_open()
        rel = normalise_relpath(path)
        real_rel = self._resolve(rel, follow_final=False)
        with self._parent_fd(real_rel) as (fd, name):
            self._existing_nonlink(rel, fd, name)
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
