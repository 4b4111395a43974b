"""Compliance: controls pass after an sshd remediation, before -> after."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli
from tests.remediations.fleetlib import make_fleet, workflow

from jupiter.compliance import load_controls
from jupiter.engine import Engine


def test_controls_are_data_with_known_rules() -> None:
    controls = load_controls()
    assert len({c.id for c in controls}) == len(controls)
    root = next(c for c in controls if c.id == "JUP-SSH-ROOT")
    assert root.cis == "cis-ubuntu 5.2.7" and "SSHD-ROOT-LOGIN" in root.rules
    assert all(c.framework for c in controls)


def test_compliance_report_shows_sshd_controls_passing_after_the_fix(tmp_path: Path) -> None:
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    home = tmp_path / "ws"
    assert run_cli("init", home=home).returncode == 0
    fixed = run_cli("fix", str(host), "--asset", "host-1", "--yes", "--json", home=home)
    assert fixed.returncode == 0, fixed.stderr
    run = json.loads(fixed.stdout)["run"]
    assert run is not None
    done = run_cli("compliance", "report", "--asset", "host-1", "--json", home=home)
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)
    assert report["run"] == run
    by_id = {c["control"]: c for c in report["controls"]}
    root = by_id["JUP-SSH-ROOT"]
    assert root["before"] == "fail" and root["after"] == "pass", root
    assert root["cis"] == "cis-ubuntu 5.2.7"
    improved = [c for c in report["controls"] if c["before"] == "fail" and c["after"] == "pass"]
    assert len(improved) >= 3
    text = run_cli("compliance", "report", "--asset", "host-1", home=home)
    assert "JUP-SSH-ROOT" in text.stdout and "pass" in text.stdout
    bad = run_cli("compliance", "report", "--asset", "nope", home=home)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    # A full rollback undoes the fixes: the stored results fail again.
    undone = run_cli("rollback", str(run), "--yes", home=home)
    assert undone.returncode == 0, undone.stderr
    again = run_cli("compliance", "report", "--asset", "host-1", "--json", home=home)
    (after_rollback,) = json.loads(again.stdout)
    by_id = {c["control"]: c for c in after_rollback["controls"]}
    assert by_id["JUP-SSH-ROOT"]["after"] == "fail", by_id["JUP-SSH-ROOT"]


def test_a_fleet_deploy_records_compliance_on_each_target(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    engine = sqlite_engine
    make_fleet(tmp_path, 2)
    engine.import_assets(tmp_path / "assets.yaml")
    workflow(
        engine.workspace.home,
        "roll",
        [{"kind": "snapshot"}, {"kind": "deploy", "strategy": {"type": "rolling", "batch": 1}}],
    )
    made = engine.remediations.create(group="web", workflow="roll", only=["SSHD-ROOT-LOGIN"])
    assert made.remediation is not None
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "completed", info.to_json()
    for asset in ("web-01", "web-02"):
        (report,) = engine.compliance_report(asset=asset)
        root = next(c for c in report["controls"] if c["control"] == "JUP-SSH-ROOT")
        assert root["after"] == "pass", (asset, root)
