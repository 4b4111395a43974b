"""Helpers shared by the report parsers: loading, errors, severity, CVSS, categories.

Every problem with a report becomes an :class:`~jupiter.errors.InputError` whose
message names the file and the position (line:column and byte offset for bad
JSON) or the field (``runs[0].results[12].level``), so the user can find it.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import orjson
from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from jupiter.errors import InputError
from jupiter.limits import MAX_JSON_BYTES, quote
from jupiter.models import Severity

ProgressCallback = Callable[[int], None]
T = TypeVar("T")

#: Bytes read per chunk; also how often ``on_progress`` is called while reading.
CHUNK_SIZE = 1 << 20
#: orjson refuses documents nested deeper than this (not configurable).
JSON_PARSER_DEPTH = 1024


def fail(path: Path, where: str, problem: str) -> NoReturn:
    """Raise the one-sentence InputError every parser uses for a bad report."""
    raise InputError(
        f"{path}: {where}: {problem}; fix or regenerate the report, or pass the right --format."
    )


def read_bytes(path: Path, on_progress: ProgressCallback | None = None) -> bytes:
    """Read ``path`` in chunks, calling ``on_progress(bytes_read)`` after each one."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size > MAX_JSON_BYTES:
                raise InputError(
                    f"{path}: the report is {size} bytes, over Jupiter's limit of "
                    f"{MAX_JSON_BYTES} bytes for a JSON document read whole; split the report"
                )
            if on_progress is None:
                return handle.read()
            chunks: list[bytes] = []
            done = 0
            while chunk := handle.read(CHUNK_SIZE):
                chunks.append(chunk)
                done += len(chunk)
                on_progress(done)
            return b"".join(chunks)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the report ({exc.strerror or exc}); check the path."
        ) from exc


@contextmanager
def json_document(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[Any]:
    """Parse a whole JSON report with orjson and hold it while records are made.

    The cyclic collector is paused during the parse, and the parsed document
    is frozen (``gc.freeze``) until the ``with`` block ends: orjson allocates
    millions of containers at once, and collection passes over them (which can
    hold no cycles) cost more than the parse itself (measured on a 94 MB,
    100,000-result SARIF: parse 450 vs 840 ms; parse + records 6.0 vs 10.3 s
    on a loaded machine). ``gc.unfreeze`` on exit returns every frozen object
    to the collector.
    """
    data = read_bytes(path, on_progress)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        doc = orjson.loads(data)
        gc.freeze()
    except orjson.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno} (byte {exc.pos})"
        reason = exc.msg.rstrip(".")
        if "depth" in reason or "recursion" in reason:
            raise InputError(
                f"{path}: the JSON nests deeper than {JSON_PARSER_DEPTH} levels (the JSON "
                f"parser's limit) at {where}; regenerate the report or repair the file."
            ) from None
        if exc.pos >= len(data) - 1 and data:
            reason += " (the file looks truncated)"
        raise InputError(
            f"{path}: invalid JSON at {where}: {reason}; regenerate the report or repair the file."
        ) from None
    finally:
        if was_enabled:
            gc.enable()
    del data
    try:
        yield doc
    finally:
        gc.unfreeze()


#: Records between two ``gc.freeze`` calls in :func:`collector_friendly`.
FREEZE_EVERY = 5000


def collector_friendly(records: Iterator[T]) -> Iterator[T]:
    """Pass ``records`` through, freezing what survived every ``FREEZE_EVERY`` items.

    A caller that keeps every record (``list(parse_report(...))``) otherwise
    makes the collector rescan the growing pile again and again: measured on
    100,000 SARIF results, 3.0 s of CPU without this and 1.75 s with it, the
    same as a caller that keeps nothing. Frozen objects are still freed by
    reference counting; ``gc.unfreeze`` at the end hands them back to the
    collector.
    """
    try:
        for count, record in enumerate(records, 1):
            yield record
            if count % FREEZE_EVERY == 0:
                gc.freeze()
    finally:
        gc.unfreeze()


# ---------------------------------------------------------------- typed access


def obj(path: Path, value: Any, where: str) -> dict[str, Any]:
    """``value`` as a JSON object, or an InputError naming ``where``."""
    if not isinstance(value, dict):
        fail(path, where, f"expected an object, found {json_type(value)}")
    return value


def opt_obj(path: Path, value: Any, where: str) -> dict[str, Any]:
    """``value`` as a JSON object; ``null``/missing is an empty one."""
    if value is None:
        return {}
    return obj(path, value, where)


def arr(path: Path, value: Any, where: str) -> list[Any]:
    """``value`` as a JSON array (``null``/missing is an empty one)."""
    if value is None:
        return []
    if not isinstance(value, list):
        fail(path, where, f"expected an array, found {json_type(value)}")
    return value


def text(path: Path, value: Any, where: str, *, required: bool = False) -> str | None:
    """``value`` as a string; numbers are accepted and converted."""
    if value is None:
        if required:
            fail(path, where, "is missing")
        return None
    if isinstance(value, str):
        if required and not value.strip():
            fail(path, where, "is empty")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    fail(path, where, f"expected a string, found {json_type(value)}")


def line_no(path: Path, value: Any, where: str) -> int | None:
    """A 1-based line number, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        fail(path, where, f"expected a line number, found {quote(value)}")
    return value or None


def timestamp(path: Path, value: Any, where: str) -> datetime | None:
    """An ISO 8601 date-time (a trailing ``Z`` allowed), or None when absent."""
    raw = text(path, value, where)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        fail(path, where, f"{quote(raw)} is not an ISO 8601 date-time")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# ------------------------------------------------------------------- severity

_WORDS: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "important": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "warning": Severity.MEDIUM,
    "low": Severity.LOW,
    "note": Severity.LOW,
    "negligible": Severity.LOW,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "none": Severity.INFO,
}


def severity_word(word: str | None) -> Severity | None:
    """Map a scanner's severity word (any case) to ours; None when unknown/undefined."""
    if not word:
        return None
    return _WORDS.get(word.strip().lower())


def severity_from_score(score: float) -> Severity:
    """CVSS v3/v4 qualitative rating of a 0-10 score (0 is "none" → info)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFO


def score(path: Path, value: Any, where: str) -> float | None:
    """A 0.0-10.0 score given as a number or numeric string, validated."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        fail(path, where, f"expected a score between 0.0 and 10.0, found {quote(value)}")
    if not 0.0 <= number <= 10.0:
        fail(path, where, f"score {number} is outside 0.0-10.0")
    return number


def cvss_base(path: Path, vector: str, where: str) -> tuple[str, float]:
    """Validate a CVSS v2/v3.x/v4.0 vector; return (clean vector, base score)."""
    try:
        if vector.startswith("CVSS:4"):
            v4 = CVSS4(vector)
            return v4.clean_vector(), float(v4.base_score)
        if vector.startswith("CVSS:3"):
            v3 = CVSS3(vector)
            return v3.clean_vector(), float(v3.base_score)
        v2 = CVSS2(vector.removeprefix("(").removesuffix(")"))
        return v2.clean_vector(), float(v2.base_score)
    except CVSSError as exc:
        fail(path, where, f"invalid CVSS vector {quote(vector)} ({exc})")


# ------------------------------------------------------------------ categories

_CWE_NUMBER = re.compile(r"cwe[-/_ ]?0*(\d+)", re.IGNORECASE)


def cwe_ids(values: Iterable[Any]) -> list[str]:
    """Normalise CWE mentions (89, "CWE-89: ...", "external/cwe/cwe-089") to "CWE-89"."""
    found: list[str] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            ident = f"CWE-{value}"
        elif isinstance(value, str) and (match := _CWE_NUMBER.search(value)):
            ident = f"CWE-{int(match.group(1))}"
        elif isinstance(value, str) and value.isdecimal():
            ident = f"CWE-{int(value)}"
        else:
            continue
        if ident not in found:
            found.append(ident)
    return found


def advisory_aliases(ids: Iterable[Any], exclude: str = "") -> list[str]:
    """Distinct, non-empty advisory ids (CVE/GHSA/PYSEC/...) other than ``exclude``."""
    out: list[str] = []
    for ident in ids:
        if isinstance(ident, str) and ident and ident != exclude and ident not in out:
            out.append(ident)
    return out


def report_path(uri: str) -> str:
    """A location as the scanner reported it, minus ``file://`` and a leading ``./``."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    while uri.startswith("./"):
        uri = uri[2:]
    return uri


#: Severity of a known advisory that its report does not rate (pip-audit never
#: does; OSV records may not). HIGH, not MEDIUM: a published, exploitable-by-
#: someone advisory on an installed version should not sort below rated
#: medium findings until a person or policy has looked at it.
UNRATED_ADVISORY_SEVERITY = Severity.HIGH
