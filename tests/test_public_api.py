"""The public API is deliberate: this list changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import jupiter

EXPECTED = [
    "AssetSpec",
    "Category",
    "ConflictError",
    "Engine",
    "FindingRecord",
    "FindingStatus",
    "InputError",
    "JupiterError",
    "Location",
    "NotFoundError",
    "PathEscapeError",
    "Plan",
    "Remediator",
    "Risk",
    "Severity",
    "SnapshotError",
    "TargetError",
    "ValidationFailed",
    "ValidationResult",
    "VerificationFailed",
    "WorkspaceError",
    "__version__",
]


def test_exported_members() -> None:
    assert sorted(jupiter.__all__) == sorted(EXPECTED)
    for name in jupiter.__all__:
        assert getattr(jupiter, name) is not None


def test_help_does_not_import_the_heavy_stack() -> None:
    code = (
        "import sys; from jupiter.cli import app; "
        "print(','.join(m for m in ('sqlalchemy', 'libcst', 'asyncssh', 'alembic') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
