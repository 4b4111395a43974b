"""Where the external tools installed by ``scripts/tools.sh`` live."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT, need_service


def tool(name: str, binary: str) -> Path:
    """``ROOT/.tools/<name>/bin/<binary>``; skips the test (fails under
    JUPITER_REQUIRE_SERVICES=1) when the tool is not installed."""
    path = ROOT / ".tools" / name / "bin" / binary
    if not (path.is_file() and os.access(path, os.X_OK)):
        need_service(False, f"{name} is not installed; run scripts/tools.sh")
    return path


def checkov_failed(root: Path, framework: str) -> set[str]:
    """The check ids real Checkov fails under ``root`` for ``framework``."""
    proc = subprocess.run(
        [
            str(tool("checkov", "checkov")),
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "--framework",
            framework,
            "-d",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    reports = doc if isinstance(doc, list) else [doc]
    return {c["check_id"] for r in reports for c in r.get("results", {}).get("failed_checks", [])}
