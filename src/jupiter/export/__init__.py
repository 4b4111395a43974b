"""Fix scripts a change board can read: ``jupiter script --format bash|python|ansible``.

:func:`export_script` turns plans (in the order they are to be applied, each
planned on the state the previous ones leave) into one self-contained
script that a human can review and run without Jupiter:

* it takes the target root (default ``/``), ``--check`` (verify and show,
  change nothing) and ``--undo`` (restore from its own backup);
  the Ansible playbook takes ``jupiter_root`` and runs in ``--check`` mode
  and with ``--tags undo``;
* it refuses (exit 3) when a file is neither as planned (``before_sha256``)
  nor already fixed, reports "already applied" on a second run, backs up
  what it touches (content and mode), writes atomically, checks every file
  against the planned sha256 afterwards and rolls back on failure.
"""

from __future__ import annotations

from typing import Literal

from jupiter.errors import InputError
from jupiter.export.model import PlanForExport, ScriptModel, build_script_model
from jupiter.export.render import render

ScriptFormat = Literal["bash", "python", "ansible"]
FORMATS: dict[str, tuple[str, str]] = {
    "bash": ("fix.sh.j2", "jupiter-fix.sh"),
    "python": ("fix.py.j2", "jupiter-fix.py"),
    "ansible": ("fix.yml.j2", "jupiter-fix.yml"),
}


def export_script(plans: list[PlanForExport], fmt: ScriptFormat) -> str:
    """The script text; InputError for an unknown format, no plans, plans
    that do not chain, or a path an exported script cannot carry."""
    if fmt not in FORMATS:
        raise InputError(f"script format {fmt!r} is unknown; choose bash, python or ansible")
    template, name = FORMATS[fmt]
    return render(template, build_script_model(plans), fmt, name)


def suggested_filename(fmt: ScriptFormat) -> str:
    """A file name for the script (``jupiter-fix.sh``...)."""
    return FORMATS[fmt][1]


__all__ = [
    "FORMATS",
    "PlanForExport",
    "ScriptFormat",
    "ScriptModel",
    "build_script_model",
    "export_script",
    "suggested_filename",
]
