"""Approval, manual intervention points, cancel, partial rollback, and what
the store keeps (sealed plans, asset settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError
from tests.remediations.fleetlib import applies, make_fleet, tree, use_app_plugin, workflow


def _setup(engine: Engine, tmp_path: Path, n: int, stages: list[dict], **kw: object) -> list[Path]:
    roots = make_fleet(tmp_path, n, app=True, **kw)  # type: ignore[arg-type]
    engine.import_assets(tmp_path / "assets.yaml")
    use_app_plugin(engine)
    workflow(engine.workspace.home, "wf", stages)
    return roots


def _rem(engine: Engine) -> str:
    made = engine.remediations.create(group="web", workflow="wf")
    assert made.remediation is not None
    return made.remediation.id


def test_approval_stops_until_approved(engine: Engine, tmp_path: Path) -> None:
    roots = _setup(
        engine, tmp_path, 2, [{"kind": "snapshot"}, {"kind": "approval"}, {"kind": "deploy"}]
    )
    rem = _rem(engine)
    info = engine.remediations.run(rem)
    assert info.status == "awaiting_approval"
    assert all((r / "etc/app.conf").read_text() == "insecure\n" for r in roots)
    # Resuming does not get past the approval.
    assert engine.remediations.resume(rem).status == "awaiting_approval"
    info = engine.remediations.approve(rem)
    assert info.status == "completed"
    assert info.facts["approvals"]["approval"]["actor"] == "tester"
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)
    with pytest.raises(InputError, match="not awaiting_approval"):
        engine.remediations.approve(rem)
    actions = [e["action"] for e in engine.audit_export()]
    assert actions.index("remediation.approved") < actions.index("step.verified")


def test_manual_point_typed_answers(engine: Engine, tmp_path: Path) -> None:
    manual = {
        "kind": "manual",
        "question": "SSH keys are deployed for every user",
        "fields": {"keys_deployed": "bool", "users": "int"},
        "expect": {"keys_deployed": True},
    }
    roots = _setup(engine, tmp_path, 1, [{"kind": "snapshot"}, manual, {"kind": "deploy"}])
    rem = _rem(engine)
    info = engine.remediations.run(rem)
    assert info.status == "waiting_manual"
    assert info.facts["waiting"]["question"] == manual["question"]
    count = len(list(engine.audit_export()))
    with pytest.raises(InputError, match="field keys_deployed must be true or false"):
        engine.remediations.answer(rem, {"keys_deployed": "maybe", "users": "3"})
    with pytest.raises(InputError, match="field users must be a whole number"):
        engine.remediations.answer(rem, {"keys_deployed": "true", "users": "three"})
    with pytest.raises(InputError, match="asks for keys_deployed"):
        engine.remediations.answer(rem, {"keys_deployed": "true"})
    assert len(list(engine.audit_export())) == count, "a refused answer changes nothing"
    info = engine.remediations.answer(rem, {"keys_deployed": "yes", "users": "3"})
    assert info.status == "completed"
    assert info.facts["answers"]["manual"] == {"keys_deployed": True, "users": 3}
    assert (roots[0] / "etc/app.conf").read_text() == "secure\n"


def test_manual_answer_against_expectation_stops(engine: Engine, tmp_path: Path) -> None:
    manual = {
        "kind": "manual",
        "question": "keys deployed?",
        "fields": {"keys_deployed": "bool"},
        "expect": {"keys_deployed": True},
    }
    roots = _setup(engine, tmp_path, 1, [manual, {"kind": "deploy"}])
    rem = _rem(engine)
    engine.remediations.run(rem)
    info = engine.remediations.answer(rem, {"keys_deployed": "false"})
    assert info.status == "failed"
    assert "expected" in info.reason
    assert (roots[0] / "etc/app.conf").read_text() == "insecure\n"
    with pytest.raises(InputError, match="only a remediation still under way"):
        engine.remediations.resume(rem)


def test_cancel_rolls_back_what_was_changed(engine: Engine, tmp_path: Path) -> None:
    manual = {"kind": "manual", "question": "go on?", "fields": {"ok": "bool"}}
    roots = _setup(
        engine,
        tmp_path,
        2,
        [{"kind": "snapshot"}, {"kind": "mitigate", "only": ["T-APP"]}, manual, {"kind": "deploy"}],
    )
    before = {r.name: tree(r) for r in roots}
    rem = _rem(engine)
    info = engine.remediations.run(rem)
    assert info.status == "waiting_manual"
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)
    info = engine.remediations.cancel(rem)
    assert info.status == "cancelled"
    assert {r.name: tree(r) for r in roots} == before
    assert {t.status for t in info.targets} == {"rolled_back"}
    with pytest.raises(InputError, match="nothing to cancel"):
        engine.remediations.cancel(rem)


def test_partial_rollback_by_target_then_the_rest(engine: Engine, tmp_path: Path) -> None:
    roots = _setup(engine, tmp_path, 3, [{"kind": "snapshot"}, {"kind": "deploy"}])
    before = {r.name: tree(r) for r in roots}
    rem = _rem(engine)
    assert engine.remediations.run(rem).status == "completed"
    info = engine.remediations.rollback(rem, target="web-02")
    assert tree(roots[1]) == before["web-02"]
    assert (roots[0] / "etc/app.conf").read_text() == "secure\n"
    assert info.status == "completed"
    assert {t.asset: t.status for t in info.targets}["web-02"] == "rolled_back"
    with pytest.raises(InputError, match="did not change etc/nope"):
        engine.remediations.rollback(rem, paths=["etc/nope"])
    info = engine.remediations.rollback(rem, target="web-01", paths=["etc/app.conf"])
    assert tree(roots[0]) == before["web-01"]
    info = engine.remediations.rollback(rem)
    assert info.status == "rolled_back"
    assert {r.name: tree(r) for r in roots} == before
    assert applies(engine) == {"web-01": 1, "web-02": 1, "web-03": 1}
    assert engine.audit_verify().ok


def test_plans_are_sealed_and_asset_settings_persist(engine: Engine, tmp_path: Path) -> None:
    probes = {"probes": [{"kind": "command", "argv": ["true"]}], "window": "always"}
    _setup(engine, tmp_path, 1, [{"kind": "deploy"}], extra={"web-01": probes})
    rem = _rem(engine)
    from sqlalchemy import select

    from jupiter.store.assets import asset_spec
    from jupiter.store.tables import AssetRow, RemediationTargetRow

    with engine.db.reading() as s:
        (row,) = s.scalars(select(RemediationTargetRow))
        assert row.plan_sealed.startswith(b"JUPSEAL1")
        assert b"secure" not in row.plan_sealed
        spec = asset_spec(s.get(AssetRow, "web-01"))  # type: ignore[arg-type]
    assert spec.window == "always" and spec.probes[0].kind == "command"
    assert engine.remediations.show(rem).targets[0].steps[0]["rule_id"] == "T-APP"
