"""One state machine for runs, run steps, remediations and their targets.

Every state is a :class:`~enum.StrEnum` member (so the stored value is the
plain string it always was), every legal move is listed in one table, and
:func:`transition` is the only way a row's state changes: it refuses an
illegal move and writes the new state and its audit entry in the caller's
transaction, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import ConflictError


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ROLLED_BACK = "rolled_back"
    PARTIALLY_ROLLED_BACK = "partially_rolled_back"
    # A rollback run's own outcomes.
    VERIFIED = "verified"
    MISMATCH = "mismatch"


class StepState(StrEnum):
    PLANNED = "planned"
    APPLYING = "applying"
    VERIFIED = "verified"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    NEEDS_MANUAL = "needs_manual"
    ALREADY_FIXED = "already_fixed"
    # The target changed under the step and re-planning could not catch up.
    CONFLICT = "conflict"


class RemediationState(StrEnum):
    PLANNED = "planned"
    TESTING = "testing"
    TESTED = "tested"
    TEST_FAILED = "test_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    DEPLOYING = "deploying"
    VERIFYING = "verifying"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING_MANUAL = "waiting_manual"
    PAUSED = "paused"


class TargetState(StrEnum):
    """One target's walk through a remediation's deploy (or staging test)."""

    PENDING = "pending"
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"


R, S, M, T = RunState, StepState, RemediationState, TargetState

_ENDED_M = {M.COMPLETED, M.ROLLED_BACK, M.FAILED, M.CANCELLED}
# From every live state a remediation may be cancelled, fail, wait for a
# person or pause; the forward moves are listed per state.
_LIVE_M = {M.CANCELLED, M.FAILED, M.WAITING_MANUAL, M.PAUSED}

TRANSITIONS: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    RunState: {
        # A rollback run ends verified or mismatch; a fix run succeeded or failed.
        R.RUNNING: frozenset({R.SUCCEEDED, R.FAILED, R.INTERRUPTED, R.VERIFIED, R.MISMATCH}),
        R.SUCCEEDED: frozenset({R.ROLLED_BACK, R.PARTIALLY_ROLLED_BACK}),
        R.FAILED: frozenset({R.ROLLED_BACK, R.PARTIALLY_ROLLED_BACK}),
        R.INTERRUPTED: frozenset({R.ROLLED_BACK, R.PARTIALLY_ROLLED_BACK}),
        R.PARTIALLY_ROLLED_BACK: frozenset({R.ROLLED_BACK, R.PARTIALLY_ROLLED_BACK}),
        R.ROLLED_BACK: frozenset(),
        R.VERIFIED: frozenset(),
        R.MISMATCH: frozenset(),
    },
    StepState: {
        S.PLANNED: frozenset(
            {S.APPLYING, S.FAILED, S.CONFLICT, S.NEEDS_MANUAL, S.ALREADY_FIXED, S.ROLLED_BACK}
        ),
        # A retried attempt re-enters applying after a withdrawn conflict.
        S.APPLYING: frozenset(
            {S.APPLYING, S.VERIFIED, S.FAILED, S.ROLLED_BACK, S.CONFLICT, S.ALREADY_FIXED}
            | {S.NEEDS_MANUAL}
        ),
        S.VERIFIED: frozenset({S.ROLLED_BACK}),
        S.FAILED: frozenset(),
        S.ROLLED_BACK: frozenset(),
        S.NEEDS_MANUAL: frozenset(),
        S.ALREADY_FIXED: frozenset(),
        S.CONFLICT: frozenset(),
    },
    RemediationState: {
        M.PLANNED: frozenset({M.TESTING, M.AWAITING_APPROVAL, M.APPROVED, M.DEPLOYING} | _LIVE_M),
        M.TESTING: frozenset({M.TESTED, M.TEST_FAILED} | _LIVE_M),
        M.TESTED: frozenset({M.AWAITING_APPROVAL, M.APPROVED, M.DEPLOYING} | _LIVE_M),
        M.TEST_FAILED: frozenset({M.TESTING, M.CANCELLED, M.FAILED}),
        M.AWAITING_APPROVAL: frozenset({M.APPROVED, M.PLANNED} | _LIVE_M),
        M.APPROVED: frozenset({M.DEPLOYING, M.AWAITING_APPROVAL} | _LIVE_M),
        # A workflow without a verify or health stage completes from deploying.
        M.DEPLOYING: frozenset({M.VERIFYING, M.ROLLED_BACK, M.COMPLETED} | _LIVE_M),
        M.VERIFYING: frozenset({M.COMPLETED, M.ROLLED_BACK, M.DEPLOYING} | _LIVE_M),
        # A person answers, or resume continues, at the stage it waited in.
        M.WAITING_MANUAL: frozenset(
            {M.PLANNED, M.TESTING, M.TESTED, M.APPROVED, M.DEPLOYING, M.VERIFYING}
            | {M.AWAITING_APPROVAL, M.ROLLED_BACK, M.CANCELLED, M.FAILED, M.PAUSED}
        ),
        M.PAUSED: frozenset(
            {M.PLANNED, M.TESTING, M.TESTED, M.APPROVED, M.DEPLOYING, M.VERIFYING}
            | {M.AWAITING_APPROVAL, M.WAITING_MANUAL, M.ROLLED_BACK, M.CANCELLED, M.FAILED}
        ),
        # A finished remediation can still be rolled back by hand.
        M.COMPLETED: frozenset({M.ROLLED_BACK}),
        M.ROLLED_BACK: frozenset(),
        M.FAILED: frozenset({M.ROLLED_BACK}),
        M.CANCELLED: frozenset(),
    },
    TargetState: {
        T.PENDING: frozenset({T.DEPLOYING, T.SKIPPED, T.FAILED}),
        T.DEPLOYING: frozenset({T.DEPLOYED, T.FAILED, T.ROLLING_BACK, T.ROLLED_BACK}),
        T.DEPLOYED: frozenset({T.ROLLING_BACK, T.ROLLED_BACK}),
        T.FAILED: frozenset({T.ROLLING_BACK, T.ROLLED_BACK}),
        T.ROLLING_BACK: frozenset({T.ROLLED_BACK, T.FAILED}),
        T.ROLLED_BACK: frozenset(),
        T.SKIPPED: frozenset(),
    },
}

ENDED_REMEDIATION = frozenset(_ENDED_M)


class IllegalTransition(ConflictError):
    """A state change the transition table does not allow (a bug, or a row
    another process moved on meanwhile)."""


class Stateful(Protocol):
    status: str


def allowed(kind: type[StrEnum], current: str, to: StrEnum) -> bool:
    table = TRANSITIONS[kind]
    try:
        frm = kind(current)
    except ValueError:
        return False
    return to in table.get(frm, frozenset())


def transition(
    session: Session,
    row: Stateful,
    to: StrEnum,
    *,
    actor: str,
    subject: str,
    action: str | None = None,
    facts: Mapping[str, Any] | None = None,
) -> None:
    """Move ``row`` to ``to`` and audit it in the caller's transaction.

    ``action`` defaults to ``<kind>.<state>`` (e.g. ``remediation.approved``);
    ``facts`` go into the audit entry as they are (redacted there).
    Raises :class:`IllegalTransition` for a move the table does not allow.
    """
    kind = type(to)
    if not allowed(kind, row.status, to):
        raise IllegalTransition(
            f"{subject} is {row.status}; it cannot move to {to.value} from there"
        )
    frm = row.status
    row.status = to.value
    name = action or f"{_PREFIX[kind]}.{to.value}"
    audit.record(session, actor, name, subject, {"from": frm, "to": to.value, **(facts or {})})


_PREFIX: dict[type[StrEnum], str] = {
    RunState: "run",
    StepState: "step",
    RemediationState: "remediation",
    TargetState: "target",
}
