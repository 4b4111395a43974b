"""What every remediation domain shares: finding a project's own files and
reading a file as text with one clear error.

A third-party plugin gets the same helpers through the public API
(``jupiter.project_files``, ``jupiter.read_text``, ``jupiter.file_edits``).
"""

from __future__ import annotations

from collections.abc import Callable

from jupiter.errors import InputError
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


def decode_text(path: str, data: bytes) -> str:
    """``data`` as UTF-8, or one :class:`InputError` naming the file and the
    first bad byte (Jupiter edits text only when it can write it back as it was)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (byte {exc.start}); convert it to UTF-8 "
            "before Jupiter edits it"
        ) from None


def read_text(view: TargetView, path: str) -> str:
    """The file at ``path`` of ``view`` as text (see :func:`decode_text`)."""
    return decode_text(path, view.read_bytes(path))
