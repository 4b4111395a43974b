"""Reading the YAML files users hand to Jupiter (assets, script manifests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupiter.errors import InputError


def read_yaml(path: Path, label: str, then: str) -> Any:
    """The parsed document, or one InputError sentence naming ``label``
    (e.g. ``"script manifest "``, may be empty), the file and the line, ending
    with what to do ``then`` (e.g. ``"import again"``)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            f"{label}{path}{where} is not valid YAML "
            f"({getattr(exc, 'problem', None) or exc}); fix the file and {then}"
        ) from None
