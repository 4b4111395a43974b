"""Approvals under governance, on real remediations: a prod remediation
waits for two approvers, the requester cannot approve, a stale plan hash is
refused, expiry blocks the deploy, reminders and escalation fire on a fake
clock through the worker, and a dev change is auto-approved by policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.remediations.fleetlib import make_fleet, use_app_plugin, workflow

from jupiter import worker
from jupiter.engine import Engine
from jupiter.errors import PermissionDenied
from jupiter.store.tables import PolicyDecisionRow, utcnow
from jupiter.workspace import Workspace

STAGES = [{"kind": "snapshot"}, {"kind": "approval"}, {"kind": "deploy"}]


def _setup(tmp_path: Path, env: str = "prod") -> tuple[Engine, list[Path], str]:
    extra = {"web-01": {"environment": env}, "web-02": {"environment": env}}
    roots = make_fleet(tmp_path, 2, app=True, extra=extra)
    ws = Workspace(tmp_path / "home", f"sqlite:///{tmp_path / 'j.db'}")
    admin = Engine(ws, actor="root")
    admin.init()
    admin.add_user("ann", ["analyst", "operator"])
    admin.add_user("bob", ["approver"])
    admin.add_user("cat", ["approver"], group="web")
    admin.add_user("dan", ["approver"], group="other")
    admin.import_assets(tmp_path / "assets.yaml")
    use_app_plugin(admin)  # the worker below acts through this engine
    workflow(ws.home, "wf", STAGES)
    ann = Engine(ws, actor="ann")
    use_app_plugin(ann)
    # A group remediation deploys to its prod assets; a dev one names its asset.
    where = {"group": "web"} if env == "prod" else {"asset": "web-01"}
    made = ann.remediations.create(workflow="wf", **where)
    assert made.remediation is not None
    rem = made.remediation.id
    assert ann.remediations.run(rem).status == "awaiting_approval"
    return admin, roots, rem


def _as(admin: Engine, who: str) -> Engine:
    eng = Engine(admin.workspace, actor=who)
    use_app_plugin(eng)
    return eng


def test_prod_waits_for_two_approvers_and_refuses_sod_and_stale_plans(tmp_path: Path) -> None:
    admin, roots, rem = _setup(tmp_path)
    ann, bob, cat, dan = (_as(admin, u) for u in ("ann", "bob", "cat", "dan"))
    with pytest.raises(PermissionDenied, match="needs the approver or admin role"):
        ann.approve_remediation(rem)
    with pytest.raises(PermissionDenied, match="plan changed"):
        bob.approve_remediation(rem, plan_hash="0" * 64)
    with pytest.raises(PermissionDenied, match="needs the approver or admin role"):
        dan.approve_remediation(rem)  # approver, but for another group
    first = bob.approve_remediation(rem, comment="diff reviewed")
    assert first["outcome"] == "pending" and first["missing"] == 1
    assert first["status"] == "awaiting_approval"
    assert all((r / "etc/app.conf").read_text() == "insecure\n" for r in roots)
    with pytest.raises(PermissionDenied, match="already decided"):
        bob.approve_remediation(rem)
    second = cat.approve_remediation(rem)
    assert second["outcome"] == "approved" and second["status"] == "completed"
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)
    actions = [e["action"] for e in admin.audit_export()]
    assert actions.count("remediation.approve_recorded") == 2
    with admin.db.reading() as s:
        logged = s.scalars(
            select(PolicyDecisionRow).where(PolicyDecisionRow.subject == f"{rem} approve")
        ).all()
    assert len(logged) == 2 and logged[0].result["value"]["required_approvals"] == 2
    assert actions.count("permission.denied") >= 4


def test_requester_cannot_approve_its_own_remediation(tmp_path: Path) -> None:
    admin, _, _ = _setup(tmp_path)
    made = admin.remediations.create(group="web", workflow="wf")
    assert made.remediation is not None
    rem = made.remediation.id
    admin.remediations.run(rem)
    with pytest.raises(PermissionDenied, match=r"requested it .*\(separation of duties\)"):
        admin.approve_remediation(rem)


def test_expiry_reminders_and_escalation_through_the_worker(tmp_path: Path) -> None:
    admin, roots, rem = _setup(tmp_path)
    now = utcnow()
    assert worker.run_once(admin, now + timedelta(hours=1))["approvals"] == []
    reminded = worker.run_once(admin, now + timedelta(hours=5))["approvals"]
    assert reminded == [{"remediation": rem, "did": "reminded"}]
    assert worker.run_once(admin, now + timedelta(hours=6))["approvals"] == []
    later = worker.run_once(admin, now + timedelta(hours=25))["approvals"]
    assert {"remediation": rem, "did": "escalated to admin"} in later
    gone = worker.run_once(admin, now + timedelta(hours=73))["approvals"]
    assert gone == [{"remediation": rem, "did": "approval_expired"}]
    assert admin.remediations.show(rem).status == "cancelled"
    assert all((r / "etc/app.conf").read_text() == "insecure\n" for r in roots)
    actions = [e["action"] for e in admin.audit_export()]
    for a in ("approval.reminder", "approval.escalated", "approval.expired"):
        assert a in actions


def test_a_dev_change_is_auto_approved_by_policy_through_the_worker(tmp_path: Path) -> None:
    admin, roots, rem = _setup(tmp_path, env="dev")
    listed = admin.list_approvals()
    assert listed[0]["outcome"] == "auto_approved" and listed[0]["required"] == 0
    done = worker.run_once(admin, utcnow())["approvals"]
    assert done == [{"remediation": rem, "did": "auto_approved"}]
    assert admin.remediations.show(rem).status == "completed"
    assert (roots[0] / "etc/app.conf").read_text() == "secure\n"
    auto = [e for e in admin.audit_export() if e["action"] == "approval.auto"]
    assert auto and auto[0]["data"]["policy_hash"] == admin.policies.hash


def test_cli_approvals_list_and_unknown_remediation(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    home = tmp_path / "ws"
    listed = run_cli("approvals", "list", "--json", home=home)
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed.stderr
    missing = run_cli("approvals", "approve", "REM-9", home=home)
    assert missing.returncode == 2 and "REM-9 does not exist" in missing.stderr
    bad = run_cli("approvals", "approve", "nine", home=home)
    assert bad.returncode == 2 and "is not a remediation id" in bad.stderr
