"""Built-in detectors."""

from __future__ import annotations

from collections.abc import Callable

from jupiter.targets.base import TargetView

#: Folders that hold tools, caches and other people's code, not the project's
#: own infrastructure files.
VENDORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
        "vendor",
        "__pycache__",
        ".jupiter",
        ".tools",
    }
)


def project_files(view: TargetView, wanted: Callable[[str], bool]) -> list[str]:
    """Files of ``view`` that ``wanted`` accepts, outside :data:`VENDORED_DIRS`."""
    return [p for p in view.walk() if wanted(p) and not VENDORED_DIRS & set(p.split("/")[:-1])]
