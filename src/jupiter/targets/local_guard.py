"""Lost-update protection for :class:`~jupiter.targets.local.LocalTarget`:
check-then-replace with a descriptor pinned on the file that was checked.

A rename cannot be made conditional, so the check is done twice:

1. *Before*: open the current file (``O_NOFOLLOW``), keep the descriptor and
   hash its content; refuse (nothing written) unless it is what the caller
   planned from.
2. *After* the rename the checked inode has no name any more, so nobody can
   open it again. Wait until no other process still has it open for writing
   (probed with a read lease, ``F_SETLEASE``: refused while any writer holds
   it), then hash it again through the pinned descriptor. If an edit landed
   on it between the first check and the rename (or through a descriptor
   opened before the rename), that edit is what the caller must not lose:
   it is put back in place of ours and the caller gets a ConflictError.

Where leases are not available (not the file's owner and no CAP_LEASE, or a
filesystem without them) step 2 waits :data:`SETTLE_SECONDS` instead; a
writer holding the old file open longer than that is the remaining window.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import stat as stat_mod
import time

from jupiter.errors import ConflictError
from jupiter.targets.base import Expected

QUIET_LIMIT = 2.0  # seconds to wait for writers of the replaced file to close it
SETTLE_SECONDS = 0.05  # without leases: how long edits may still land after the rename
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def hash_fd(fd: int) -> str:
    """SHA-256 of the whole file behind ``fd`` (read with pread, offset untouched)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def read_fd(fd: int) -> bytes:
    parts: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def pin(dir_fd: int, name: str, rel: str, expect: Expected, where: str) -> int | None:
    """Check ``name`` against ``expect`` and return a read descriptor on the
    file that was checked (``None`` when it is expected absent and is).
    Raises ConflictError when it does not match; nothing is changed."""
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if expect.sha256 is None:
            return None
        raise ConflictError(
            f"{rel} on {where} was removed after it was planned; nothing was written"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise ConflictError(
                f"{rel} on {where} is no longer the regular file it was planned from; "
                "nothing was written"
            ) from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise ConflictError(
                f"{rel} on {where} is no longer the regular file it was planned from; "
                "nothing was written"
            )
        if expect.sha256 is None:
            raise ConflictError(
                f"{rel} on {where} was created by someone else after it was planned; "
                "their file was kept and nothing was written"
            )
        current = hash_fd(fd)
        if current != expect.sha256:
            raise ConflictError(
                f"{rel} on {where} changed after it was planned (now sha256 {current[:12]}, "
                f"planned from {expect.sha256[:12]}); their edit was kept and nothing was written"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def wait_quiet(fd: int, limit: float = QUIET_LIMIT) -> bool:
    """Wait until no other process has the file behind ``fd`` open for
    writing; ``False`` when that cannot be told (no lease) or did not happen
    within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    delay = 0.0005
    while True:
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                time.sleep(SETTLE_SECONDS)  # leases unavailable here: settle instead
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
            continue
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True


def lost_edit(fd: int, expect: Expected) -> bytes | None:
    """After the rename: the content of the replaced file when it no longer
    matches ``expect`` (an edit that would otherwise be lost), else ``None``."""
    wait_quiet(fd)
    data = read_fd(fd)
    if hashlib.sha256(data).hexdigest() == expect.sha256:
        return None
    return data


def link_new(dir_fd: int, tmp: str, name: str, rel: str, where: str) -> None:
    """Give the finished temp file ``name`` only if ``name`` does not exist
    (``link`` fails atomically when it does), then drop the temp name."""
    try:
        os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise ConflictError(
            f"{rel} on {where} was created by someone else after it was planned; their file "
            "was kept and nothing was written"
        ) from None
    os.unlink(tmp, dir_fd=dir_fd)


def keep_aside(dir_fd: int, name: str, data: bytes, mode: int) -> str:
    """Save content that could not be put back to a new file next to
    ``name``; returns the new file's name."""
    aside = f"{name}.jupiter-conflict-{secrets.token_hex(4)}"
    fd = os.open(
        aside,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
        dir_fd=dir_fd,
    )
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode & 0o777)
        os.fsync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)
    return aside
