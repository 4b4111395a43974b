"""One Checkov run over a directory's CloudFormation templates."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.tools import tool


def checkov_cfn(root: Path, out: Path | None = None) -> dict[tuple[str, str], str]:
    """(check id, resource) -> PASSED/FAILED; the raw report goes to ``out``."""
    binary = tool("checkov", "checkov")
    proc = subprocess.run(
        [
            str(binary),
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "--framework",
            "cloudformation",
            "-d",
            str(root.resolve()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    if out is not None:
        out.write_text(proc.stdout)
    doc = json.loads(proc.stdout)
    results: dict[tuple[str, str], str] = {}
    for report in doc if isinstance(doc, list) else [doc]:
        for status, key in (("PASSED", "passed_checks"), ("FAILED", "failed_checks")):
            for check in report.get("results", {}).get(key, []):
                results[(check["check_id"], check["resource"])] = status
    return results


def failed(results: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    return {k for k, v in results.items() if v == "FAILED"}


def cfn_lint_errors(paths: list[Path]) -> list[str]:
    binary = tool("cfn-lint", "cfn-lint")
    proc = subprocess.run(
        [str(binary), "--format", "parseable", "--", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return [line for line in proc.stdout.splitlines() if ":E" in line]
