"""Which audited actions are events people hear about: the declarative map.

``audit.record`` looks every action up here (one dict lookup, so an unmapped
action costs nothing measurable); a mapped one becomes an outbox row per
routed channel in the same transaction as its audit entry. Workflow notify
stages audit ``event.<name>``: those are events ``notify.<name>`` whose
severity the stage gives in its data (``severity``), ``info`` by default.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r}; use one of: {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class Event(NamedTuple):
    name: str
    severity: Severity


INFO, W, H, C = Severity.INFO, Severity.WARNING, Severity.HIGH, Severity.CRITICAL

#: audit action -> (event name, severity). Actions not listed send nothing.
EVENT_MAP: dict[str, Event] = {
    # Fix runs and rollbacks (today's engine).
    "run.succeeded": Event("fix.succeeded", INFO),
    "run.failed": Event("fix.failed", H),
    "run.interrupted": Event("fix.interrupted", H),
    "run.rolled_back": Event("fix.rolled_back", W),
    "run.partially_rolled_back": Event("fix.partially_rolled_back", H),
    "rollback.verified": Event("rollback.verified", W),
    "rollback.mismatch": Event("rollback.mismatch", H),
    "rollback.failed": Event("rollback.failed", C),
    "rollback.refused": Event("rollback.refused", H),
    # Remediation workflows (states.py: remediation.<state>, target.<state>).
    "remediation.planned": Event("remediation.created", INFO),
    "remediation.tested": Event("remediation.tested", INFO),
    "remediation.test_failed": Event("remediation.test_failed", H),
    "remediation.awaiting_approval": Event("remediation.awaiting_approval", INFO),
    "remediation.approved": Event("remediation.approved", INFO),
    "remediation.deploying": Event("remediation.deploy_started", INFO),
    "remediation.completed": Event("remediation.completed", INFO),
    "remediation.rolled_back": Event("remediation.rolled_back", W),
    "remediation.failed": Event("remediation.failed", H),
    "remediation.waiting_manual": Event("remediation.waiting_manual", W),
    "target.failed": Event("target.failed", H),
    "target.rolled_back": Event("target.rolled_back", W),
    # Governance (approvals, exceptions).
    "approval.reminder": Event("approval.reminder", W),
    "approval.escalated": Event("approval.escalated", H),
    "approval.expired": Event("approval.expired", H),
    "approval.auto": Event("approval.auto_approved", INFO),
    "remediation.approve_recorded": Event("approval.recorded", INFO),
    "remediation.reject_recorded": Event("approval.rejected", W),
    "exception.requested": Event("exception.requested", INFO),
    "exception.approved": Event("exception.approved", W),
    "exception.expiring": Event("exception.expiring", W),
    "exception.expired": Event("exception.expired", H),
}

#: Every event name a route may name (plus ``notify.<name>`` of notify stages).
KNOWN_EVENTS: frozenset[str] = frozenset(e.name for e in EVENT_MAP.values())
NOTIFY_PREFIX = "notify."
_NOTIFY_ACTION = "event."


def event_for(action: str, data: dict[str, Any] | None) -> Event | None:
    """The event an audited action raises, or None (the common case)."""
    found = EVENT_MAP.get(action)
    if found is not None or not action.startswith(_NOTIFY_ACTION):
        return found
    raw = (data or {}).get("severity")
    try:
        severity = Severity.parse(raw) if isinstance(raw, str) else INFO
    except ValueError:
        severity = INFO
    return Event(NOTIFY_PREFIX + action[len(_NOTIFY_ACTION) :], severity)
