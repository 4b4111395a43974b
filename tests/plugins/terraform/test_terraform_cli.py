"""`jupiter fix` and `jupiter rollback` on a Terraform project, through the
real command line: a risk fix waits for approval, an approved run fixes and
verifies, a broken file is one sentence while the rest is fixed, rollback
restores every byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_fix_with_approval_then_rollback(tmp_path: Path) -> None:
    repo = tmp_path / "aws"
    shutil.copytree(ROOT / "tests/fixtures/terraform/aws", repo)
    (repo / "broken").mkdir()
    (repo / "broken" / "main.tf").write_text('resource "aws_kms_key" "k" {\n  x = = 1\n}\n')
    home = tmp_path / "ws"
    before = _files(repo)

    plain = run_cli("fix", str(repo), "--only", "iac.terraform", "--yes", "--json", home=home)
    assert plain.returncode == 0, plain.stderr
    result = json.loads(plain.stdout)
    assert any("broken/main.tf:2" in e["error"] for e in result["scan"]["errors"])
    manual = [s["detail"] for s in result["steps"] if s["status"] == "needs_manual"]
    assert any("approval needed" in d for d in manual)
    assert any("public website" in d for d in manual)
    assert "enable_key_rotation     = true" in (repo / "storage.tf").read_text()
    assert 'http_tokens   = "optional"' in (repo / "compute.tf").read_text()  # risk: waits

    approved = run_cli(
        "fix", str(repo), "--only", "iac.terraform", "--yes", "--json",
        "-p", "terraform-iac.approve=CKV_AWS_79", home=home,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    second = json.loads(approved.stdout)
    assert 'http_tokens   = "required"' in (repo / "compute.tf").read_text()

    for run in (second["run"], result["run"]):
        rb = run_cli("rollback", str(run), "--yes", "--json", home=home)
        assert rb.returncode == 0, rb.stderr
        assert json.loads(rb.stdout)["verified"] is True
    assert _files(repo) == before
