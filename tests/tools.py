"""Where the external tools installed by ``scripts/tools.sh`` live."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import ROOT, need_service


def tool(name: str, binary: str) -> Path:
    """``ROOT/.tools/<name>/bin/<binary>``; skips the test (fails under
    JUPITER_REQUIRE_SERVICES=1) when the tool is not installed."""
    path = ROOT / ".tools" / name / "bin" / binary
    if not (path.is_file() and os.access(path, os.X_OK)):
        need_service(False, f"{name} is not installed; run scripts/tools.sh")
    return path
