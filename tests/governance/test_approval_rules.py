"""decide_approval / check_approval: the approval stage's rules on a fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from jupiter.approval_rules import (
    Approval,
    Override,
    RemediationFacts,
    check_approval,
    decide_approval,
)

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
APPROVERS = frozenset({"approver", "admin"})
FACTS = RemediationFacts(
    id=7,
    plan_hash="a" * 64,
    requested_by="ann",
    requested_at=T0,
    auto_approve=False,
    required_approvals=2,
    approver_roles=APPROVERS,
    plan_authors=frozenset({"scripter"}),
    exception_approvers=frozenset({"exc-admin"}),
    staging_tests=True,
    performance=True,
    rollback_rehearsal=True,
    compliance=True,
)


def ok(user: str, at: datetime = T0, plan: str = "a" * 64, verdict: str = "approve") -> Approval:
    return Approval(user, frozenset({"approver"}), plan, verdict, at)  # type: ignore[arg-type]


def test_prod_waits_for_two_approvers() -> None:
    one = decide_approval(FACTS, [ok("bob")], T0 + timedelta(hours=1))
    assert one.outcome == "pending" and one.missing == 1 and not one.may_deploy
    two = decide_approval(FACTS, [ok("bob"), ok("carol")], T0 + timedelta(hours=1))
    assert two.outcome == "approved" and two.counted == ["bob", "carol"] and two.may_deploy


def test_requester_author_and_exception_approver_cannot_approve() -> None:
    d = decide_approval(FACTS, [ok("ann"), ok("scripter"), ok("exc-admin"), ok("bob")], T0)
    assert d.counted == ["bob"] and set(d.ignored) == {"ann", "scripter", "exc-admin"}
    assert "separation of duties" in str(check_approval(FACTS, [], "ann", APPROVERS, "a" * 64, T0))


def test_plan_change_voids_approvals_and_stale_hash_is_refused() -> None:
    changed = replace(FACTS, plan_hash="b" * 64)
    d = decide_approval(changed, [ok("bob"), ok("carol")], T0)
    assert d.outcome == "pending" and sorted(d.void) == ["bob", "carol"] and d.missing == 2
    why = check_approval(changed, [], "bob", APPROVERS, "a" * 64, T0)
    assert why is not None and "plan changed" in why


def test_expiry_blocks_and_reminders_and_escalation_fire_on_the_clock() -> None:
    early = decide_approval(FACTS, [ok("bob")], T0 + timedelta(hours=3))
    assert not early.remind and early.escalate_to is None
    later = decide_approval(FACTS, [ok("bob")], T0 + timedelta(hours=5))
    assert later.remind and later.escalate_to is None
    reminded = replace(FACTS, last_reminder_at=T0 + timedelta(hours=5))
    assert not decide_approval(reminded, [], T0 + timedelta(hours=6)).remind
    day = decide_approval(FACTS, [], T0 + timedelta(hours=25))
    assert day.escalate_to == "admin"
    assert (
        decide_approval(replace(FACTS, escalated=True), [], T0 + timedelta(hours=25)).escalate_to
        is None
    )
    gone = decide_approval(FACTS, [ok("bob")], T0 + timedelta(hours=73))
    assert gone.outcome == "expired" and not gone.may_deploy
    assert "expired" in str(
        check_approval(FACTS, [], "carol", APPROVERS, "a" * 64, T0 + timedelta(hours=73))
    )


def test_rejection_twice_and_roles() -> None:
    d = decide_approval(FACTS, [ok("bob"), ok("carol", verdict="reject")], T0)
    assert d.outcome == "rejected"
    assert "already decided" in str(
        check_approval(FACTS, [ok("bob")], "bob", APPROVERS, "a" * 64, T0)
    )
    assert "needs the admin or approver role" in str(
        check_approval(FACTS, [], "olga", frozenset({"operator"}), "a" * 64, T0)
    )
    assert check_approval(FACTS, [], "bob", APPROVERS, "a" * 64, T0) is None


def test_checklist_is_computed_and_only_an_admin_may_override_with_a_reason() -> None:
    failing = replace(FACTS, rollback_rehearsal=False)
    d = decide_approval(failing, [ok("bob"), ok("carol")], T0)
    assert d.outcome == "blocked" and "rollback rehearsal" in d.reasons[0]
    by_operator = replace(
        failing, overrides=(Override("rollback_rehearsal", "olga", frozenset({"operator"}), "x"),)
    )
    assert decide_approval(by_operator, [ok("bob"), ok("carol")], T0).outcome == "blocked"
    no_reason = replace(
        failing, overrides=(Override("rollback_rehearsal", "root", frozenset({"admin"}), " "),)
    )
    assert decide_approval(no_reason, [ok("bob"), ok("carol")], T0).outcome == "blocked"
    admin = replace(
        failing,
        overrides=(Override("rollback_rehearsal", "root", frozenset({"admin"}), "lab down"),),
    )
    d = decide_approval(admin, [ok("bob"), ok("carol")], T0)
    assert d.outcome == "approved"
    item = next(c for c in d.checklist if c.item == "rollback_rehearsal")
    assert item.status == "overridden" and "lab down" in item.detail
    ticket = replace(FACTS, ticket_integration=True)
    assert decide_approval(ticket, [ok("bob"), ok("carol")], T0).outcome == "pending"
    assert (
        decide_approval(FACTS, [ok("bob"), ok("carol")], T0).checklist[-1].status == "not_required"
    )


def test_auto_approval_needs_no_human_but_a_complete_checklist() -> None:
    auto = replace(FACTS, auto_approve=True, required_approvals=0)
    assert decide_approval(auto, [], T0).outcome == "auto_approved"
    assert decide_approval(replace(auto, staging_tests=None), [], T0).outcome == "pending"


def test_facts_and_approvals_from_a_stored_remediation() -> None:
    from types import SimpleNamespace

    from jupiter.approval_rules import approvals_from_facts, facts_from_remediation

    row = SimpleNamespace(
        id=3,
        plan_hash="c" * 64,
        actor="ann",
        updated_at=T0,
        definition={"stages": [{"kind": "test"}, {"kind": "approval"}]},
        facts={
            "test": {"ready_for_production": True},
            "performance_ok": True,
            "rollback_rehearsed": True,
            "compliance_ok": True,
            "approvals_by": [
                {
                    "user": "bob",
                    "roles": ["approver"],
                    "plan_hash": "c" * 64,
                    "verdict": "approve",
                    "at": T0.isoformat(),
                },
                {
                    "user": "ann",
                    "roles": ["admin"],
                    "plan_hash": "c" * 64,
                    "verdict": "approve",
                    "at": T0.isoformat(),
                },
            ],
        },
    )
    policy = {"auto_approve": False, "required_approvals": 2, "approver_roles": ["approver"]}
    facts = facts_from_remediation(row, policy, frozenset({"scripter"}))
    assert facts.plan_authors == {"ann", "scripter"} and facts.staging_tests is True
    d = decide_approval(facts, approvals_from_facts(row.facts), T0)
    assert d.outcome == "pending" and d.counted == ["bob"] and "ann" in d.ignored
