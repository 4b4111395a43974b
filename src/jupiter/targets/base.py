"""The target protocol: where bytes land.

Every path a target accepts is a POSIX path *relative to the target's root*
(``etc/ssh/sshd_config``). Absolute paths, ``..`` components and symlinks that
resolve outside the root are refused with :class:`PathEscapeError`.

Remediators only ever see a :class:`TargetView` (read-only); the engine holds
the :class:`Target`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from jupiter.errors import HardLinkRefused, PathEscapeError


@dataclass(frozen=True)
class FileState:
    """What a path is right now. ``mode`` holds the permission bits only."""

    path: str
    kind: str  # "file", "dir", "symlink" or "other"
    size: int
    mode: int
    uid: int
    gid: int
    inode: int | None = None
    """Inode number where the target can tell (LocalTarget; not over SFTP)."""
    mtime_ns: int | None = None
    nlink: int | None = None
    """Hard link count where the target can tell cheaply (LocalTarget; not
    over SFTP, where the write itself checks it with ``stat(1)``)."""


def hard_link_refusal(rel: str, where: str, nlink: int, action: str) -> HardLinkRefused:
    """The error for a change to a file that has ``nlink`` names (see
    ``docs/reliability.md``, "Hard links")."""
    return HardLinkRefused(
        f"{rel} on {where} has {nlink} hard links, so {action} it would also change (or split "
        "off) its other names, which may lie outside the target; nothing was changed — replace "
        "the link with a copy (cp --remove-destination) or fix the file by hand"
    )


@dataclass(frozen=True)
class Expected:
    """A write's precondition: the path must still hold content hashing to
    ``sha256`` (a regular file), or be absent when ``sha256`` is ``None``.

    A target given one checks it right before the atomic replace and again,
    on the replaced file itself, after it (see ``docs/reliability.md``); when
    the path changed it raises :class:`~jupiter.errors.ConflictError` and
    leaves the other party's content in place.
    """

    sha256: str | None

    def describe(self) -> str:
        return "absent" if self.sha256 is None else f"sha256 {self.sha256[:12]}"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@runtime_checkable
class TargetView(Protocol):
    """Read-only access to a target: all a remediator or detector may use."""

    def describe(self) -> str:
        """A human-readable name such as ``local:/srv/host1``."""
        ...

    def read_bytes(self, path: str) -> bytes:
        """Content of a regular file; :class:`FileNotFoundError` if missing."""
        ...

    def stat(self, path: str) -> FileState | None:
        """State of ``path`` without following a final symlink; ``None`` if absent."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching a glob pattern (``*``, ``?``, ``[..]``; no ``**``), sorted."""
        ...

    def walk(self, under: str = "") -> list[str]:
        """Every regular file below ``under`` (relative paths, sorted)."""
        ...


@runtime_checkable
class Target(TargetView, Protocol):
    """A view that can also change things."""

    def write_bytes(
        self, path: str, data: bytes, mode: int | None = None, *, expect: Expected | None = None
    ) -> None:
        """Atomically replace ``path`` (temp file + rename); keeps the old mode
        and owner when ``mode`` is ``None`` and the file existed. With
        ``expect``, only if the path still matches it (else ConflictError,
        nothing of ours left in place)."""
        ...

    def set_mode(self, path: str, mode: int) -> None: ...

    def set_owner(self, path: str, uid: int, gid: int) -> None: ...

    def remove(self, path: str, *, expect: Expected | None = None) -> None:
        """Remove a file, a symlink (never its target) or an empty directory;
        no error if it is already absent. With ``expect``, a regular file is
        removed only while it still matches (else ConflictError)."""
        ...

    def run(self, argv: list[str], timeout: float) -> CommandResult:
        """Run an argument vector with the target root as working directory."""
        ...

    def close(self) -> None: ...


class TargetLockHandle(Protocol):
    """An exclusive lock a target carries itself (see :class:`LockableTarget`)."""

    def alive(self) -> bool:
        """Whether the lock is still held (an SSH lock dies with its connection)."""
        ...

    def release(self) -> None:
        """Release the lock; idempotent."""
        ...

    def note(self, owner: str) -> None:
        """Tell later contenders who holds the lock (best effort)."""
        ...


@runtime_checkable
class LockableTarget(Protocol):
    """A target that can carry an exclusive lock, so that Jupiter processes of
    different workspaces or machines exclude each other on it."""

    def describe(self) -> str: ...

    def acquire_lock(self, timeout: float) -> TargetLockHandle | None:
        """Take the target's exclusive lock, waiting up to ``timeout`` seconds
        (0: do not wait); ``None`` when another process holds it."""
        ...

    def lock_owner(self) -> str | None:
        """Who holds the target's lock, as its holder noted it (if known)."""
        ...


def normalise_relpath(path: str) -> str:
    """Validate and normalise a target-relative path, or raise PathEscapeError."""
    if not path or "\x00" in path:
        raise PathEscapeError(f"path {path!r} is empty or contains a NUL byte; use a relative path")
    if path.startswith("/") or path.startswith("\\"):
        raise PathEscapeError(
            f"path {path!r} is absolute; plans must use paths relative to the target root"
        )
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathEscapeError(
            f"path {path!r} contains '..'; plans must stay inside the target root"
        )
    if not parts:
        raise PathEscapeError(f"path {path!r} names the target root itself, not a file inside it")
    return posixpath.join(*parts)
