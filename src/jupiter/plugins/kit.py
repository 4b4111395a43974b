"""What every remediation domain shares: finding a project's own files,
reading a file as text with one clear error, and writing it back in the line
endings it had.

A third-party plugin gets the same helpers through the public API
(``jupiter.project_files``, ``jupiter.read_text``, ``jupiter.file_edits``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from jupiter.errors import InputError
from jupiter.models import FindingRecord
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


def survey_files(
    view: TargetView,
    paths: Iterable[str],
    scan_one: Callable[[str, bytes], list[FindingRecord]],
    tolerant: bool,
) -> tuple[list[FindingRecord], list[str]]:
    """``scan_one(path, bytes)`` over ``paths``: every finding, and, when
    ``tolerant`` (a ``survey``), each file it could not read as one sentence
    instead of stopping at the first (a ``detect``)."""
    findings: list[FindingRecord] = []
    problems: list[str] = []
    for path in paths:
        try:
            findings.extend(scan_one(path, view.read_bytes(path)))
        except InputError as exc:
            if not tolerant:
                raise
            problems.append(str(exc))
    return findings, problems


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


_NEWLINE = re.compile(r"\r?\n")


def line_ending(text: str) -> str | None:
    """``"\\r\\n"`` or ``"\\n"`` when every line of ``text`` ends that way;
    ``None`` for text without line breaks or with mixed ones."""
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    if crlf and not lf:
        return "\r\n"
    if lf and not crlf:
        return "\n"
    return None


def keep_line_endings(before: str | None, after: str) -> str:
    """``after`` with the line endings ``before`` has. Every editor builds its
    new lines with ``\\n`` (or a library writes them so); a CRLF file must stay
    CRLF, never come back mixed. A file that was mixed already is left as the
    editor made it: there is no single style to keep."""
    style = line_ending(before) if before else None
    if style is None:
        return after
    return _NEWLINE.sub(style, after)
