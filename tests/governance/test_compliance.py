"""Compliance: controls pass after an sshd remediation, before -> after."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli

from jupiter.compliance import load_controls


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
