"""The remediation runner's ``test`` stage calls the staging test: a quick
app fleet (no sshd), one staging asset in the group."""

from __future__ import annotations

from pathlib import Path

from jupiter.engine import Engine
from tests.remediations.fleetlib import make_fleet, tree, use_app_plugin, workflow

STAGES = [
    {"kind": "snapshot"},
    {
        "kind": "test",
        "checks": ["validator", "dry_run_matches", "rollback_rehearsal", "finding_gone"],
    },
    {"kind": "approval"},
    {"kind": "deploy"},
    {"kind": "verify"},
]


def _fleet(engine: Engine, tmp_path: Path) -> tuple[list[Path], Path]:
    roots = make_fleet(tmp_path, 2, staging=1, app=True)
    engine.import_assets(tmp_path / "assets.yaml")
    use_app_plugin(engine)
    workflow(engine.workspace.home, "tested", STAGES)
    return roots, tmp_path / "fleet" / "stage-01"


def test_the_test_stage_applies_to_staging_and_waits_for_approval(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    roots, stage = _fleet(sqlite_engine, tmp_path)
    prod_before = [tree(r) for r in roots]
    made = sqlite_engine.remediations.create(group="web", workflow="tested")
    assert made.remediation is not None
    info = sqlite_engine.remediations.run(made.remediation.id)

    assert info.status == "awaiting_approval", info.to_json()
    test = info.facts["test"]
    assert test["ready_for_production"] and test["tests_passed"] == test["tests_run"] == 4
    assert test["target"] == "stage-01"
    assert (stage / "etc/app.conf").read_text() == "secure\n"
    assert [tree(r) for r in roots] == prod_before, "production waits for the approval"
    checks = [e for e in sqlite_engine.audit_export() if e["action"] == "test.check"]
    assert len(checks) == 4 and len({e["subject"] for e in checks}) == 1
    assert info.id in checks[0]["subject"]


def test_a_failed_staging_test_stops_before_production(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    roots, stage = _fleet(sqlite_engine, tmp_path)
    (stage / "etc/app.conf").write_text("insecure reject-me\n")
    prod_before = [tree(r) for r in roots]
    made = sqlite_engine.remediations.create(group="web", workflow="tested")
    assert made.remediation is not None
    info = sqlite_engine.remediations.run(made.remediation.id)

    assert info.status == "test_failed", info.to_json()
    test = info.facts["test"]
    assert not test["ready_for_production"]
    validator = next(c for c in test["checks"] if c["name"] == "validator")
    assert validator["outcome"] == "failed" and "rejected" in validator["evidence"]
    assert (stage / "etc/app.conf").read_text() == "insecure reject-me\n"
    assert [tree(r) for r in roots] == prod_before


def test_the_built_in_ssh_workflow_tests_on_staging_with_real_sshd(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    from jupiter.plugins.sshd.validate import find_sshd
    from tests.conftest import need_service

    need_service(find_sshd() is not None, "sshd is not installed; run scripts/services.sh")
    roots = make_fleet(tmp_path, 1, staging=1)
    sqlite_engine.import_assets(tmp_path / "assets.yaml")
    prod_before = tree(roots[0])

    made = sqlite_engine.remediations.create(
        group="web", only=["SSHD-ROOT-LOGIN"], workflow="config.ssh"
    )
    assert made.remediation is not None
    info = sqlite_engine.remediations.run(made.remediation.id)

    assert info.workflow == "config.ssh"
    assert info.status == "awaiting_approval", info.to_json()
    test = info.facts["test"]
    assert test["ready_for_production"], test
    validator = next(c for c in test["checks"] if c["name"] == "validator")
    assert "sshd -t" in validator["evidence"]
    staged = tmp_path / "fleet" / "stage-01" / "etc/ssh/sshd_config"
    assert "PermitRootLogin no" in staged.read_text()
    assert tree(roots[0]) == prod_before
