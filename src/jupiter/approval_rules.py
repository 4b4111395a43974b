"""The approval stage's decision, as one pure function.

The remediation workflow's ``approval`` stage calls :func:`decide_approval`
with the remediation's facts and the approvals recorded so far; it returns
what the stage should do (wait, proceed, stop), which approvals count, which
are void, the computed checklist, and whether a reminder or an escalation
is due. :func:`check_approval` vets one new approve/reject before it is
recorded (a refusal is one sentence, to be raised as PermissionDenied and
audited). Nothing here touches the store: the caller loads the facts, and
records the outcome and its audit entry in one transaction.

Rules (the numbers come from the policy's ``remediation`` decision):

* approvals are bound to the **plan hash**: one given for another hash is
  void (the plan changed: re-plan, drift, a finding added);
* N of M: ``required_approvals`` distinct users, each holding one of
  ``approver_roles`` for the remediation's asset scope;
* separation of duties: the requester, the plan's authors (including a
  custom script's author) and whoever approved an exception for it cannot
  approve;
* one rejection by an eligible approver rejects;
* expiry (default 72 h after the request): ``expired``, nothing deploys;
* reminders every 4 h while pending; escalation after 24 h to the next role;
* the checklist is computed from facts; an admin may override a failed item
  only with a written reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Outcome = Literal["auto_approved", "approved", "rejected", "pending", "expired", "blocked"]

CHECKLIST = (
    ("staging_tests", "all staging tests passed"),
    ("performance", "no performance degradation"),
    ("rollback_rehearsal", "rollback rehearsal verified"),
    ("compliance", "compliance requirements met"),
    ("change_ticket", "change ticket created"),
)


@dataclass(frozen=True)
class Override:
    item: str
    by: str
    by_roles: frozenset[str]
    reason: str


@dataclass(frozen=True)
class RemediationFacts:
    id: int
    plan_hash: str
    requested_by: str
    requested_at: datetime
    auto_approve: bool
    required_approvals: int
    approver_roles: frozenset[str]
    plan_authors: frozenset[str] = frozenset()
    exception_approvers: frozenset[str] = frozenset()
    # Checklist facts: None = not known yet (pending), True/False = computed.
    staging_tests: bool | None = None
    performance: bool | None = None
    rollback_rehearsal: bool | None = None
    compliance: bool | None = None
    change_ticket: bool | None = None
    ticket_integration: bool = False
    measured: frozenset[str] = frozenset(
        {"staging_tests", "performance", "rollback_rehearsal", "compliance"}
    )
    """Checklist items the workflow measures; the others are not required."""
    overrides: tuple[Override, ...] = ()
    expires_after: timedelta = timedelta(hours=72)
    remind_every: timedelta = timedelta(hours=4)
    escalate_after: timedelta = timedelta(hours=24)
    escalate_to: str = "admin"
    last_reminder_at: datetime | None = None
    escalated: bool = False


@dataclass(frozen=True)
class Approval:
    user: str
    roles: frozenset[str]
    """The roles the user holds for the remediation's asset scope."""
    plan_hash: str
    verdict: Literal["approve", "reject"]
    at: datetime
    comment: str = ""


@dataclass(frozen=True)
class ChecklistItem:
    item: str
    label: str
    status: Literal["passed", "failed", "pending", "not_required", "overridden"]
    detail: str = ""


@dataclass
class ApprovalDecision:
    outcome: Outcome
    counted: list[str] = field(default_factory=list)
    void: list[str] = field(default_factory=list)
    """Approvals given for another plan hash."""
    ignored: dict[str, str] = field(default_factory=dict)
    """Approvals that do not count, and why (SoD, role)."""
    missing: int = 0
    checklist: list[ChecklistItem] = field(default_factory=list)
    remind: bool = False
    escalate_to: str | None = None
    expires_at: datetime | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def may_deploy(self) -> bool:
        return self.outcome in ("approved", "auto_approved")


def barred(facts: RemediationFacts, user: str) -> str | None:
    """Why ``user`` may not approve (separation of duties), or None."""
    if user == facts.requested_by:
        return "requested it"
    if user in facts.plan_authors:
        return "authored the plan or a script it runs"
    if user in facts.exception_approvers:
        return "approved an exception for it"
    return None


def checklist(facts: RemediationFacts) -> list[ChecklistItem]:
    overrides = {o.item: o for o in facts.overrides if "admin" in o.by_roles and o.reason.strip()}
    out = []
    for item, label in CHECKLIST:
        value = getattr(facts, item)
        if item == "change_ticket" and not facts.ticket_integration:
            out.append(ChecklistItem(item, label, "not_required", "no ticket integration"))
        elif item != "change_ticket" and item not in facts.measured:
            out.append(
                ChecklistItem(item, label, "not_required", "no stage of the workflow measures it")
            )
        elif value is True:
            out.append(ChecklistItem(item, label, "passed"))
        elif value is False and item in overrides:
            o = overrides[item]
            out.append(ChecklistItem(item, label, "overridden", f"{o.by}: {o.reason}"))
        elif value is False:
            out.append(ChecklistItem(item, label, "failed"))
        else:
            out.append(ChecklistItem(item, label, "pending"))
    return out


def decide_approval(
    facts: RemediationFacts, approvals: list[Approval], now: datetime
) -> ApprovalDecision:
    """What the approval stage does now (see the module's rules)."""
    expires_at = facts.requested_at + facts.expires_after
    d = ApprovalDecision("pending", expires_at=expires_at, checklist=checklist(facts))
    failed = [c for c in d.checklist if c.status == "failed"]
    pending = [c for c in d.checklist if c.status == "pending"]
    if failed:
        d.outcome = "blocked"
        d.reasons.append("checklist failed: " + ", ".join(c.label for c in failed))
        return d
    if facts.auto_approve:
        d.outcome = "auto_approved" if not pending else "pending"
        d.reasons.append("auto-approved by policy" if not pending else "checklist pending")
        return d
    latest: dict[str, Approval] = {}
    for a in sorted(approvals, key=lambda a: a.at):
        if a.plan_hash != facts.plan_hash:
            d.void.append(a.user)
            continue
        latest[a.user] = a
    for user, a in latest.items():
        why = barred(facts, user)
        if why is None and not (a.roles & facts.approver_roles):
            why = "holds none of the roles " + ", ".join(sorted(facts.approver_roles))
        if why is not None:
            d.ignored[user] = why
            continue
        if a.verdict == "reject":
            d.outcome = "rejected"
            d.reasons.append(f"rejected by {user}" + (f": {a.comment}" if a.comment else ""))
            return d
        d.counted.append(user)
    d.counted.sort()
    d.missing = max(0, facts.required_approvals - len(d.counted))
    if d.missing == 0 and not pending:
        d.outcome = "approved"
        return d
    if now >= expires_at:
        d.outcome = "expired"
        d.reasons.append(f"approval expired at {expires_at.isoformat(timespec='minutes')}")
        return d
    if d.missing:
        d.reasons.append(f"waiting for {d.missing} more approval(s)")
    if pending:
        d.reasons.append("checklist pending: " + ", ".join(c.label for c in pending))
    since = facts.last_reminder_at or facts.requested_at
    d.remind = now - since >= facts.remind_every
    if not facts.escalated and now - facts.requested_at >= facts.escalate_after:
        d.escalate_to = facts.escalate_to
    return d


def check_approval(
    facts: RemediationFacts,
    approvals: list[Approval],
    user: str,
    roles: frozenset[str],
    plan_hash: str,
    now: datetime,
) -> str | None:
    """Why a new approval by ``user`` for ``plan_hash`` must be refused, as
    one sentence; None when it may be recorded."""
    rid = facts.id
    if plan_hash != facts.plan_hash:
        return (
            f"remediation {rid}'s plan changed (hash {facts.plan_hash[:12]}, you reviewed "
            f"{plan_hash[:12]}); review the new diff and approve again"
        )
    if now >= facts.requested_at + facts.expires_after:
        return f"remediation {rid}'s approval request expired; re-request approval"
    why = barred(facts, user)
    if why is not None:
        return f"{user} {why} for remediation {rid} and so cannot approve it (separation of duties)"
    if not roles & facts.approver_roles:
        need = " or ".join(sorted(facts.approver_roles))
        return f"approving remediation {rid} needs the {need} role for its asset"
    if any(a.user == user and a.plan_hash == plan_hash for a in approvals):
        return f"{user} already decided on remediation {rid}'s current plan"
    return None


def facts_from_remediation(
    row: Any, policy: dict[str, Any], script_authors: frozenset[str] = frozenset()
) -> RemediationFacts:
    """:class:`RemediationFacts` of a ``RemediationRow`` and the policy's
    ``remediation`` decision for it. Reads these keys of ``row.facts`` when
    present: ``approval_requested_at`` (ISO; else ``row.updated_at``),
    ``test.ready_for_production``, ``performance_ok``, ``rollback_rehearsed``,
    ``compliance_ok``, ``change_ticket``, ``ticket_integration``,
    ``exception_approvers``, ``overrides``, ``last_reminder_at``, ``escalated``.
    A checklist item is required when its fact is present, and the staging
    tests when the workflow has a ``test`` stage."""
    f: dict[str, Any] = row.facts or {}
    kinds = {st.get("kind") for st in (row.definition or {}).get("stages", [])}
    keys = {
        "staging_tests": "test",
        "performance": "performance_ok",
        "rollback_rehearsal": "rollback_rehearsed",
        "compliance": "compliance_ok",
    }
    measured = {item for item, key in keys.items() if key in f}
    if "test" in kinds:
        measured.add("staging_tests")
    asked = f.get("approval_requested_at")
    test = f.get("test")
    reminded = f.get("last_reminder_at")
    return RemediationFacts(
        id=row.id,
        plan_hash=row.plan_hash,
        requested_by=row.actor,
        requested_at=datetime.fromisoformat(asked) if asked else row.updated_at,
        auto_approve=bool(policy["auto_approve"]),
        required_approvals=int(policy["required_approvals"]),
        approver_roles=frozenset(policy["approver_roles"]),
        plan_authors=frozenset({row.actor}) | script_authors,
        exception_approvers=frozenset(f.get("exception_approvers", [])),
        staging_tests=None if test is None else bool(test.get("ready_for_production")),
        performance=f.get("performance_ok"),
        rollback_rehearsal=f.get("rollback_rehearsed"),
        compliance=f.get("compliance_ok"),
        change_ticket=f.get("change_ticket"),
        ticket_integration=bool(f.get("ticket_integration", False)),
        measured=frozenset(measured),
        overrides=tuple(
            Override(o["item"], o["by"], frozenset(o["by_roles"]), o["reason"])
            for o in f.get("overrides", [])
        ),
        last_reminder_at=datetime.fromisoformat(reminded) if reminded else None,
        escalated=bool(f.get("escalated", False)),
    )


def approvals_from_facts(facts: dict[str, Any]) -> list[Approval]:
    """The verdicts recorded under ``facts["approvals_by"]`` (a list of
    ``{user, roles, plan_hash, verdict, at, comment}``)."""
    return [
        Approval(
            a["user"],
            frozenset(a["roles"]),
            a["plan_hash"],
            a["verdict"],
            datetime.fromisoformat(a["at"]),
            a.get("comment", ""),
        )
        for a in facts.get("approvals_by", [])
    ]
