"""Approvals of remediations under governance: verdicts bound to the plan
hash, N of M approvers by role from the policy, separation of duties,
expiry, reminders and escalation (the worker's ``approvals`` source).

Each verdict is recorded in the remediation's ``facts["approvals_by"]``
(audited); :func:`jupiter.approval_rules.decide_approval` then says whether
the remediation proceeds — through the workflow's own ``approve`` (or
``cancel`` on a rejection or expiry). :class:`jupiter.engine.Engine`
inherits :class:`Approving`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter import audit, identities
from jupiter.approval_rules import (
    ApprovalDecision,
    approvals_from_facts,
    check_approval,
    decide_approval,
    facts_from_remediation,
)
from jupiter.errors import InputError, NotFoundError, PermissionDenied
from jupiter.permissions import requires
from jupiter.store.tables import (
    AssetRow,
    PolicyDecisionRow,
    RemediationRow,
    RemediationTargetRow,
    utcnow,
)

if TYPE_CHECKING:
    from jupiter.policy import PolicySet
    from jupiter.remediations import Remediations
    from jupiter.store.db import Database

AWAITING = "awaiting_approval"


def _ref(ref: str | int) -> int:
    text = str(ref).strip().upper().removeprefix("REM-")
    if not text.isdigit():
        raise InputError(f"{ref!r} is not a remediation id such as REM-3")
    return int(text)


def _scopes(s: Session, rem_id: int) -> list[identities.Scope]:
    rows = s.execute(
        select(AssetRow.id, AssetRow.group_name, AssetRow.environment)
        .join(RemediationTargetRow, RemediationTargetRow.asset_id == AssetRow.id)
        .where(RemediationTargetRow.remediation_id == rem_id)
    ).all()
    return [identities.Scope(a, g, e) for a, g, e in rows]


def _policy_input(row: RemediationRow, scopes: list[identities.Scope]) -> dict[str, Any]:
    envs = {sc.environment for sc in scopes}
    env = next((e for e in ("prod", "staging", "dev") if e in envs), "dev")
    f = row.facts or {}
    return {
        "asset": {"environment": env},
        "change": {"kind": f.get("change_kind", "config"), "bump": f.get("bump", "none")},
        "finding": {"severity": f.get("severity", "high")},
        "remediation": {"id": row.id, "workflow": row.workflow, "targets": len(scopes)},
    }


def roles_for(s: Session, user: str, scopes: list[identities.Scope]) -> frozenset[str]:
    """The roles ``user`` holds on every asset of the remediation."""
    who = identities.principal(s, user)
    return frozenset(
        g.role for g in who.grants if not g.scoped or all(g.covers(sc) for sc in scopes)
    )


class Approving:
    """Mixed into :class:`jupiter.engine.Engine`."""

    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

        @property
        def policies(self) -> PolicySet: ...

        @property
        def remediations(self) -> Remediations: ...

        def _audit_denied(self, action: str, ref: Any, why: str) -> None: ...

    def _approval_state(
        self, s: Session, rem_id: int, now: datetime
    ) -> tuple[RemediationRow, ApprovalDecision, list[identities.Scope], Any]:
        row = s.get(RemediationRow, rem_id)
        if row is None:
            raise NotFoundError(f"REM-{rem_id} does not exist; see `jupiter approvals list`")
        scopes = _scopes(s, rem_id)
        decision = self.policies.evaluate("remediation", _policy_input(row, scopes))
        facts = facts_from_remediation(row, decision.result)
        return (
            row,
            decide_approval(facts, approvals_from_facts(row.facts), now),
            scopes,
            (
                facts,
                decision,
            ),
        )

    def _summary(self, row: RemediationRow, d: ApprovalDecision, extra: Any) -> dict[str, Any]:
        facts, policy = extra
        return {
            "remediation": f"REM-{row.id}",
            "status": row.status,
            "plan_hash": row.plan_hash,
            "requested_by": row.actor,
            "outcome": d.outcome,
            "required": facts.required_approvals,
            "approver_roles": sorted(facts.approver_roles),
            "counted": d.counted,
            "void": d.void,
            "ignored": d.ignored,
            "missing": d.missing,
            "expires_at": d.expires_at.isoformat(timespec="seconds") if d.expires_at else None,
            "checklist": [c.__dict__ for c in d.checklist],
            "reasons": d.reasons,
            "policy_hash": policy.policy_hash,
            "policy_error": policy.error,
        }

    @requires("remediations.read")
    def list_approvals(self) -> list[dict[str, Any]]:
        """Remediations awaiting approval, with where each stands."""
        now = utcnow()
        with self.db.reading() as s:
            ids = list(
                s.scalars(
                    select(RemediationRow.id)
                    .where(RemediationRow.status == AWAITING)
                    .order_by(RemediationRow.id)
                )
            )
            out = []
            for rem_id in ids:
                row, d, _, extra = self._approval_state(s, rem_id, now)
                out.append(self._summary(row, d, extra))
            return out

    @requires("remediations.read")
    def show_approval(self, ref: str | int) -> dict[str, Any]:
        """One remediation's approval: rules, verdicts, checklist, plan hash."""
        with self.db.reading() as s:
            row, d, _, extra = self._approval_state(s, _ref(ref), utcnow())
            return {**self._summary(row, d, extra), "verdicts": row.facts.get("approvals_by", [])}

    @requires("remediation.approve", scope="ref", kind="remediation")
    def approve_remediation(
        self, ref: str | int, plan_hash: str | None = None, comment: str = "", run: bool = True
    ) -> dict[str, Any]:
        """Approve the plan ``plan_hash`` (default: the current one) of a
        remediation awaiting approval; it proceeds once the policy's quorum
        is met (``run=False`` leaves that to ``jupiter worker``)."""
        return self._verdict(_ref(ref), "approve", plan_hash, comment, run)

    @requires("remediation.approve", scope="ref", kind="remediation")
    def reject_remediation(self, ref: str | int, comment: str = "") -> dict[str, Any]:
        """Reject a remediation awaiting approval: it is cancelled."""
        if not comment.strip():
            raise InputError("a rejection needs a --comment saying why")
        return self._verdict(_ref(ref), "reject", None, comment)

    def _verdict(
        self, rem_id: int, verdict: str, plan_hash: str | None, comment: str, run: bool = True
    ) -> dict[str, Any]:
        now = utcnow()
        with self.db.reading() as s:
            row, _, scopes, (facts, policy) = self._approval_state(s, rem_id, now)
            if row.status != AWAITING:
                raise InputError(f"REM-{rem_id} is {row.status}, not awaiting_approval")
            roles = roles_for(s, self.actor, scopes)
            reviewed = plan_hash or row.plan_hash
            why = check_approval(
                facts, approvals_from_facts(row.facts), self.actor, roles, reviewed, now
            )
        if why is not None:
            self._audit_denied("remediation.approve", f"REM-{rem_id}", why)
            raise PermissionDenied(why)
        entry = {
            "user": self.actor,
            "roles": sorted(roles),
            "plan_hash": reviewed,
            "verdict": verdict,
            "at": now.isoformat(),
            "comment": comment,
        }
        with self.db.transaction() as s:
            # The rule the verdict was judged under, replayable from the log.
            s.add(
                PolicyDecisionRow(
                    decided_at=now,
                    query="remediation",
                    subject=f"REM-{rem_id} {verdict}",
                    actor=self.actor,
                    policy_hash=policy.policy_hash,
                    input=policy.input,
                    result={"value": policy.result},
                    error=policy.error,
                )
            )
            stored = s.get(RemediationRow, rem_id)
            assert stored is not None
            f = dict(stored.facts or {})
            f.setdefault("approval_requested_at", stored.updated_at.isoformat())
            f["approvals_by"] = [*f.get("approvals_by", []), entry]
            stored.facts = f
            audit.record(s, self.actor, f"remediation.{verdict}_recorded", f"REM-{rem_id}", entry)
        with self.db.reading() as s:
            row, d, _, extra = self._approval_state(s, rem_id, now)
            summary = self._summary(row, d, extra)
        if d.outcome == "approved":
            # The quorum is met: the remediation goes on (or, with run=False,
            # the worker drives it, as it is due now).
            summary["status"] = self.remediations.approve(rem_id, run=run).status
        elif d.outcome == "rejected":
            summary["status"] = self.remediations.cancel(rem_id).status
        return summary

    @requires("approvals.due")
    def approvals_due(self, now: datetime) -> list[dict[str, Any]]:
        """The worker's share: auto-approve what the policy allows, cancel
        expired requests, send reminders and escalations (audited)."""
        done: list[dict[str, Any]] = []
        with self.db.reading() as s:
            ids = list(
                s.scalars(select(RemediationRow.id).where(RemediationRow.status == AWAITING))
            )
        for rem_id in ids:
            with self.db.reading() as s:
                _, d, _, (facts, policy) = self._approval_state(s, rem_id, now)
            subject = f"REM-{rem_id}"
            if d.outcome == "auto_approved":
                with self.db.transaction() as s:
                    audit.record(
                        s,
                        self.actor,
                        "approval.auto",
                        subject,
                        {"policy_hash": policy.policy_hash, "input": policy.input},
                    )
                self.remediations.approve(rem_id)
                done.append({"remediation": subject, "did": "auto_approved"})
            elif d.outcome == "approved":
                self.remediations.approve(rem_id)
                done.append({"remediation": subject, "did": "approved"})
            elif d.outcome == "expired":
                with self.db.transaction() as s:
                    audit.record(s, self.actor, "approval.expired", subject, {"reasons": d.reasons})
                self.remediations.cancel(rem_id)
                done.append({"remediation": subject, "did": "approval_expired"})
            elif d.remind or d.escalate_to:
                with self.db.transaction() as s:
                    r = s.get(RemediationRow, rem_id)
                    assert r is not None
                    f = dict(r.facts or {})
                    f.setdefault("approval_requested_at", r.updated_at.isoformat())
                    if d.remind:
                        f["last_reminder_at"] = now.isoformat()
                        audit.record(
                            s,
                            self.actor,
                            "approval.reminder",
                            subject,
                            {"to_roles": sorted(facts.approver_roles), "missing": d.missing},
                        )
                        done.append({"remediation": subject, "did": "reminded"})
                    if d.escalate_to:
                        f["escalated"] = True
                        audit.record(
                            s, self.actor, "approval.escalated", subject, {"to": d.escalate_to}
                        )
                        done.append(
                            {"remediation": subject, "did": f"escalated to {d.escalate_to}"}
                        )
                    r.facts = f
        return done


def _due(engine: Any, now: datetime) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = engine.approvals_due(now)
    return done


def _register_with_worker() -> None:
    from jupiter.worker import register_due

    register_due("approvals", _due)


_register_with_worker()
