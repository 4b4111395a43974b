"""Bandit as an independent verifier: B608 must stop reporting the fixed functions."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from tests.plugins.sql_injection import harness
from tests.tools import tool

BANDIT: str | None = None


@pytest.fixture(autouse=True)
def _bandit() -> None:
    """Bandit from scripts/tools.sh (skips without it; fails under JUPITER_REQUIRE_SERVICES=1)."""
    global BANDIT
    BANDIT = str(tool("bandit", "bandit"))


def _b608_functions(root: Path, names: list[str]) -> dict[str, set[str]]:
    """Per file, the functions holding a B608 report (one Bandit run for all)."""
    assert BANDIT is not None
    paths = [str(root / n) for n in names]
    proc = subprocess.run(
        [BANDIT, "-f", "json", "-q", "-t", "B608", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1 means "issues found"
    results = json.loads(proc.stdout)["results"]
    found: dict[str, set[str]] = {}
    for name in names:
        lines = {
            r["line_number"]
            for r in results
            if r["test_id"] == "B608" and Path(r["filename"]).name == name
        }
        tree = ast.parse((root / name).read_text())
        found[name] = {
            n.name
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef)
            and any(n.lineno <= line <= (n.end_lineno or n.lineno) for line in lines)
        }
    return found


# Reported after the fix: ordered_by/by_ids/insert_many are left for a human
# (identifier, IN list, executemany); all_names joins a constant table name,
# which Bandit reports and our detector does not; by_name_fstring keeps its
# constant {TABLE} in an f-string after the fix, which Bandit still reports for
# the same reason; sorted_names orders by a caller-chosen column.
STILL_REPORTED = {
    "sqlite_app.py": {"ordered_by", "by_ids", "insert_many", "all_names", "by_name_fstring"},
    "sqlalchemy_app.py": {"sorted_names"},
    "psycopg_app.py": set(),
    "django_app.py": set(),
}


def test_bandit_b608_clears_fixed_functions(tmp_path_factory: pytest.TempPathFactory) -> None:
    names = sorted(STILL_REPORTED)
    before = _b608_functions(harness.HERE, names)
    runs = {n: harness.fixed_fixture(tmp_path_factory.mktemp, n) for n in names}
    fixed_root = tmp_path_factory.mktemp("bandit_after")
    for name, run in runs.items():
        (fixed_root / name).write_text(run.fixed)
    after = _b608_functions(fixed_root, names)
    for name, run in runs.items():
        fixed = {plan.title.rsplit(" in ", 1)[1] for plan in run.applied}
        assert fixed, f"{name} must have fixable sites"
        # Bandit does not look into Django extra(where=[...]).
        assert fixed - {"by_email_extra"} <= before[name]
        assert after[name] == STILL_REPORTED[name], name
