"""The run gate: a fix run on Terraform is judged by a full Checkov rescan,
and a run after which a check that passed before fails is rolled back."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.plugins.terraform.gate import CheckovRunGate
from tests.tools import tool

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "terraform"

EBS = """resource "aws_ebs_volume" "data" {
  availability_zone = "eu-west-1a"
  size              = 10
  encrypted         = true
}
"""


def test_a_check_that_passed_before_and_fails_after_fails_the_gate(tmp_path: Path) -> None:
    root = tmp_path / "tf"
    root.mkdir()
    (root / "main.tf").write_text(EBS)
    gate = CheckovRunGate(root, tool("checkov", "checkov"))
    gate.before()
    (root / "main.tf").write_text(EBS.replace("encrypted         = true", "encrypted = false"))
    verdict = gate.after()
    assert verdict.status == "failed"
    assert "CKV_AWS_3 on aws_ebs_volume.data" in verdict.detail


def test_without_checkov_the_gate_says_so(tmp_path: Path) -> None:
    gate = CheckovRunGate(tmp_path, None)
    gate.before()
    assert gate.after().status == "skipped"


def _fake_checkov(path: Path, state: Path) -> Path:
    """A scanner that reports CKV_AWS_3 passing on its first run and failing
    on every later one: a fix that broke a passing check."""
    path.write_text(
        "#!/usr/bin/env python3\n"
        "import json, pathlib, sys\n"
        f"state = pathlib.Path({str(state)!r})\n"
        "first = not state.exists()\n"
        "state.write_text('seen')\n"
        "check = {'check_id': 'CKV_AWS_3', 'file_path': '/main.tf',\n"
        "         'resource': 'aws_ebs_volume.x'}\n"
        "key = 'passed_checks' if first else 'failed_checks'\n"
        "print(json.dumps([{'check_type': 'terraform', 'results': {key: [check]}}]))\n"
        "sys.exit(0 if first else 1)\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_failed_gate_rolls_the_whole_run_back(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "gcp"
    shutil.copytree(FIXTURES / "gcp", repo)
    original = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    fake = _fake_checkov(tmp_path / "checkov", tmp_path / "state")
    monkeypatch.setenv("JUPITER_CHECKOV", str(fake))
    result = sqlite_engine.fix(str(repo), only=["iac.terraform"])
    assert result["status"] == "gate_failed"
    (verdict,) = result["gates"]
    assert verdict["status"] == "failed" and "CKV_AWS_3" in verdict["detail"]
    assert result["rollback"]["verified"] is True and result["rollback"]["restored"]
    assert {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()} == original
    assert any(s["status"] == "rolled_back" for s in result["steps"])
    (gated,) = [e for e in sqlite_engine.audit_export() if e["action"] == "run.gated"]
    assert gated["subject"] == f"run:{result['run']}"
    assert gated["data"]["gates"][0]["status"] == "failed"
    assert sqlite_engine.audit_verify().ok
    assert os.environ["JUPITER_CHECKOV"] == str(fake)
    json.dumps(result)  # the outcome stays plain data
