"""Jupiter: automated security remediation.

The public API is what ``__all__`` lists; everything else is internal.
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
    "Remediator": "jupiter.remediators.base",
    "ValidationResult": "jupiter.remediators.base",
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
    from jupiter.plans import Plan, Risk
    from jupiter.remediators.base import Remediator, ValidationResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupiter' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
