"""``jupiter findings export --format sarif`` and ``jupiter plan N --format
sarif`` through the real command line, on a copy of the example host: the
file is valid SARIF, its fix reproduces the plan byte for byte, secrets stay
masked, and every refusal is one sentence, exit 2, and no file."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.export.sarif import write_atomically
from jupiter.workspace import Workspace
from tests.conftest import ROOT, run_cli
from tests.export.sarif_apply import apply_change, validate

SECRET = "hunter2-Sup3r-s3cret"


@dataclass
class Host:
    home: Path
    root: Path
    findings: list[dict[str, Any]]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    base = tmp_path_factory.mktemp("sarif_cli")
    root = base / "host"
    shutil.copytree(ROOT / "examples" / "host", root, symlinks=True)
    home = base / "home"
    report = base / "leak.sarif"
    report.write_text(
        json.dumps(
            {
                "version": "2.1.0",
                "runs": [
                    {
                        "tool": {"driver": {"name": "leakscan", "rules": [{"id": "LEAK-1"}]}},
                        "results": [
                            {
                                "ruleId": "LEAK-1",
                                "level": "error",
                                "message": {"text": f"hard-coded password = {SECRET}"},
                                "locations": [
                                    {
                                        "physicalLocation": {
                                            "artifactLocation": {"uri": "etc/app.ini"},
                                            "region": {
                                                "startLine": 3,
                                                "snippet": {"text": f"password = {SECRET}"},
                                            },
                                        }
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        )
    )
    engine = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="tester")
    try:
        engine.init()
        engine.add_user("cli-tester", ["admin"])
        engine.add_user("vic", ["viewer"])
        engine.scan(str(root), "bastion")
        engine.ingest([report], asset="bastion")
        findings = engine.list_findings(asset="bastion")
    finally:
        engine.close()
    yield Host(home, root, findings)


def _one_line_error(proc: Any, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_export_writes_a_valid_sarif_file_with_fixes(host: Host, tmp_path: Path) -> None:
    out = tmp_path / "bastion.sarif"
    proc = run_cli(
        "findings", "export", "--format", "sarif", "--asset", "bastion", "-o", str(out),
        home=host.home,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and f"wrote {out}" in proc.stderr
    log = json.loads(out.read_text())
    validate(log)
    results = [r for run in log["runs"] for r in run["results"]]
    assert len(results) == len(host.findings)
    assert sum(1 for r in results if r.get("fixes")) >= 5
    assert [p.name for p in tmp_path.iterdir()] == ["bastion.sarif"]  # no temp file left
    tools = [run["tool"]["driver"]["name"] for run in log["runs"]]
    assert tools == ["leakscan", "Jupiter"]


def test_secrets_stay_masked_in_the_export(host: Host) -> None:
    proc = run_cli("findings", "export", "--status", "open", home=host.home)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout
    log = json.loads(proc.stdout)
    validate(log)
    [leak] = [r for r in log["runs"][0]["results"] if r["ruleId"] == "LEAK-1"]
    assert "***REDACTED***" in leak["message"]["text"]


def test_no_fixes_exports_findings_only_and_a_viewer_may_do_that(host: Host) -> None:
    proc = run_cli(
        "--actor", "vic", "findings", "export", "--no-fixes", home=host.home
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    log = json.loads(proc.stdout)
    validate(log)
    assert not any(r.get("fixes") for run in log["runs"] for r in run["results"])
    # Fixes read the asset's files and plan: that needs the analyst or operator role.
    proc = run_cli("--actor", "vic", "findings", "export", home=host.home)
    _one_line_error(proc, "plan.create", "analyst")


def test_plan_as_sarif_reproduces_the_plan_byte_for_byte(host: Host) -> None:
    [root_login] = [f for f in host.findings if f["rule_id"] == "SSHD-ROOT-LOGIN"]
    fid = str(root_login["id"])
    planned = run_cli("plan", fid, "--json", home=host.home)
    assert planned.returncode == 0, planned.stderr
    writes = [c for c in json.loads(planned.stdout)["plan"]["changes"] if c["kind"] == "write"]
    assert writes
    proc = run_cli("plan", fid, "--format", "sarif", home=host.home)
    assert proc.returncode == 0, proc.stderr
    log = json.loads(proc.stdout)
    validate(log)
    [result] = [r for run in log["runs"] for r in run["results"]]
    assert result["properties"]["jupiterFindingId"] == root_login["id"]
    changes = {c["artifactLocation"]["uri"]: c for c in result["fixes"][0]["artifactChanges"]}
    assert set(changes) == {w["path"] for w in writes}
    for write in writes:
        original = (host.root / write["path"]).read_bytes()
        fixed = apply_change(original, changes[write["path"]]["replacements"])
        assert fixed == write["content"].encode()


def test_unknown_asset_status_and_format_are_refused(host: Host, tmp_path: Path) -> None:
    out = tmp_path / "keep.sarif"
    out.write_text("previous export\n")
    for args, words in (
        (["--asset", "nope"], ["no asset 'nope'", "jupiter assets list"]),
        (["--status", "opened"], ["unknown status 'opened'", "open"]),
        (["--format", "csv"], ["unknown export format 'csv'", "sarif"]),
    ):
        proc = run_cli("findings", "export", *args, "-o", str(out), home=host.home)
        _one_line_error(proc, *words)
        assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.sarif"]
    proc = run_cli("plan", "999999", "--format", "sarif", home=host.home)
    _one_line_error(proc, "no finding '999999'")
    proc = run_cli("plan", "1", "--format", "yaml", home=host.home)
    _one_line_error(proc, "unknown plan format 'yaml'")


def test_unwritable_outputs_are_refused_before_any_work(host: Host, tmp_path: Path) -> None:
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    for out, words in (
        (tmp_path / "missing" / "out.sarif", ["does not exist"]),
        (tmp_path, ["is a directory"]),
        (a_file / "out.sarif", ["does not exist"]),
    ):
        proc = run_cli("findings", "export", "-o", str(out), home=host.home)
        _one_line_error(proc, f"cannot write {out}", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.sarif"
    out.write_text("old\n")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(InputError, match=r"cannot write .*out\.sarif: No space left on device"):
        write_atomically(out, "new\n")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.sarif"]
