"""README's catalog tables are `jupiter catalog --markdown` output."""

from __future__ import annotations

import re

import pytest

from jupiter.catalog import load_catalog, markdown_table
from tests.conftest import ROOT


@pytest.mark.parametrize("framework", ["cloudformation", "kubernetes", "dockerfile"])
def test_readme_catalog_table_is_generated(framework: str) -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(
        rf"<!-- catalog:{framework} [^>]*-->\n(.*?)<!-- /catalog:{framework} -->", readme, re.S
    )
    assert m is not None, f"README has no generated {framework} table"
    assert m.group(1) == markdown_table(load_catalog().select(framework=framework))


def test_breadth_of_these_frameworks() -> None:
    cat = load_catalog()
    mine = [e for e in cat.entries if e.framework in ("cloudformation", "kubernetes", "dockerfile")]
    ids = {r for e in mine for r in e.checks.get("checkov", [])}
    fixable = {
        r for e in mine if e.fix_class in ("safe", "risk") for r in e.checks.get("checkov", [])
    }
    assert len(ids) >= 70 and len(fixable) >= 50, (len(ids), len(fixable))
    for entry in mine:
        if entry.fix_class == "needs_manual":
            assert entry.decision
        if entry.fix_class == "risk":
            assert entry.risk
