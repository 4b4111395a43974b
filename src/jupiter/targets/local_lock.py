"""The lock a local target carries: ``flock(LOCK_EX)`` on its root directory.

``flock`` locks belong to the open file description, so two Jupiter
processes (of one workspace or of two) exclude each other, and so does
anything else that uses ``flock(1)`` on the same directory — which is what
the SSH target runs on a remote host. The kernel drops the lock when the
process dies: a crashed run never leaves it behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

_POLL = 0.05


OWNER_XATTR = "user.jupiter.lock"
"""Where the holder notes who it is, on the locked directory itself: outside
the tree (no file appears in scans, snapshots or ``git status``)."""


class FlockHandle:
    """A held ``flock`` on a directory; :meth:`release` (or process exit) ends it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._noted = False

    def alive(self) -> bool:
        return self._fd is not None

    def note(self, owner: str) -> None:
        if self._fd is None:
            return
        try:
            os.setxattr(self._fd, OWNER_XATTR, owner.encode()[:4000])
            self._noted = True
        except OSError:
            pass  # no user xattrs here: contenders get a less detailed message

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._noted:
                with contextlib.suppress(OSError):
                    os.removexattr(fd, OWNER_XATTR)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def noted_owner(path: Path) -> str | None:
    """What the current holder noted on ``path`` (``None``: nothing noted)."""
    try:
        return os.getxattr(path, OWNER_XATTR).decode(errors="replace") or None
    except OSError:
        return None


def flock_dir(path: Path, timeout: float) -> FlockHandle | None:
    """Lock ``path`` exclusively, polling up to ``timeout`` seconds; ``None``
    when another process holds it that long."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = time.monotonic() + max(timeout, 0.0)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return FlockHandle(fd)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.close(fd)
                return None
            time.sleep(min(_POLL, remaining))
    except BaseException:
        # Closing releases a lock we may have just taken; harmless otherwise.
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
