"""kill -9 at every stage boundary and in the middle of a batch, then
resume: the remediation goes on (or finishes its rollback), no target is
changed twice, and the audit chain verifies. The quick variants drive a
fleet of small app targets from a helper process; the CLI variants (sshd
hardening on examples/host copies, `jupiter remediate` then `jupiter
remediations resume`) are heavier: one runs by default, the rest are soak."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from jupiter.engine import Engine
from jupiter.workspace import Workspace
from tests.conftest import ROOT, run_cli
from tests.remediations.fleetlib import applies, make_fleet, tree

POINTS = [
    pytest.param("stage.snapshot.started", marks=pytest.mark.soak),
    "stage.snapshot.finished",
    "deploy.before_apply",
    "deploy.after_step",
    "deploy.after_target:2",
    pytest.param("stage.deploy.finished", marks=pytest.mark.soak),
    "stage.verify.started",
    pytest.param("stage.verify.finished", marks=pytest.mark.soak),
    pytest.param("stage.notify.started", marks=pytest.mark.soak),
]


def _driver(home: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JUPITER_FAULT"}
    if fault:
        env["JUPITER_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "tests.remediations.crash_driver", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def _app_fleet(tmp_path: Path, extra: list[dict[str, object]] | None = None) -> Path:
    make_fleet(tmp_path, N, app=True)
    home = tmp_path / "home"
    eng = _engine(home)
    try:
        eng.import_assets(tmp_path / "assets.yaml")
    finally:
        eng.close()
    stages: list[dict[str, object]] = [
        {"kind": "snapshot"},
        {"kind": "deploy", "strategy": {"type": "rolling", "batch": N}, "concurrency": 1},
        {"kind": "verify"},
        *(extra or []),
        {"kind": "notify"},
    ]
    (home / "workflows").mkdir(parents=True, exist_ok=True)
    (home / "workflows/wf.yaml").write_text(yaml.safe_dump({"name": "wf", "stages": stages}))
    return home


@pytest.mark.parametrize("fault", POINTS)
def test_kill_at_each_point_then_resume(tmp_path: Path, fault: str) -> None:
    home = _app_fleet(tmp_path)
    killed = _driver(home, "create", fault=fault)
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    resumed = _driver(home, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert orjson.loads(resumed.stdout)["status"] == "completed"
    roots = sorted((tmp_path / "fleet").iterdir())
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)
    eng = _engine(home)
    try:
        assert applies(eng) == {r.name: 1 for r in roots}, "a target was changed twice"
        assert eng.audit_verify().ok
    finally:
        eng.close()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("rollback.started", marks=pytest.mark.soak),
        pytest.param("rollback.before_target:2", marks=pytest.mark.soak),
        "rollback.after_target:2",
    ],
)
def test_kill_during_the_fleet_rollback_then_resume_finishes_it(tmp_path: Path, fault: str) -> None:
    manual = {"kind": "manual", "question": "healthy?", "fields": {"ok": "bool"}}
    manual["expect"] = {"ok": True}
    home = _app_fleet(tmp_path, [manual])
    roots = sorted((tmp_path / "fleet").iterdir())
    before = {r.name: tree(r) for r in roots}
    made = _driver(home, "create")
    assert orjson.loads(made.stdout)["status"] == "waiting_manual", made.stderr
    killed = _driver(home, "answer", "ok=false", fault=fault)
    assert killed.returncode == -9, killed.stderr
    resumed = _driver(home, "resume")
    out = orjson.loads(resumed.stdout)
    assert out["status"] == "rolled_back", resumed.stderr
    assert out["facts"]["result"]["system_status"] == "restored to pre-remediation state"
    assert {r.name: tree(r) for r in roots} == before
    eng = _engine(home)
    try:
        assert eng.audit_verify().ok
    finally:
        eng.close()


RULE = "SSHD-ROOT-LOGIN"
N = 3


def _fleet(tmp_path: Path, extra: list[dict[str, object]] | None = None) -> tuple[Path, list[Path]]:
    roots = []
    assets = []
    for i in range(1, N + 1):
        root = tmp_path / f"web-0{i}"
        shutil.copytree(ROOT / "examples/host", root, symlinks=True)
        roots.append(root)
        assets.append(
            {"id": root.name, "group": "web", "environment": "prod", "connection": f"local:{root}"}
        )
    (tmp_path / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    stages: list[dict[str, object]] = [
        {"kind": "snapshot"},
        # One batch of all three, one at a time: a kill after the second
        # target is in the middle of the batch.
        {"kind": "deploy", "strategy": {"type": "rolling", "batch": N}, "concurrency": 1},
        {"kind": "verify"},
        *(extra or []),
        {"kind": "notify"},
    ]
    (home / "workflows/roll.yaml").write_text(yaml.safe_dump({"name": "roll", "stages": stages}))
    assert run_cli("assets", "import", str(tmp_path / "assets.yaml"), home=home).returncode == 0
    return home, roots


def _engine(home: Path) -> Engine:
    return Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="tester")


def _remediate(home: Path, fault: str) -> None:
    args = ("remediate", "--group", "web", "--only", RULE, "--workflow", "roll")
    killed = run_cli(*args, home=home, env={"JUPITER_FAULT": fault})
    assert killed.returncode == -9, (killed.returncode, killed.stderr)


@pytest.mark.parametrize(
    "fault",
    [
        "deploy.after_target:2",
        pytest.param("stage.snapshot.finished", marks=pytest.mark.soak),
        pytest.param("deploy.before_apply", marks=pytest.mark.soak),
        pytest.param("deploy.after_step", marks=pytest.mark.soak),
        pytest.param("stage.verify.started", marks=pytest.mark.soak),
    ],
)
def test_cli_kill_then_resume_applies_each_target_once(tmp_path: Path, fault: str) -> None:
    home, roots = _fleet(tmp_path)
    _remediate(home, fault)
    resumed = run_cli("remediations", "resume", "REM-1", "--json", home=home)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"
    for root in roots:
        assert "PermitRootLogin no" in (root / "etc/ssh/sshd_config").read_text()
    eng = _engine(home)
    try:
        assert applies(eng) == {r.name: 1 for r in roots}, "a target was changed twice"
    finally:
        eng.close()
    assert run_cli("audit", "verify", home=home).returncode == 0
    again = run_cli("remediations", "resume", "REM-1", home=home)
    assert again.returncode == 2 and "only a remediation still under way" in again.stderr


@pytest.mark.soak
def test_cli_kill_in_the_middle_of_a_rollback_then_resume_finishes_it(tmp_path: Path) -> None:
    manual = {"kind": "manual", "question": "healthy?", "fields": {"ok": "bool"}}
    manual["expect"] = {"ok": True}
    home, roots = _fleet(tmp_path, [manual])
    before = {r.name: tree(r) for r in roots}
    made = run_cli(
        "remediate", "--group", "web", "--only", RULE, "--workflow", "roll", "--json", home=home
    )
    assert json.loads(made.stdout)["status"] == "waiting_manual", made.stderr
    killed = run_cli(
        "remediations",
        "answer",
        "REM-1",
        "--field",
        "ok=false",
        home=home,
        env={"JUPITER_FAULT": "rollback.after_target:2"},
    )
    assert killed.returncode == -9, killed.stderr
    resumed = run_cli("remediations", "resume", "REM-1", "--json", home=home)
    assert resumed.returncode == 1, resumed.stderr  # it ends rolled back
    out = json.loads(resumed.stdout)
    assert out["status"] == "rolled_back"
    assert out["facts"]["result"]["system_status"] == "restored to pre-remediation state"
    assert {r.name: tree(r) for r in roots} == before
    assert run_cli("audit", "verify", home=home).returncode == 0
