"""Descriptor-level helpers for :class:`~jupiter.targets.local.LocalTarget`:
the symlink-safe tree scan and the copy loop used by atomic writes."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def kind_of(st: os.stat_result) -> str:
    """``file``, ``dir``, ``symlink`` or ``other``."""
    if stat_mod.S_ISREG(st.st_mode):
        return "file"
    if stat_mod.S_ISDIR(st.st_mode):
        return "dir"
    if stat_mod.S_ISLNK(st.st_mode):
        return "symlink"
    return "other"


def what_of(st: os.stat_result) -> str:
    """The kind in words, for messages."""
    return {"dir": "directory", "other": "special file"}.get(kind_of(st), kind_of(st))


@dataclass(slots=True)  # not frozen: built once per file on hot scans
class ScannedFile:
    """A regular file found by :meth:`LocalTarget.scan`."""

    rel: str
    stat: os.stat_result
    dir_fd: int
    name: str

    def open_fd(self) -> int:
        """Open the file read-only without following a symlink (valid only
        while the scan is still in its directory); the caller closes the fd.
        ``O_NONBLOCK`` keeps a file swapped for a FIFO from blocking us."""
        return os.open(
            self.name,
            os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            dir_fd=self.dir_fd,
        )


def scan_tree(top: int, prefix: str) -> Iterator[ScannedFile]:
    """Yield the regular files below the open directory ``top`` (which this
    generator closes), never following a symlink; paths start with ``prefix``."""
    # Each stack frame: (dir fd, logical path, subdirectories still to visit).
    stack: list[tuple[int, str, list[str]]] = []
    try:
        stack.append((top, prefix, []))
        yield from _scan_dir(top, prefix, stack[-1][2])
        while stack:
            fd, logical, subdirs = stack[-1]
            if not subdirs:
                os.close(fd)
                stack.pop()
                continue
            name = subdirs.pop()
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # swapped for a symlink: never follow
                    continue
                raise
            rel = f"{logical}/{name}" if logical else name
            stack.append((child, rel, []))
            yield from _scan_dir(child, rel, stack[-1][2])
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _scan_dir(fd: int, logical: str, subdirs: list[str]) -> Iterator[ScannedFile]:
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            elif entry.is_file(follow_symlinks=False):
                rel = f"{logical}/{entry.name}" if logical else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield ScannedFile(rel, st, fd, entry.name)


def fill_fd(fd: int, chunks: BinaryIO | list[bytes]) -> None:
    """Write byte strings, or everything readable from an unread binary file
    (copied in the kernel with copy_file_range when possible), to ``fd``."""
    if isinstance(chunks, list):
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        return
    try:
        src = chunks.fileno()
    except (AttributeError, OSError):
        src = -1
    if src >= 0 and chunks.tell() == 0:
        try:
            while os.copy_file_range(src, fd, CHUNK * 8):
                pass
            return
        except OSError as exc:
            # Not supported between these files: fall back to copying
            # through user space from where the kernel stopped.
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            chunks.seek(os.lseek(src, 0, os.SEEK_CUR))
    while True:
        chunk = chunks.read(CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]
