"""Every engine action x every role, on SQLite and PostgreSQL: the one
permission table decides, every public Engine method asks it, a refusal is
one sentence naming the role needed and is audited."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.errors import InputError, JupiterError, PermissionDenied
from jupiter.permissions import PERMISSIONS, ROLES, action_of, render_roles_doc
from jupiter.store.tables import AuditRow
from jupiter.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
MISSING = Path("/nonexistent/jupiter-matrix")

# Public Engine attributes that are not actions: lifecycle, the identity
# itself, and properties the guarded methods use.
UNGUARDED = {
    "open",
    "close",
    "db",
    "registry",
    "workspace_id",
    "whoami",
    "policies",
    "remediations",
    "schedules",
    "routing",
    "actor",
    "engine",
}

_n = iter(range(10**6))

CALLS: dict[str, Callable[[Engine], Any]] = {
    "init": lambda e: e.init(),
    "import_assets": lambda e: e.import_assets(MISSING / "assets.yaml"),
    "list_assets": lambda e: e.list_assets(),
    "ingest": lambda e: e.ingest([MISSING / "r.json"]),
    "list_findings": lambda e: e.list_findings(),
    "get_finding": lambda e: e.get_finding("999999"),
    "export_sarif": lambda e: e.export_sarif(status="no-such-status"),
    "import_advisories": lambda e: e.import_advisories(MISSING),
    "register_script": lambda e: e.register_script(MISSING / "manifest.yaml"),
    "list_scripts": lambda e: e.list_scripts(),
    "remove_script": lambda e: e.remove_script("no-such-script"),
    "export_script": lambda e: e.export_script("999999", "bash"),
    "scan": lambda e: e.scan(str(MISSING)),
    "plan": lambda e: e.plan("999999"),
    "fix": lambda e: e.fix(str(MISSING)),
    "rollback": lambda e: e.rollback(999999),
    "recover": lambda e: e.recover(999999),
    "list_runs": lambda e: e.list_runs(),
    "show_run": lambda e: e.show_run(999999),
    "audit_verify": lambda e: e.audit_verify(),
    "audit_checkpoint": lambda e: e.audit_checkpoint(),
    "audit_export": lambda e: list(e.audit_export()),
    "add_user": lambda e: e.add_user(f"matrix-{next(_n)}", ["viewer"]),
    "grant_role": lambda e: e.grant_role("no-such-user", "viewer"),
    "list_users": lambda e: e.list_users(),
    "disable_user": lambda e: e.disable_user("no-such-user"),
    "create_token": lambda e: e.create_token(label="matrix", expires_days=1),
    "revoke_token": lambda e: e.revoke_token("0000000000000000"),
    "decide": lambda e: e.decide("priority", {"finding": {"severity": "low"}}),
    "policy_eval": lambda e: e.policy_eval(MISSING / "input.json"),
    "policy_test": lambda e: e.policy_test(),
    "policy_show": lambda e: e.policy_show(),
    "policy_simulate": lambda e: e.policy_simulate(),
    "request_exception": lambda e: e.request_exception("r", "T-1", "10d", finding="999999"),
    "approve_exception": lambda e: e.approve_exception(999999),
    "revoke_exception": lambda e: e.revoke_exception(999999),
    "list_exceptions": lambda e: e.list_exceptions(),
    "expire_exceptions": lambda e: e.expire_exceptions(),
    "evaluate_compliance": lambda e: e.evaluate_compliance("no-such-asset"),
    "compliance_report": lambda e: e.compliance_report(),
    "prioritise": lambda e: e.prioritise("no-such-asset"),
    "generate_config": lambda e: e.generate_config("no-such-kind", {}),
    "outbox_list": lambda e: e.outbox_list(status="no-such-status"),
    "outbox_retry": lambda e: e.outbox_retry([999999]),
    "outbox_purge": lambda e: e.outbox_purge("no-such-status", timedelta(days=1)),
    "outbox_dispatch": lambda e: e.outbox_dispatch(once=True),
    "statistics": lambda e: e.statistics(since="not-a-time"),
    "metrics_text": lambda e: e.metrics_text(),
    "list_approvals": lambda e: e.list_approvals(),
    "show_approval": lambda e: e.show_approval("REM-999999"),
    "approve_remediation": lambda e: e.approve_remediation("REM-999999"),
    "reject_remediation": lambda e: e.reject_remediation("REM-999999", "no"),
    "approvals_due": lambda e: e.approvals_due(datetime.now(UTC)),
    "list_pull_requests": lambda e: e.list_pull_requests(state="no-such-state"),
    "sync_pull_requests": lambda e: e.sync_pull_requests(),
    "create_rollback_point": lambda e: e.create_rollback_point("no-such-asset"),
    "list_rollback_points": lambda e: e.list_rollback_points(),
    "restore_rollback_point": lambda e: e.restore_rollback_point("SNAP-0000-00-00-000"),
    # The engine's services: the same table, the same check.
    "remediations.create": lambda e: e.remediations.create(),
    "remediations.listing": lambda e: e.remediations.listing(),
    "remediations.show": lambda e: e.remediations.show("REM-999999"),
    "remediations.run": lambda e: e.remediations.run("REM-999999"),
    "remediations.resume": lambda e: e.remediations.resume("REM-999999"),
    "remediations.approve": lambda e: e.remediations.approve("REM-999999"),
    "remediations.answer": lambda e: e.remediations.answer("REM-999999", {}),
    "remediations.cancel": lambda e: e.remediations.cancel("REM-999999"),
    "remediations.rollback": lambda e: e.remediations.rollback("REM-999999"),
    "schedules.add": lambda e: e.schedules.add(),
    "schedules.list_all": lambda e: e.schedules.list_all(),
    "schedules.remove": lambda e: e.schedules.remove(999999),
    "schedules.run_due": lambda e: e.schedules.run_due(datetime.now(UTC)),
}


def guarded_methods() -> dict[str, str]:
    from jupiter.remediations import Remediations
    from jupiter.schedules import Schedules

    out = {}
    for prefix, cls in (("", Engine), ("remediations.", Remediations), ("schedules.", Schedules)):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or name in UNGUARDED:
                continue
            action = action_of(member)
            assert action is not None, f"{cls.__name__}.{name} is public but has no @requires"
            out[prefix + name] = action
    return out


def test_every_public_engine_method_is_guarded_and_exercised() -> None:
    methods = guarded_methods()
    assert set(methods) == set(CALLS), "add the new method to CALLS (and to the table)"
    assert set(methods.values()) <= set(PERMISSIONS)


def _denials(engine: Engine) -> int:
    with engine.db.reading() as s:
        return len(
            s.scalars(select(AuditRow.seq).where(AuditRow.action == "permission.denied")).all()
        )


def test_permission_matrix(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_params(*_: object) -> None:
        raise InputError("the check passed; loading every plugin is not this test's business")

    # fix() parses its parameters (loading the plugin registry, seconds)
    # right after the permission check: stop there.
    monkeypatch.setattr("jupiter.fixing.parse_params_for", no_params)
    ws = Workspace(tmp_path / "home", db_url)
    admin = Engine(ws, actor="root-admin")
    admin.init()
    for role in ROLES:
        admin.add_user(f"u-{role}", [role])
    engines = {role: Engine(ws, actor=f"u-{role}") for role in ROLES}
    try:
        for method, action in sorted(guarded_methods().items()):
            for role, eng in engines.items():
                allowed = role in PERMISSIONS[action].roles
                before = _denials(admin)
                try:
                    CALLS[method](eng)
                    denied = False
                except PermissionDenied as exc:
                    denied = True
                    msg = str(exc)
                    assert action in msg and ". " not in msg and "\n" not in msg, msg
                    assert any(r in msg for r in PERMISSIONS[action].roles), msg
                except JupiterError:
                    denied = False  # the check passed; the dummy argument was refused
                assert denied == (not allowed), f"{role} x {method} ({action})"
                assert _denials(admin) == before + denied, f"{role} x {method} not audited"
    finally:
        for eng in engines.values():
            eng.close()
        admin.close()


def test_matrix_spot_checks_agree_with_the_brief() -> None:
    """A few cells written out by hand, so the table itself can be wrong."""

    def can(role: str, action: str) -> bool:
        return role in PERMISSIONS[action].roles

    assert can("viewer", "findings.read") and not can("viewer", "fix.apply")
    assert can("analyst", "findings.ingest") and can("analyst", "plan.create")
    assert not can("analyst", "fix.apply") and not can("analyst", "remediation.approve")
    assert can("approver", "remediation.approve") and not can("approver", "remediation.deploy")
    assert can("operator", "fix.apply") and can("operator", "run.rollback")
    assert can("auditor", "audit.export") and not can("auditor", "findings.ingest")
    assert not can("operator", "users.manage") and can("admin", "users.manage")
    assert all(can("admin", a) for a in PERMISSIONS)


def test_roles_doc_is_generated_from_the_table() -> None:
    doc = (ROOT / "docs/roles.md").read_text()
    assert doc == render_roles_doc(), (
        "docs/roles.md is stale: python -m jupiter.permissions > docs/roles.md"
    )
