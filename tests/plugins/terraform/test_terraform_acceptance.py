"""Acceptance on realistic multi-file projects, one per cloud, through the
engine (scan + Checkov findings ingested → plan → snapshot → validate →
apply → verify → rollback), judged by Checkov before and after."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from jupiter.catalog import load_catalog
from jupiter.engine import Engine
from jupiter.plugins.terraform import gate
from jupiter.plugins.terraform.hcl import parse
from tests.tools import tool

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "terraform"


def _blocks(root: Path) -> dict[tuple[str, str], bytes]:
    """Every top-level block of every .tf file, by (file, block header)."""
    out = {}
    for path in sorted(root.rglob("*.tf")):
        rel = path.relative_to(root).as_posix()
        tf = parse(rel, path.read_bytes())
        for block in tf.blocks:
            key = (rel, " ".join([block.kind, *block.labels]))
            out[key] = tf.source[block.node.start_byte : block.node.end_byte]
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _class_of(check: str, address: str) -> str | None:
    kind = address.split(".")[-2] if address.count(".") >= 1 else ""
    classes = [e.fix_class for e in load_catalog().for_rule(check) if kind in e.resources]
    if not classes:
        return None
    return min(classes, key=["safe", "risk", "needs_manual"].index)


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_project_is_fixed_and_rolled_back(
    sqlite_engine: Engine, tmp_path: Path, cloud: str
) -> None:
    checkov = tool("checkov", "checkov")
    repo = tmp_path / cloud
    shutil.copytree(FIXTURES / cloud, repo)
    original = _tree(repo)
    before = gate.scan(repo, checkov)
    report = tmp_path / "checkov.json"
    proc = subprocess.run(
        [
            str(checkov),
            "--skip-download",
            "--framework",
            "terraform",
            "-d",
            str(repo),
            "-o",
            "json",
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    report.write_bytes(proc.stdout)
    sqlite_engine.ingest([report], asset=cloud)

    run = sqlite_engine.fix(
        f"local:{repo}",
        asset=cloud,
        only=["iac.terraform"],
        raw_params=["terraform-iac.approve=risk"],
    )
    steps = run["steps"]
    statuses = Counter(s["status"] for s in steps)
    assert run["status"] == "succeeded", statuses
    # the engine's own gate: Checkov once before and once after the run
    (checked,) = run["gates"]
    assert checked["validator"] == "checkov-rescan" and checked["status"] == "passed", checked
    assert not set(statuses) - {"verified", "needs_manual", "already_fixed"}, [
        (s["rule_id"], s["detail"])
        for s in steps
        if s["status"] not in ("verified", "needs_manual", "already_fixed")
    ]
    for step in steps:
        if step["status"] == "needs_manual":
            assert len(step["detail"]) > 20, step  # the decision, in words

    after = gate.scan(repo, checkov)
    result = gate.compare(before, after)
    assert not result.regressed, sorted(result.regressed)
    assert not result.new, sorted(result.new)
    failed_before = len(result.fixed) + len(result.still_failing)
    rate = len(result.fixed) / failed_before
    assert rate >= 0.80, (rate, sorted(result.still_failing))
    # Every safe fix is applied, except where a guard asks a person (a bucket
    # that serves a public website stays public until someone decides).
    guarded = {s["rule_id"] for s in steps if "public website" in (s["detail"] or "")}
    unfixed_safe = [
        k for k in result.still_failing if _class_of(k[0], k[2]) == "safe" and k[0] not in guarded
    ]
    assert not unfixed_safe, unfixed_safe
    if cloud == "aws":
        assert "CKV2_AWS_6" in guarded  # the website bucket

    # Blocks no step touched are byte-identical; every file still parses.
    old, new = _blocks_from(original), _blocks(repo)
    touched = {s["rule_id"] for s in steps if s["status"] == "verified"}
    assert touched
    changed = {k for k in old if new.get(k) != old[k]}
    assert set(old) <= set(new)  # nothing removed or renamed
    unchanged = set(old) - changed
    assert len(unchanged) >= len(old) // 3, (len(unchanged), len(old))
    for key in changed:
        assert key[1].startswith("resource "), key  # only resources are edited

    second = sqlite_engine.fix(
        f"local:{repo}",
        asset=cloud,
        only=["iac.terraform"],
        raw_params=["terraform-iac.approve=risk"],
    )
    assert second["status"] == "nothing_to_do", Counter(s["status"] for s in second["steps"])
    assert _tree(repo) != original

    back = sqlite_engine.rollback(run["run"])
    assert back["verified"] and back["full"], back
    assert _tree(repo) == original
    print(
        json.dumps(
            {
                "cloud": cloud,
                "fixed": len(result.fixed),
                "failed_before": failed_before,
                "rate": round(rate, 3),
                "steps": dict(statuses),
            }
        )
    )


def _blocks_from(tree: dict[str, bytes]) -> dict[tuple[str, str], bytes]:
    out = {}
    for rel, data in tree.items():
        if not rel.endswith(".tf"):
            continue
        tf = parse(rel, data)
        for block in tf.blocks:
            out[(rel, " ".join([block.kind, *block.labels]))] = data[
                block.node.start_byte : block.node.end_byte
            ]
    return out
