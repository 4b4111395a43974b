"""Jupiter: automated security remediation.

The public API is what ``__all__`` lists; everything else is internal. It
includes the plugin kit a third-party remediation domain needs: the
:class:`Remediator` contract, :class:`Domain`, the read-only
:class:`TargetView`, the change types and the edit helpers.
Names are imported lazily so that ``jupiter --help`` does not pay for the
database and parser stacks.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "jupiter.engine",
    "AssetSpec": "jupiter.models",
    "Category": "jupiter.models",
    "FindingRecord": "jupiter.models",
    "FindingStatus": "jupiter.models",
    "Location": "jupiter.models",
    "Severity": "jupiter.models",
    "Plan": "jupiter.plans",
    "Risk": "jupiter.plans",
    "Remediator": "jupiter.plugins.base",
    "ValidationResult": "jupiter.plugins.base",
    "Domain": "jupiter.plugins.domains",
    "NoParams": "jupiter.plugins.base",
    "TargetView": "jupiter.targets.base",
    "WriteFile": "jupiter.plans",
    "SetMode": "jupiter.plans",
    "RemoveFile": "jupiter.plans",
    "RunCommand": "jupiter.plans",
    "file_edits": "jupiter.plans",
    "unified_diff": "jupiter.plans",
    "sha256_bytes": "jupiter.plans",
    "project_files": "jupiter.plugins.kit",
    "read_text": "jupiter.plugins.kit",
    "decode_text": "jupiter.plugins.kit",
    "ConflictError": "jupiter.errors",
    "InputError": "jupiter.errors",
    "JupiterError": "jupiter.errors",
    "NotFoundError": "jupiter.errors",
    "PathEscapeError": "jupiter.errors",
    "SnapshotError": "jupiter.errors",
    "TargetError": "jupiter.errors",
    "ValidationFailed": "jupiter.errors",
    "VerificationFailed": "jupiter.errors",
    "WorkspaceError": "jupiter.errors",
}

__all__ = [
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
    "__version__",
    "decode_text",
    "file_edits",
    "project_files",
    "read_text",
    "sha256_bytes",
    "unified_diff",
]

if TYPE_CHECKING:
    from jupiter.engine import Engine
    from jupiter.errors import (
        ConflictError,
        InputError,
        JupiterError,
        NotFoundError,
        PathEscapeError,
        SnapshotError,
        TargetError,
        ValidationFailed,
        VerificationFailed,
        WorkspaceError,
    )
    from jupiter.models import AssetSpec, Category, FindingRecord, FindingStatus, Location, Severity
    from jupiter.plans import (
        Plan,
        RemoveFile,
        Risk,
        RunCommand,
        SetMode,
        WriteFile,
        file_edits,
        sha256_bytes,
        unified_diff,
    )
    from jupiter.plugins.base import NoParams, Remediator, ValidationResult
    from jupiter.plugins.domains import Domain
    from jupiter.plugins.kit import decode_text, project_files, read_text
    from jupiter.targets.base import TargetView


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupiter' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
