"""Acceptance on a realistic CloudFormation project (one YAML and one JSON
template, comments, odd indentation, flow mappings, intrinsic tags): real
Checkov before and after, through ``Engine.fix`` with Checkov's own findings
ingested, cfn-lint clean, a second run changes nothing, rollback restores
every byte.

Two Checkov runs and two cfn-lint runs. The per-fix gate is kept to its
re-parse checks here (``JUPITER_CFN_GATE=parse``): the Checkov rescan that
gate would run per fix is this test's single after-scan;
``test_cloudformation_gate.py`` drives the full gate.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.plugins.cloudformation import entries as catalog
from jupiter.plugins.cloudformation.template import parse
from tests.plugins.cloudformation.checkov_run import cfn_lint_errors, checkov_cfn, failed

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "cloudformation" / "project"
#: What a person must decide: a public website bucket, an encryption flag
#: computed by !If, a volume whose encryption forces a replacement.
LEFT = {
    ("CKV_AWS_20", "AWS::S3::Bucket.SiteBucket"),
    ("CKV_AWS_53", "AWS::S3::Bucket.SiteBucket"),
    ("CKV_AWS_54", "AWS::S3::Bucket.SiteBucket"),
    ("CKV_AWS_55", "AWS::S3::Bucket.SiteBucket"),
    ("CKV_AWS_56", "AWS::S3::Bucket.SiteBucket"),
    ("CKV_AWS_16", "AWS::RDS::DBInstance.Database"),
    ("CKV_AWS_3", "AWS::EC2::Volume.Volume"),
}


def test_cloudformation_project_fixed_through_the_engine(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPITER_CFN_GATE", "parse")
    repo = tmp_path / "infra"
    shutil.copytree(FIXTURE, repo)
    originals = {p.name: p.read_bytes() for p in repo.iterdir()}
    assert not cfn_lint_errors(sorted(repo.iterdir()))

    report = tmp_path / "checkov.json"
    before = checkov_cfn(repo, report)
    failed_before = failed(before)
    assert len(failed_before) >= 35
    asset = "shop-infra"
    sqlite_engine.ingest([report], asset=asset)

    params = ["cloudformation-hardening.approve=all"]
    first = sqlite_engine.fix(
        f"local:{repo}", asset=asset, only=["iac.cloudformation"], raw_params=params
    )
    assert first["status"] == "succeeded", first["steps"]
    statuses = {s["status"] for s in first["steps"]}
    assert statuses <= {"verified", "needs_manual", "already_fixed"}, statuses
    manual = [s for s in first["steps"] if s["status"] == "needs_manual"]
    # every needs_manual step names its decision
    reasons = " | ".join(str(s.get("needs_manual") or s.get("detail") or s) for s in manual)
    assert "static website" in reasons
    assert "forces a replacement of the DB instance" in reasons
    assert "replaces it" in reasons

    after = checkov_cfn(repo)
    failed_after = failed(after)
    assert failed_after == LEFT, sorted(failed_after ^ LEFT)
    fixed = failed_before - failed_after
    assert len(fixed) / len(failed_before) >= 0.8, (len(fixed), len(failed_before))
    # no check that passed before fails now
    assert not {k for k, v in after.items() if v == "FAILED" and before.get(k) == "PASSED"}
    # every safe catalog entry that failed before is fixed
    safe = {r for e in catalog.entries() if e.fix_class == "safe" for r in e.rule_ids()}
    assert not {k for k in failed_after if k[0] in safe} - LEFT
    assert not cfn_lint_errors(sorted(repo.iterdir()))

    # untouched resources and sections are byte-identical
    for name in ("storage.yaml", "web.json"):
        old_t = parse(name, originals[name].decode())
        new_text = (repo / name).read_text()
        for res in old_t.resources:
            if not any(k[1] == res.checkov_id for k in fixed):
                span = old_t.text[res.key.start_mark.index : res.node.end_mark.index]
                assert span in new_text, res.logical_id
        head = old_t.text[: old_t.text.index("Resources")]
        assert new_text.startswith(head)
    outputs = originals["storage.yaml"].decode().split("\nOutputs:", 1)[1]
    assert (repo / "storage.yaml").read_text().endswith(outputs)

    second = sqlite_engine.fix(
        f"local:{repo}", asset=asset, only=["iac.cloudformation"], raw_params=params
    )
    assert second["status"] == "nothing_to_do"
    assert {s["status"] for s in second["steps"]} <= {"needs_manual", "already_fixed"}

    sqlite_engine.rollback(first["run"])
    assert {p.name: p.read_bytes() for p in repo.iterdir()} == originals
