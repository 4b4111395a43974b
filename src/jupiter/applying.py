"""Applying a plan's changes to a target, each file change only while the
file is still what the plan was made from (see ``docs/reliability.md``)."""

from __future__ import annotations

from jupiter.errors import ConflictError, TargetError
from jupiter.plans import Plan, RemoveFile, RunCommand, SetMode, WriteFile, sha256_bytes
from jupiter.preconditions import expected_before
from jupiter.redact import redact
from jupiter.targets.base import CommandResult, Target, TargetView, normalise_relpath


class CommandFailed(TargetError):
    """A plan's command failed; carries every command result so far."""

    retryable = False

    def __init__(self, message: str, outputs: list[CommandResult]) -> None:
        super().__init__(message)
        self.outputs = outputs


def outputs_text(outputs: list[CommandResult]) -> str:
    """Command output for the run record: redacted and bounded."""
    parts = []
    for res in outputs:
        status = f"exit {res.returncode}" + (", timed out" if res.timed_out else "")
        parts.append(
            f"$ {' '.join(res.argv)}\n[{status}]\n{res.stdout[-4000:]}{res.stderr[-4000:]}"
        )
    return str(redact("\n".join(parts)))


def still_applies(target: TargetView, plan: Plan) -> bool:
    try:
        check_preconditions(target, plan)
    except ConflictError:
        return False
    return True


def check_preconditions(target: TargetView, plan: Plan) -> None:
    """Refuse a plan whose files changed since it was made."""
    for change in plan.changes:
        if isinstance(change, WriteFile | RemoveFile):
            try:
                current: str | None = sha256_bytes(target.read_bytes(change.path))
            except FileNotFoundError:
                current = None
            if current != change.before_sha256:
                raise ConflictError(
                    f"{change.path} changed since the plan was made; nothing was applied — "
                    "plan again"
                )


class PartlyApplied(ConflictError):
    """A change met a concurrent edit after earlier changes of the same plan
    were written; ``written`` names those paths."""

    def __init__(self, message: str, written: list[str]) -> None:
        super().__init__(message)
        self.written = written


def apply_plan(target: Target, plan: Plan) -> list[CommandResult]:
    """Apply every change in order (the caller snapshotted first); returns
    the results of the commands it ran. Each file write and removal happens
    only while the file is still what the plan was made from (ConflictError
    otherwise; PartlyApplied when earlier changes were already written)."""
    outputs: list[CommandResult] = []
    written: list[str] = []
    try:
        for change in plan.changes:
            _apply_one(target, change, outputs)
            if isinstance(change, WriteFile | RemoveFile | SetMode):
                written.append(normalise_relpath(change.path))
            else:
                written.extend(normalise_relpath(p) for p in change.paths)
    except ConflictError as exc:
        if written:
            raise PartlyApplied(str(exc), written) from exc
        raise
    return outputs


def _apply_one(
    target: Target,
    change: WriteFile | RemoveFile | SetMode | RunCommand,
    outputs: list[CommandResult],
) -> None:
    if isinstance(change, WriteFile):
        target.write_bytes(
            change.path, change.content.encode(), change.mode, expect=expected_before(change)
        )
    elif isinstance(change, RemoveFile):
        if change.before_sha256 is None:
            target.remove(change.path)
        else:
            target.remove(change.path, expect=expected_before(change))
    elif isinstance(change, SetMode):
        target.set_mode(change.path, change.mode)
        if change.uid is not None or change.gid is not None:
            state = target.stat(change.path)
            if state is None:
                raise TargetError(f"{change.path} disappeared while it was being changed")
            target.set_owner(
                change.path,
                change.uid if change.uid is not None else state.uid,
                change.gid if change.gid is not None else state.gid,
            )
    elif isinstance(change, RunCommand):
        res = target.run(change.argv, change.timeout)
        outputs.append(res)
        if not res.ok:
            why = "timed out" if res.timed_out else f"exited {res.returncode}"
            last = (res.stderr.strip().splitlines() or [""])[-1][:300]
            what = change.description or change.argv[0]
            raise CommandFailed(f"{what} {why}: {redact(last)}", outputs)


__all__ = [
    "CommandFailed",
    "PartlyApplied",
    "apply_plan",
    "check_preconditions",
    "outputs_text",
    "still_applies",
]
