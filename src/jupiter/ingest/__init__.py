"""Read scanner reports into :class:`~jupiter.models.FindingRecord` objects.

``parse_report(path)`` sniffs the format (``detect_format``) and yields one
record per finding; ``fmt`` forces a format. Every problem with a report is an
:class:`~jupiter.errors.InputError` naming the file and the position or field.
One module per format holds its mapping rules (severity, category, paths) in
its docstring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from jupiter.errors import InputError
from jupiter.ingest import bandit, checkov, osv, pip_audit, sarif, seed, trivy
from jupiter.ingest.common import collector_friendly
from jupiter.models import FindingRecord

__all__ = ["FORMATS", "detect_format", "parse_report"]

FORMATS: tuple[str, ...] = ("sarif", "bandit", "checkov", "trivy", "pip-audit", "osv", "seed")

_PARSERS: dict[str, Callable[[Path, Callable[[int], None] | None], Iterator[FindingRecord]]] = {
    "sarif": sarif.parse,
    "bandit": bandit.parse,
    "checkov": checkov.parse,
    "trivy": trivy.parse,
    "pip-audit": pip_audit.parse,
    "osv": osv.parse,
    "seed": seed.parse,
}

#: How much of a file ``detect_format`` reads. Every supported format names
#: its distinguishing keys near the top, before any long array.
SNIFF_BYTES = 256 * 1024


def _key(name: str) -> re.Pattern[bytes]:
    return re.compile(rb'"' + re.escape(name.encode()) + rb'"\s*:')


# Ordered from the most to the least specific signature: a report's snippets
# may quote another format's keys, so the first structural match wins.
_SIGNATURES: list[tuple[str, list[re.Pattern[bytes]]]] = [
    ("sarif", [_key("runs"), re.compile(rb'sarif|"version"\s*:\s*"2\.1\.0"', re.IGNORECASE)]),
    ("trivy", [_key("SchemaVersion")]),
    ("trivy", [_key("Results"), _key("ArtifactName")]),
    ("bandit", [_key("generated_at"), _key("results")]),
    ("bandit", [_key("generated_at"), _key("metrics")]),
    ("checkov", [_key("check_type")]),
    ("osv", [_key("results"), _key("packages"), _key("source")]),
    ("pip-audit", [_key("dependencies"), _key("vulns")]),
    ("pip-audit", [_key("dependencies"), _key("skip_reason")]),
    ("pip-audit", [_key("dependencies"), _key("fixes")]),
    # pip-audit before 2.0 wrote the dependency list alone.
    ("pip-audit", [re.compile(rb'^\s*\[\s*\{\s*"name"\s*:'), _key("vulns")]),
    ("seed", [_key("vulnerability_id")]),
]


def detect_format(path: Path) -> str:
    """Name the report's format from its first bytes (one of ``FORMATS``).

    Raises InputError when the file cannot be read, is not JSON, or matches
    no known format.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the report ({exc.strerror or exc}); check the path."
        ) from exc
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start not in (b"{", b"["):
        what = "is empty" if not head.strip() else "does not start with a JSON object or array"
        raise InputError(
            f"{path}: the report {what}; pass a JSON report from one of: {', '.join(FORMATS)}."
        )
    for name, patterns in _SIGNATURES:
        if all(p.search(head) for p in patterns):
            return name
    raise InputError(
        f"{path}: the report matches none of the known formats in its first {len(head)} bytes; "
        f"pass --format with one of: {', '.join(FORMATS)}."
    )


def parse_report(
    path: Path,
    fmt: str = "auto",
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[FindingRecord]:
    """Yield the findings of the report at ``path``.

    ``fmt`` is ``"auto"`` (sniff with :func:`detect_format`) or one of
    ``FORMATS``. ``on_progress(bytes_read_so_far)`` is called while the file is
    read, so a caller can draw a progress bar over the file's size. Errors are
    raised as InputError, at the latest while iterating.
    """
    if fmt == "auto":
        fmt = detect_format(path)
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise InputError(
            f"unknown report format {fmt!r}; use auto or one of: {', '.join(FORMATS)}."
        )
    return collector_friendly(parser(path, on_progress))
