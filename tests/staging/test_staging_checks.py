"""The staging checks that read a fix outcome, on hand-made outcomes."""

from __future__ import annotations

from pathlib import Path

from jupiter.targets.local import LocalTarget
from jupiter.workflows.staging_checks import (
    asset_tests_check,
    no_new_findings_check,
    validator_check,
)


def _step(status: str, *validations: tuple[str, str, str], detail: str = "") -> dict[str, object]:
    return {
        "rule_id": "R-1",
        "finding": 1,
        "status": status,
        "detail": detail,
        "validations": [{"validator": v, "status": s, "detail": d} for v, s, d in validations],
    }


def test_validator_outcomes() -> None:
    ok = validator_check("t", {"steps": [_step("verified", ("sshd -t", "passed", "fine"))]})
    assert (ok.outcome, ok.evidence) == ("passed", "1 validation(s) passed: sshd -t")
    rejected = validator_check(
        "t", {"steps": [_step("failed", ("nft -c", "failed", "syntax error, line 3"))]}
    )
    assert rejected.outcome == "failed" and "nft -c: syntax error, line 3" in rejected.evidence
    absent = validator_check("t", {"steps": [_step("verified", ("sshd -t", "skipped", "no sshd"))]})
    assert absent.outcome == "skipped" and "no sshd" in absent.evidence
    assert validator_check("t", {"steps": [_step("verified")]}).outcome == "skipped"
    gate = validator_check(
        "t",
        {
            "steps": [_step("rolled_back", ("terraform validate", "passed", ""))],
            "gates": [{"validator": "checkov", "status": "failed", "detail": "CKV_AWS_20"}],
        },
    )
    assert gate.outcome == "failed" and "checkov: CKV_AWS_20" in gate.evidence
    broken = validator_check(
        "t", {"steps": [_step("failed", detail="validation could not run, nothing applied: x")]}
    )
    assert broken.outcome == "failed"


def test_no_new_findings_lists_the_new_ones() -> None:
    before = {"a": {"rule_id": "R-1", "path": "x", "title": "", "line": 1}}
    after = {**before, "b": {"rule_id": "R-2", "path": "y", "title": "", "line": 2}}
    bad = no_new_findings_check("t", before, after, [])
    assert bad.outcome == "failed" and "R-2 in y" in bad.evidence
    assert [n["fingerprint"] for n in bad.details["new"]] == ["b"]
    assert no_new_findings_check("t", after, before, []).outcome == "passed"


def test_asset_tests_run_in_the_root_with_a_timeout(tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("x")
    target = LocalTarget(tmp_path)
    assert asset_tests_check("t", target, ["test", "-f", "marker"], 10).outcome == "passed"
    assert asset_tests_check("t", target, None, 10).outcome == "skipped"
    slow = asset_tests_check("t", target, ["sleep", "5"], 1)
    assert slow.outcome == "failed" and "timed out" in slow.evidence
