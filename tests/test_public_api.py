"""The public API is deliberate: this list changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import jupiter

EXPECTED = [
    "AssetSpec",
    "Category",
    "ConflictError",
    "Domain",
    "Engine",
    "FindingRecord",
    "FindingStatus",
    "InputError",
    "JupiterError",
    "Location",
    "NoParams",
    "NotFoundError",
    "PathEscapeError",
    "Plan",
    "Remediator",
    "RemoveFile",
    "Risk",
    "RunCommand",
    "SetMode",
    "Severity",
    "SnapshotError",
    "TargetError",
    "TargetView",
    "ValidationFailed",
    "ValidationResult",
    "VerificationFailed",
    "WorkspaceError",
    "WriteFile",
    "decode_text",
    "file_edits",
    "project_files",
    "read_text",
    "sha256_bytes",
    "unified_diff",
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
