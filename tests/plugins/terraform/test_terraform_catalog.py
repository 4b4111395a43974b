"""Every fixable Terraform catalog entry, proven with Checkov: its sample
fails the entry's checks before the fix and passes them after, no check that
passed before fails after, and a second run plans nothing. All samples share
one project so Checkov runs once before and once after."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.catalog import load_catalog
from jupiter.plugins.terraform import gate
from tests.plugins.terraform.catalog_project import build, fix_all, fixable_entries
from tests.tools import tool


def _prove(root: Path, copies: int) -> None:
    checkov = tool("checkov", "checkov")
    entries = fixable_entries()
    cases = build(root, entries, copies)
    assert {s.entry.id for s, _ in cases} == {e.id for e in entries}
    before = gate.scan(root, checkov)
    failing = {(check, address) for check, _, address in before.failed}
    for sample, _ in cases:
        for check in sample.entry.rule_ids():
            assert (check, sample.address) in failing, (
                sample.entry.id,
                check,
                "not failing before",
            )
    snapshot = {p: p.read_bytes() for p in root.rglob("*.tf")}

    counts = fix_all(root, cases, approve=["risk"])
    assert counts == {"changed": len(cases), "empty": 0, "manual": 0}

    after = gate.scan(root, checkov)
    still = {(check, address) for check, _, address in after.failed}
    for sample, _ in cases:
        for check in sample.entry.rule_ids():
            assert (check, sample.address) not in still, (sample.entry.id, check, "still failing")
    result = gate.compare(before, after)
    assert not result.regressed, sorted(result.regressed)
    assert not result.new, sorted(result.new)

    again = fix_all(root, cases, approve=["risk"])
    assert again == {"changed": 0, "empty": len(cases), "manual": 0}
    assert any(p.read_bytes() != data for p, data in snapshot.items())


def test_every_fixable_entry_fails_before_and_passes_after_checkov(tmp_path: Path) -> None:
    _prove(tmp_path / "catalog", copies=1)


@pytest.mark.soak
def test_catalog_proof_at_three_copies(tmp_path: Path) -> None:
    _prove(tmp_path / "catalog", copies=3)


def test_catalog_breadth_meets_the_terraform_goal() -> None:
    cov = load_catalog().select(framework="terraform")
    ids: dict[str, str] = {}
    rank = {"safe": 0, "risk": 1, "needs_manual": 2}
    for entry in cov:
        for rid in entry.checks.get("checkov", []):
            if rid not in ids or rank[entry.fix_class] < rank[ids[rid]]:
                ids[rid] = entry.fix_class
    assert len(ids) >= 150
    assert sum(1 for c in ids.values() if c != "needs_manual") >= 90
    providers = {e.provider for e in cov}
    assert providers == {"aws", "azure", "gcp"}


def test_readme_table_is_the_generated_catalog() -> None:
    from jupiter.catalog import markdown_table

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    start = readme.index("<!-- terraform-catalog:start -->\n") + len(
        "<!-- terraform-catalog:start -->\n"
    )
    end = readme.index("<!-- terraform-catalog:end -->")
    assert readme[start:end] == markdown_table(load_catalog().select(framework="terraform"))
