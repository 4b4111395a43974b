"""The staging test feeds the approval checklist: a rehearsal or health
check that ran becomes a measured fact; a skipped one measures nothing."""

from __future__ import annotations

from types import SimpleNamespace

from jupiter.approval_rules import facts_from_remediation
from jupiter.remediations.stages import checklist_facts
from jupiter.store.tables import utcnow

POLICY = {"auto_approve": False, "required_approvals": 1, "approver_roles": ["approver"]}


def _row(facts: dict[str, object]) -> SimpleNamespace:
    return SimpleNamespace(
        id=1,
        plan_hash="a" * 64,
        actor="ana",
        facts=facts,
        definition={"stages": [{"kind": "test"}, {"kind": "deploy"}]},
        updated_at=utcnow(),
    )


def test_checks_that_ran_become_checklist_facts() -> None:
    result = {
        "ready_for_production": True,
        "checks": [
            {"name": "rollback_rehearsal", "outcome": "passed"},
            {"name": "health", "outcome": "skipped"},
        ],
    }
    facts = checklist_facts(result)
    assert facts == {"rollback_rehearsed": True}
    judged = facts_from_remediation(_row({"test": result, **facts}), POLICY)
    assert judged.rollback_rehearsal is True
    assert "rollback_rehearsal" in judged.measured and "performance" not in judged.measured


def test_one_failing_staging_target_fails_the_item() -> None:
    facts = checklist_facts(
        {
            "checks": [
                {"name": "rollback_rehearsal", "outcome": "passed"},
                {"name": "rollback_rehearsal", "outcome": "failed"},
                {"name": "health", "outcome": "passed"},
            ]
        }
    )
    assert facts == {"rollback_rehearsed": False, "performance_ok": True}
