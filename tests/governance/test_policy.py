"""The policy engine: built-in default decisions, the decision log, policy
tests and simulation, and every policy error turning into deny."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import run_cli

from jupiter import policy
from jupiter.engine import Engine
from jupiter.errors import PermissionDenied
from jupiter.store.tables import PolicyDecisionRow
from jupiter.workspace import Workspace

DEV_PATCH = {
    "asset": {"environment": "dev"},
    "change": {"kind": "dependency", "bump": "patch"},
    "finding": {"severity": "high"},
}
PROD = {**DEV_PATCH, "asset": {"environment": "prod"}}


@pytest.fixture
def eng(tmp_path: Path) -> Engine:
    e = Engine(Workspace(tmp_path / "home", f"sqlite:///{tmp_path / 'j.db'}"), actor="alice")
    e.init()
    return e


def test_default_policy_auto_approves_a_dev_patch_bump_and_logs_it(eng: Engine) -> None:
    d = eng.decide("remediation", DEV_PATCH, subject="finding:1")
    assert d.ok and d.result["auto_approve"] is True and d.result["required_approvals"] == 0
    p = eng.decide("remediation", PROD, subject="finding:2")
    assert p.result["auto_approve"] is False and p.result["required_approvals"] == 2
    with eng.db.reading() as s:
        rows = s.scalars(select(PolicyDecisionRow).order_by(PolicyDecisionRow.id)).all()
    assert [r.subject for r in rows] == ["finding:1", "finding:2"]
    assert rows[0].input == DEV_PATCH and rows[0].policy_hash == eng.policies.hash
    assert rows[0].result["value"]["auto_approve"] is True


def test_cache_returns_the_same_decision(eng: Engine) -> None:
    first = eng.policies.evaluate("priority", {"finding": {"severity": "high"}})
    again = eng.policies.evaluate("priority", {"finding": {"severity": "high"}})
    assert not first.cached and again.cached and again.result == first.result


def test_workspace_policies_replace_the_default_and_errors_deny(eng: Engine) -> None:
    folder = eng.workspace.home / "policies"
    folder.mkdir()
    (folder / "p.rego").write_text("package jupiter\nimport rego.v1\n\npriority := input.x +\n")
    fresh = Engine(eng.workspace, actor="alice")
    d = fresh.decide("priority", {"x": 1})
    assert d.result is None and d.error is not None
    assert "p.rego:4 does not compile" in d.error and "deny" in d.error
    with pytest.raises(policy.PolicyError, match=r"p\.rego:4 does not compile"):
        fresh.policy_simulate()
    (folder / "p.rego").write_text('package jupiter\nimport rego.v1\nremediation := "yes"\n')
    wrong = Engine(eng.workspace, actor="alice").decide("remediation", DEV_PATCH)
    assert wrong.result["auto_approve"] is False and "wrong type" in str(wrong.error)
    (folder / "p.rego").write_text(
        "package jupiter\nimport rego.v1\nt if { 1 == 1 with input as {} }\n"
    )
    with pytest.raises(policy.PolicyError, match=r"p\.rego:3: `with \.\.\. as` is not supported"):
        Engine(eng.workspace, actor="alice").policies.check()


def test_simulate_replays_the_log_under_the_current_policy(eng: Engine) -> None:
    eng.decide("remediation", DEV_PATCH)
    eng.decide("remediation", PROD)
    assert eng.policy_simulate()["changed"] == 0
    folder = eng.workspace.home / "policies"
    folder.mkdir()
    text = (policy.BUILTIN / "default.rego").read_text()
    stricter = text.replace('environment in {"dev", "staging"}', 'environment in {"staging"}')
    (folder / "default.rego").write_text(stricter)
    report = Engine(eng.workspace, actor="alice").policy_simulate()
    assert report["replayed"] == 2 and report["changed"] == 1
    assert report["decisions"][0]["before"]["auto_approve"] is True
    assert report["decisions"][0]["now"]["auto_approve"] is False


def test_viewer_may_evaluate_but_not_decide(eng: Engine) -> None:
    eng.add_user("vic", ["viewer"])
    vic = Engine(eng.workspace, actor="vic")
    assert vic.policy_test()["failed"] == 0
    with pytest.raises(PermissionDenied, match=r"policy\.decide"):
        vic.decide("priority", {})


def test_cli_policy_eval_test_and_errors(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert run_cli("init", home=home).returncode == 0
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps({"decision": "remediation", "input": DEV_PATCH}))
    done = run_cli("policy", "eval", "--input", str(inp), "--json", home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["auto_approve"] is True
    tested = run_cli("policy", "test", home=home)
    assert tested.returncode == 0 and "6 passed, 0 failed" in tested.stdout
    (home / "policies").mkdir()
    (home / "policies" / "bad.rego").write_text("package jupiter\n\npriority := [\n")
    bad = run_cli("policy", "eval", "--input", str(inp), home=home)
    assert bad.returncode == 2 and "bad.rego:" in bad.stderr and "does not compile" in bad.stderr
    assert bad.stdout == "" and bad.stderr.count("\n") == 1


def test_prioritise_sets_priorities_from_the_policy_and_logs_distinct_inputs(
    eng: Engine, tmp_path: Path
) -> None:
    import shutil

    from tests.conftest import ROOT

    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    eng.scan(str(host), asset="h1")
    before = {f["id"]: f["priority"] for f in eng.list_findings()}
    folder = eng.workspace.home / "policies"
    folder.mkdir()
    (folder / "p.rego").write_text(
        "package jupiter\nimport rego.v1\npriority := 42 if input.finding.severity\n"
    )
    fresh = Engine(eng.workspace, actor="alice")
    done = fresh.prioritise()
    assert done["findings"] == len(before) and done["changed"] == len(before)
    assert {f["priority"] for f in fresh.list_findings()} == {42.0}
    with fresh.db.reading() as s:
        logged = s.scalars(
            select(PolicyDecisionRow).where(PolicyDecisionRow.subject.startswith("prioritise"))
        ).all()
    assert len(logged) == done["distinct_inputs"] and logged[0].policy_hash == fresh.policies.hash
