"""`jupiter remediate` / `jupiter remediations` from the command line: bad
input is one sentence and exit 2 with nothing changed; --json everywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    root = tmp_path / "web-01"
    shutil.copytree(ROOT / "examples/host", root, symlinks=True)
    assets = [
        {"id": "web-01", "group": "web", "environment": "prod", "connection": f"local:{root}"},
        {"id": "stage-01", "group": "lab", "environment": "staging", "connection": f"local:{root}"},
    ]
    (tmp_path / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
    assert run_cli("assets", "import", str(tmp_path / "assets.yaml"), home=home).returncode == 0
    return home


def _audit_len(home: Path) -> int:
    out = run_cli("audit", "verify", home=home)
    assert out.returncode == 0
    return int(out.stdout.split(":")[1].split()[0])


def test_bad_input_is_one_sentence_exit_2_and_changes_nothing(tmp_path: Path) -> None:
    home = _home(tmp_path)
    before = _audit_len(home)
    cases = [
        (("remediate", "--group", "nope"), "no asset is in group 'nope'"),
        (("remediate", "--group", "lab"), "has no production asset"),
        (("remediations", "show", "REM-7"), "no remediation REM-7"),
        (("remediations", "answer", "REM-1", "--field", "ok"), "is not NAME=VALUE"),
    ]
    for args, message in cases:
        out = run_cli(*args, home=home)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    assert _audit_len(home) == before
    listed = run_cli("remediations", "list", "--json", home=home)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


@pytest.mark.soak
def test_dry_run_shows_the_plans_and_stores_nothing(tmp_path: Path) -> None:
    home = _home(tmp_path)
    out = run_cli(
        "remediate", "--group", "web", "--only", "SSHD-ROOT-LOGIN", "--dry-run", "--json", home=home
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "dry_run" and data["remediation"] is None
    (target,) = data["targets"]
    assert target["asset"] == "web-01" and target["steps"][0]["rule_id"] == "SSHD-ROOT-LOGIN"
    assert "PermitRootLogin" in target["steps"][0]["diff"]
    assert json.loads(run_cli("remediations", "list", "--json", home=home).stdout) == []
