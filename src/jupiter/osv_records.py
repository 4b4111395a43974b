"""Validation of OSV records and their compact form for the advisory index.

:func:`compact_record` checks one parsed OSV record (schema
https://ossf.github.io/osv-schema/) and returns the small dict the advisory
database stores. Every problem raises :class:`InputError` naming the origin
(file, zip member) and the JSON field path, e.g.
``affected[0].ranges[1].events[2].fixed``.

Strict where a wrong answer would follow (ids, package, range events and
their versions, event order); lenient where the data is only descriptive (a
CVSS vector the ``cvss`` package cannot read is dropped, an explicit
``versions`` entry that is not PEP 440 is kept as a literal string, since
PyPI still serves a few legacy version strings).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from jupiter.errors import InputError
from jupiter.models import Severity

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}
_RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
_GHSA_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
}
_CVSS_PREFERENCE = ("CVSS_V3", "CVSS_V4", "CVSS_V2")


class _Bad(Exception):
    """Internal: a field path and what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def compact_record(data: Any, origin: str) -> dict[str, Any]:
    """Validate one OSV record and return its compact stored form.

    Raises :class:`InputError` (one sentence: origin, field, problem, what to do).
    """
    try:
        return _compact(data)
    except _Bad as bad:
        record_id = data.get("id") if isinstance(data, dict) else None
        which = f" (record {record_id})" if isinstance(record_id, str) and record_id else ""
        raise InputError(
            f"{origin}{which}: field {bad.field} {bad.problem}; "
            "fix the record or leave it out, nothing was imported"
        ) from None


def _compact(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Bad("(top level)", "is not a JSON object")
    record_id = data.get("id")
    if not isinstance(record_id, str) or not record_id.strip():
        raise _Bad("id", "is missing or not a non-empty string")
    withdrawn = data.get("withdrawn")
    affected = data.get("affected")
    if affected is None and withdrawn:
        affected = []
    if not isinstance(affected, list) or (not affected and not withdrawn):
        raise _Bad("affected", "is missing or not a non-empty list")
    aliases = _string_list(data.get("aliases", []), "aliases")
    packages: dict[tuple[str, str], dict[str, Any]] = {}
    for i, entry in enumerate(affected):
        eco, name, ranges, versions = _affected(entry, f"affected[{i}]")
        slot = packages.setdefault(
            (eco, name), {"ecosystem": eco, "name": name, "ranges": [], "versions": []}
        )
        slot["ranges"].extend(ranges)
        slot["versions"] = sorted(set(slot["versions"]) | set(versions))
    severity, vector, score = _severity(data)
    specific = data.get("database_specific")
    cwe_ids: list[str] = []
    if isinstance(specific, dict) and isinstance(specific.get("cwe_ids"), list):
        cwe_ids = [c for c in specific["cwe_ids"] if isinstance(c, str)]
    summary = data.get("summary") or ""
    if not isinstance(summary, str):
        raise _Bad("summary", "is not a string")
    return {
        "id": record_id.strip(),
        "modified": _opt_str(data, "modified"),
        "published": _opt_str(data, "published"),
        "withdrawn": _opt_str(data, "withdrawn"),
        "aliases": aliases,
        "summary": summary.strip(),
        "severity": severity.value if severity else None,
        "cvss_vector": vector,
        "cvss_score": score,
        "cwe_ids": cwe_ids,
        "packages": list(packages.values()),
    }


def _affected(entry: Any, where: str) -> tuple[str, str, list[list[list[str]]], list[str]]:
    if not isinstance(entry, dict):
        raise _Bad(where, "is not an object")
    package = entry.get("package")
    if not isinstance(package, dict):
        raise _Bad(f"{where}.package", "is missing or not an object")
    eco = package.get("ecosystem")
    name = package.get("name")
    if not isinstance(eco, str) or not eco:
        raise _Bad(f"{where}.package.ecosystem", "is missing or not a string")
    if not isinstance(name, str) or not name:
        raise _Bad(f"{where}.package.name", "is missing or not a string")
    pypi = eco.split(":")[0].lower() == "pypi"
    raw_ranges = entry.get("ranges", [])
    if not isinstance(raw_ranges, list):
        raise _Bad(f"{where}.ranges", "is not a list")
    versions = _string_list(entry.get("versions", []), f"{where}.versions")
    if not raw_ranges and not versions:
        raise _Bad(where, "has neither ranges nor versions, so it matches nothing")
    ranges: list[list[list[str]]] = []
    for j, rng in enumerate(raw_ranges):
        events = _range(rng, f"{where}.ranges[{j}]", pypi)
        if events is not None:
            ranges.append(events)
    return eco, canonicalize_name(name), ranges, versions


def _range(rng: Any, where: str, pypi: bool) -> list[list[str]] | None:
    """Validate one range; return its events if it is evaluated by version."""
    if not isinstance(rng, dict):
        raise _Bad(where, "is not an object")
    kind = rng.get("type")
    if kind not in _RANGE_TYPES:
        raise _Bad(f"{where}.type", f"is {kind!r}, expected one of {', '.join(_RANGE_TYPES)}")
    if kind == "GIT" and not isinstance(rng.get("repo"), str):
        raise _Bad(f"{where}.repo", "is required for a GIT range")
    raw_events = rng.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        raise _Bad(f"{where}.events", "is missing or empty")
    events: list[tuple[str, str, str]] = []  # (kind, version, field path)
    for k, event in enumerate(raw_events):
        path = f"{where}.events[{k}]"
        if not isinstance(event, dict) or len(event) != 1:
            raise _Bad(path, f"must be an object with exactly one of {', '.join(_EVENT_KINDS)}")
        ((ev_kind, value),) = event.items()
        if ev_kind not in _EVENT_KINDS:
            raise _Bad(f"{path}.{ev_kind}", f"is not an event kind ({', '.join(_EVENT_KINDS)})")
        if not isinstance(value, str) or not value.strip():
            raise _Bad(f"{path}.{ev_kind}", "is not a non-empty version string")
        events.append((ev_kind, value.strip(), f"{path}.{ev_kind}"))
    kinds = {e[0] for e in events}
    if "introduced" not in kinds:
        raise _Bad(f"{where}.events", "has no introduced event")
    if "fixed" in kinds and "last_affected" in kinds:
        raise _Bad(f"{where}.events", "mixes fixed and last_affected, which OSV forbids")
    if kind == "GIT" or not pypi:
        return None  # commits / non-PEP 440 ecosystems: matched by `versions` only
    parsed: list[tuple[Version, int, str, str, str]] = []
    for ev_kind, value, path in events:
        if ev_kind == "introduced" and value == "0":
            version = Version("0")
        else:
            try:
                version = Version(value)
            except InvalidVersion:
                raise _Bad(path, f"is {value!r}, not a valid PEP 440 version") from None
        parsed.append((version, _EVENT_ORDER[ev_kind], ev_kind, value, path))
    parsed.sort(key=lambda p: (p[0], p[1]))
    open_at: Version | None = None
    open_raw = ""
    for version, _, ev_kind, value, path in parsed:
        if ev_kind == "introduced":
            if open_at is None:
                open_at, open_raw = version, value
        elif ev_kind == "limit":
            open_at = None
        elif open_at is None:
            raise _Bad(
                path,
                f"is {value!r}, which is not after any introduced version "
                "(a fix before the introduction)",
            )
        elif ev_kind == "fixed" and version == open_at:
            raise _Bad(path, f"is {value!r}, the same version as introduced {open_raw!r}")
        else:
            open_at = None
    return [[ev_kind, value] for _, _, ev_kind, value, _ in parsed]


def _severity(data: dict[str, Any]) -> tuple[Severity | None, str | None, float | None]:
    vector: str | None = None
    score: float | None = None
    cvss_severity: Severity | None = None
    entries = data.get("severity", [])
    if not isinstance(entries, list):
        raise _Bad("severity", "is not a list")
    by_type: dict[Any, str] = {
        e.get("type"): e["score"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("score"), str)
    }
    for kind in _CVSS_PREFERENCE:
        if kind in by_type:
            parsed = _parse_cvss(kind, by_type[kind])
            if parsed is not None:
                vector = by_type[kind]
                score, cvss_severity = parsed
                break
    specific = data.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        mapped = _GHSA_SEVERITY.get(specific["severity"].upper())
        if mapped is not None:
            return mapped, vector, score
    return cvss_severity, vector, score


@lru_cache(maxsize=8192)  # real exports repeat the same few thousand vectors
def _parse_cvss(kind: str, vector: str) -> tuple[float, Severity] | None:
    try:
        if kind == "CVSS_V3":
            v3 = CVSS3(vector)
            return float(v3.base_score), _named(v3.severities()[0])
        if kind == "CVSS_V4":
            v4 = CVSS4(vector)
            return float(v4.base_score), _named(v4.severity)
        v2 = CVSS2(vector)
        return float(v2.base_score), _named(v2.severities()[0])
    except (CVSSError, ValueError, KeyError, IndexError):
        return None  # descriptive only: a vector we cannot read does not block an import


def _named(label: str) -> Severity:
    return {
        "critical": Severity.CRITICAL,
        "high": Severity.HIGH,
        "medium": Severity.MEDIUM,
        "low": Severity.LOW,
    }.get(str(label).lower(), Severity.INFO)


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad(where, "is not a list of strings")
    return [v.strip() for v in value if v.strip()]


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _Bad(key, "is not a string timestamp")
    return value
