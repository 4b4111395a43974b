"""The gate every Python fix passes before it is applied: the candidate
module compiles, and Bandit (when installed) no longer reports the rule there
and reports no rule it did not report before, except the expected
transitions (``shell=True`` -> argv is B603/B607, information only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from jupiter.plans import Plan, WriteFile
from jupiter.plugins.base import ValidationResult
from jupiter.scratch import scratch
from jupiter.targets.base import TargetView
from jupiter.targets.overlay import OverlayView

#: Rules a fix may make Bandit report that are not new problems.
EXPECTED_AFTER: dict[str, frozenset[str]] = {
    # the command's words were there before, inside the shell string: a
    # partial path (B607) or a /tmp path (B108) is not a new problem
    "B602": frozenset({"B603", "B607", "B404", "B108"}),
    "B605": frozenset({"B603", "B607", "B404", "B108"}),
    "B306": frozenset(),
}


def bandit_binary() -> str | None:
    """``JUPITER_BANDIT``, else ``bandit`` on PATH."""
    explicit = os.environ.get("JUPITER_BANDIT")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("bandit")


def _bandit(binary: str, source: str) -> dict[str, int]:
    with scratch("bandit") as tmp:
        path = Path(tmp) / "module.py"
        path.write_text(source, encoding="utf-8")
        out = subprocess.run(
            [binary, "-q", "-f", "json", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    report = json.loads(out.stdout or "{}")
    counts: dict[str, int] = {}
    for result in report.get("results", []):
        counts[result["test_id"]] = counts.get(result["test_id"], 0) + 1
    return counts


def check_candidate(plan: Plan, candidate: TargetView) -> list[ValidationResult]:
    results: list[ValidationResult] = []
    for change in plan.changes:
        if not isinstance(change, WriteFile) or not change.path.endswith(".py"):
            continue
        try:
            compile(change.content, change.path, "exec")
        except SyntaxError as exc:
            results.append(
                ValidationResult("compile", "failed", f"{change.path}:{exc.lineno}: {exc.msg}")
            )
            continue
        results.append(ValidationResult("compile", "passed", change.path))
        binary = bandit_binary()
        if binary is None:
            results.append(ValidationResult("bandit", "skipped", "bandit is not installed"))
            continue
        rule = plan.rule_id.upper()
        try:
            before_src = candidate_original(candidate, change)
            before = _bandit(binary, before_src) if before_src is not None else {}
            after = _bandit(binary, change.content)
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            results.append(ValidationResult("bandit", "failed", f"bandit did not run: {exc}"))
            continue
        new = set(after) - set(before) - EXPECTED_AFTER.get(rule, frozenset())
        if after.get(rule, 0) >= before.get(rule, 0) and before.get(rule, 0):
            results.append(
                ValidationResult("bandit", "failed", f"{change.path}: {rule} still reported")
            )
        elif new:
            results.append(
                ValidationResult(
                    "bandit", "failed", f"{change.path}: new findings {', '.join(sorted(new))}"
                )
            )
        else:
            results.append(ValidationResult("bandit", "passed", f"{rule} gone from {change.path}"))
    return results


def candidate_original(candidate: TargetView, change: WriteFile) -> str | None:
    """The module as it is on the target now (the candidate overlays the
    plan, so ask it for the original through its base when it has one)."""
    view = candidate.base if isinstance(candidate, OverlayView) else None
    if view is None:
        return None
    try:
        return view.read_bytes(change.path).decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
