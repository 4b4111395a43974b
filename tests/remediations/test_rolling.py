"""Rolling and canary deploys over a local fleet, and the automatic
rollback of every changed target when a deploy fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError, NotFoundError
from tests.remediations.fleetlib import applies, make_fleet, tree, use_app_plugin, workflow


def _setup(engine: Engine, tmp_path: Path, n: int, **kw: object) -> list[Path]:
    roots = make_fleet(tmp_path, n, app=True, **kw)  # type: ignore[arg-type]
    engine.import_assets(tmp_path / "assets.yaml")
    use_app_plugin(engine)
    return roots


def test_rolling_deploy_fixes_every_target_once(engine: Engine, tmp_path: Path) -> None:
    roots = _setup(engine, tmp_path, 4)
    workflow(
        engine.workspace.home,
        "roll",
        [
            {"kind": "snapshot"},
            {"kind": "deploy", "strategy": {"type": "rolling", "batch": 2}, "concurrency": 2},
            {"kind": "verify"},
            {"kind": "notify", "event": "remediation.completed"},
        ],
    )
    made = engine.remediations.create(group="web", workflow="roll")
    assert made.remediation is not None and made.status == "planned"
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "completed", info.to_json()
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)
    assert [t.batch for t in info.targets] == [1, 1, 2, 2]
    assert {t.status for t in info.targets} == {"deployed"}
    assert applies(engine) == {f"web-0{i}": 1 for i in range(1, 5)}
    stages = [(e.stage, e.status) for e in info.timeline or [] if e.target is None]
    assert ("verify", "finished") in stages and ("notify", "finished") in stages
    actions = [e["action"] for e in engine.audit_export()]
    assert "event.remediation.completed" in actions and "remediation.completed" in actions
    assert engine.audit_verify().ok
    with pytest.raises(InputError, match="only a remediation still under way"):
        engine.remediations.resume(info.id)


def test_failed_batch_beyond_max_fail_rolls_back_every_changed_target(
    engine: Engine, tmp_path: Path
) -> None:
    roots = _setup(engine, tmp_path, 5)
    (roots[2] / "etc/app.conf").write_text("insecure reject-me\n")
    before = {r.name: tree(r) for r in roots}
    workflow(
        engine.workspace.home,
        "roll",
        [{"kind": "snapshot"}, {"kind": "deploy", "strategy": {"type": "rolling", "batch": 2}}],
    )
    made = engine.remediations.create(group="web", workflow="roll")
    assert made.remediation is not None
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "rolled_back"
    result = info.result
    assert result is not None
    assert result["status"] == "rolled_back"
    assert result["target"] == "web-03"
    assert result["measured"] == {"failed": 1, "max_fail": 0, "batch": 2}
    assert result["rollback_snapshot"] == f"SNAP-{info.id}"
    assert result["system_status"] == "restored to pre-remediation state"
    assert "rollback_duration" in result
    # Every target byte for byte as before; batch 3 (web-05) was never touched.
    assert {r.name: tree(r) for r in roots} == before
    states = {t.asset: t.status for t in info.targets}
    assert states == {
        "web-01": "rolled_back",
        "web-02": "rolled_back",
        "web-03": "rolled_back",
        "web-04": "rolled_back",
        "web-05": "pending",
    }
    assert "web-05" not in applies(engine)
    assert engine.audit_verify().ok


def test_max_fail_tolerates_a_failed_target(engine: Engine, tmp_path: Path) -> None:
    roots = _setup(engine, tmp_path, 3)
    (roots[0] / "etc/app.conf").write_text("insecure reject-me\n")
    workflow(
        engine.workspace.home,
        "roll",
        [{"kind": "deploy", "strategy": {"type": "rolling", "batch": 1, "max_fail": 1}}],
    )
    made = engine.remediations.create(group="web", workflow="roll")
    assert made.remediation is not None
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "completed"
    assert {t.asset: t.status for t in info.targets} == {
        "web-01": "failed",
        "web-02": "deployed",
        "web-03": "deployed",
    }
    assert (roots[1] / "etc/app.conf").read_text() == "secure\n"


def test_canary_failure_restores_the_canaries_and_leaves_the_rest(
    engine: Engine, tmp_path: Path
) -> None:
    roots = _setup(engine, tmp_path, 6)
    (roots[1] / "etc/app.conf").write_text("insecure reject-me\n")
    before = {r.name: tree(r) for r in roots}
    workflow(
        engine.workspace.home,
        "canary",
        [
            {"kind": "snapshot"},
            {
                "kind": "deploy",
                "strategy": {"type": "canary", "percent": 33, "bake": 0},
                "concurrency": 2,
            },
        ],
    )
    made = engine.remediations.create(group="web", workflow="canary")
    assert made.remediation is not None
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "rolled_back"
    assert {r.name: tree(r) for r in roots} == before
    assert set(applies(engine)) == {"web-01"}  # web-02 was rejected before writing
    assert [t.status for t in info.targets][2:] == ["pending"] * 4


def test_bad_input_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    _setup(engine, tmp_path, 1, staging=1)
    count = len(list(engine.audit_export()))
    with pytest.raises(NotFoundError, match="no asset is in group 'nope'"):
        engine.remediations.create(group="nope")
    with pytest.raises(NotFoundError, match="no remediation REM-9"):
        engine.remediations.show("REM-9")
    with pytest.raises(NotFoundError, match="no workflow named 'nope'"):
        engine.remediations.create(group="web", workflow="nope")
    assert len(list(engine.audit_export())) == count
