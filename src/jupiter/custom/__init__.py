"""Custom remediation scripts: a team's own fix, registered as manifest + script.

Public API (imported lazily, so that ``python -m jupiter.custom.sandbox``
starts without pydantic or YAML):

* :func:`register_script` ``(workspace, manifest_path) -> dict``
* :func:`list_scripts` ``(workspace) -> list[dict]``
* :func:`remove_script` ``(workspace, name)``
* :func:`load_custom_remediators` ``(workspace, errors=None) -> list[Remediator]``

See :mod:`jupiter.custom.manifest` for the manifest fields,
:mod:`jupiter.custom.remediator` for how a script is planned and verified and
:mod:`jupiter.custom.sandbox` for how it is run.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "register_script": "jupiter.custom.store",
    "list_scripts": "jupiter.custom.store",
    "remove_script": "jupiter.custom.store",
    "load_custom_remediators": "jupiter.custom.remediator",
    "ScriptManifest": "jupiter.custom.manifest",
}

__all__ = [
    "ScriptManifest",
    "list_scripts",
    "load_custom_remediators",
    "register_script",
    "remove_script",
]

if TYPE_CHECKING:
    from jupiter.custom.manifest import ScriptManifest
    from jupiter.custom.remediator import load_custom_remediators
    from jupiter.custom.store import list_scripts, register_script, remove_script


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupiter.custom' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
