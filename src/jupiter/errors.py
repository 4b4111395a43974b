"""Jupiter's exception hierarchy.

Every message is one sentence that says what was wrong and what to do about
it; the CLI prints it as is. ``exit_code`` is what a script sees: 2 for bad
input or usage, 1 for a check that ran and failed.
"""

from __future__ import annotations


class JupiterError(Exception):
    """Base of every error Jupiter raises on purpose."""

    exit_code: int = 2
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(JupiterError):
    """A file, argument or value the user gave cannot be used."""


class NotFoundError(InputError):
    """An id or name that does not exist in the workspace."""


class WorkspaceError(JupiterError):
    """The workspace or its database cannot be used."""


class StoreError(WorkspaceError):
    """The database refused or could not be reached."""

    retryable = True


class KeyFileError(WorkspaceError):
    """A workspace key file is missing, damaged or readable by others."""


class SealedDataError(JupiterError):
    """Sealed (encrypted) data failed authentication: it is damaged, was
    altered, or was sealed for another purpose."""

    exit_code = 1


class StoreBusy(StoreError):
    """A concurrent writer held the database past the busy timeout, or the
    database broke a deadlock or a write conflict by aborting this
    transaction: nothing was written, and the whole action can be retried."""


class StoreConflict(StoreError):
    """A unique key was taken by another transaction (or already existed):
    nothing was written; an action that reads before it writes, such as an
    ingest, can run again and find the row."""


class DatabaseDamaged(WorkspaceError):
    """The workspace database file is not a readable database (truncated,
    zeroed, overwritten)."""


class TargetError(JupiterError):
    """A target refused an operation or could not be reached."""

    retryable = True


class UnreachableError(TargetError):
    """The target's host did not accept a connection (refused, timed out,
    unresolvable name): nothing was read or changed there."""


class PathEscapeError(TargetError):
    """A path would lead outside the target's root."""

    retryable = False


class HardLinkRefused(TargetError):
    """A file inside the target has more than one hard link: changing its mode,
    owner or content would also change (or silently split off) its other
    names, which may lie outside the target. Nothing was changed; the step is
    ``needs_manual``."""

    retryable = False


class ConflictError(JupiterError):
    """The target changed since the plan was made; re-plan."""


class ValidationFailed(JupiterError):
    """A validator rejected a candidate before it was applied."""

    exit_code = 1


class VerificationFailed(JupiterError):
    """The finding is still present after the fix was applied."""

    exit_code = 1


class SnapshotError(JupiterError):
    """A snapshot is missing, incomplete or does not match its manifest."""

    exit_code = 1


class Declined(JupiterError):
    """The user answered no when asked to confirm; nothing was changed."""

    exit_code = 1


class PermissionDenied(JupiterError):
    """The actor's role does not allow the action."""
