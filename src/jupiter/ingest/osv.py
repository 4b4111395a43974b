"""OSV-Scanner JSON (``osv-scanner --format json``).

OSV-Scanner lists every OSV record that matches a package (for one PyPI flaw
often both the GHSA and the PYSEC record) and ties them together in
``groups``; we yield one finding per group, with the ids of all its records
and their aliases. Without ``groups`` each record is its own group.

Severity, first match wins: ``database_specific.severity`` of a record
(GitHub's LOW/MODERATE/HIGH/CRITICAL); the base score of a CVSS vector in a
record's ``severity[]`` (validated with the ``cvss`` package; CVSS v4 first,
then v3, then v2); the group's ``max_severity`` score; else
:data:`~jupiter.ingest.common.UNRATED_ADVISORY_SEVERITY` (HIGH). Fixed
versions are the ``fixed`` events of the records' ``affected`` ranges for this
package. The location path is the lockfile path as OSV-Scanner reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupiter.ingest.common import (
    UNRATED_ADVISORY_SEVERITY,
    ProgressCallback,
    advisory_aliases,
    arr,
    cvss_base,
    cwe_ids,
    fail,
    json_document,
    obj,
    opt_obj,
    score,
    severity_from_score,
    severity_word,
    text,
)
from jupiter.limits import quote
from jupiter.models import Category, FindingRecord, Location, Severity

_CVSS_ORDER = {"CVSS_V4": 0, "CVSS_V3": 1, "CVSS_V2": 2}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield one dependency FindingRecord per (source, package, advisory group)."""
    with json_document(path, on_progress) as loaded:
        doc = obj(path, loaded, "top level")
        if "results" not in doc:
            fail(path, "top level", "an OSV-Scanner report needs a 'results' array")
        for i, rraw in enumerate(arr(path, doc["results"], "results")):
            result = obj(path, rraw, f"results[{i}]")
            source = result.get("source") or {}
            src_path = (
                text(path, source.get("path"), f"results[{i}].source.path")
                if isinstance(source, dict)
                else None
            )
            for j, praw in enumerate(arr(path, result.get("packages"), f"results[{i}].packages")):
                where = f"results[{i}].packages[{j}]"
                entry = obj(path, praw, where)
                package = obj(path, entry.get("package"), f"{where}.package")
                name = text(path, package.get("name"), f"{where}.package.name", required=True) or ""
                version = text(path, package.get("version"), f"{where}.package.version")
                yield from _package(path, entry, where, name, version, src_path)


def _package(
    path: Path,
    entry: dict[str, Any],
    where: str,
    name: str,
    version: str | None,
    src_path: str | None,
) -> Iterator[FindingRecord]:
    records: dict[str, tuple[int, dict[str, Any]]] = {}
    for k, vraw in enumerate(arr(path, entry.get("vulnerabilities"), f"{where}.vulnerabilities")):
        vuln = obj(path, vraw, f"{where}.vulnerabilities[{k}]")
        vid = text(path, vuln.get("id"), f"{where}.vulnerabilities[{k}].id", required=True) or ""
        records[vid] = (k, vuln)
    groups: list[tuple[list[str], Any]] = []
    for g, graw in enumerate(arr(path, entry.get("groups"), f"{where}.groups")):
        group = obj(path, graw, f"{where}.groups[{g}]")
        ids = [
            i
            for i in arr(path, group.get("ids"), f"{where}.groups[{g}].ids")
            if isinstance(i, str) and i in records
        ]
        if ids:
            groups.append((ids, group.get("max_severity")))
    grouped = {i for ids, _ in groups for i in ids}
    groups += [([vid], None) for vid in records if vid not in grouped]
    for ids, max_severity in groups:
        members = [records[i] for i in ids]
        yield _record(path, where, name, version, src_path, members, max_severity)


def _record(
    path: Path,
    where: str,
    name: str,
    version: str | None,
    src_path: str | None,
    members: list[tuple[int, dict[str, Any]]],
    max_severity: Any,
) -> FindingRecord:
    # The record with a reviewed rating speaks for the group.
    specifics = {
        k: opt_obj(
            path, vuln.get("database_specific"), f"{where}.vulnerabilities[{k}].database_specific"
        )
        for k, vuln in members
    }
    members = sorted(members, key=lambda m: not specifics[m[0]].get("severity"))
    primary_index, primary = members[0]
    pwhere = f"{where}.vulnerabilities[{primary_index}]"
    rule_id = str(primary["id"])
    all_ids: list[Any] = []
    vectors: list[tuple[int, str, str]] = []
    fixed: list[str] = []
    cwe_raw: list[Any] = []
    for k, vuln in members:
        vwhere = f"{where}.vulnerabilities[{k}]"
        all_ids += [vuln["id"], *arr(path, vuln.get("aliases"), f"{vwhere}.aliases")]
        for s, sraw in enumerate(arr(path, vuln.get("severity"), f"{vwhere}.severity")):
            sev = obj(path, sraw, f"{vwhere}.severity[{s}]")
            kind = sev.get("type")
            if isinstance(kind, str) and kind in _CVSS_ORDER:
                vec = text(path, sev.get("score"), f"{vwhere}.severity[{s}].score", required=True)
                vectors.append((_CVSS_ORDER[str(kind)], vec or "", f"{vwhere}.severity[{s}].score"))
        cwe_raw += arr(path, specifics[k].get("cwe_ids"), f"{vwhere}.database_specific.cwe_ids")
        for a, araw in enumerate(arr(path, vuln.get("affected"), f"{vwhere}.affected")):
            affected = obj(path, araw, f"{vwhere}.affected[{a}]")
            pkg = affected.get("package") or {}
            if isinstance(pkg, dict) and pkg.get("name") and _norm(str(pkg["name"])) != _norm(name):
                continue
            for rng in arr(path, affected.get("ranges"), f"{vwhere}.affected[{a}].ranges"):
                # GIT ranges name commits, not versions a package manager can install.
                if not isinstance(rng, dict) or rng.get("type") == "GIT":
                    continue
                events = arr(path, rng.get("events"), f"{vwhere}.affected[{a}].ranges[].events")
                for event in events:
                    fix = event.get("fixed") if isinstance(event, dict) else None
                    if isinstance(fix, str) and fix not in fixed:
                        fixed.append(fix)

    cvss_vector = cvss_score = None
    for _, vec, vwhere in sorted(vectors, key=lambda v: v[0]):
        clean, base = cvss_base(path, vec, vwhere)  # validates every vector, uses the best
        if cvss_vector is None:
            cvss_vector, cvss_score = clean, base

    severity: Severity | None = None
    word = specifics[primary_index].get("severity")
    if word:
        severity = severity_word(str(word))
        if severity is None:
            fail(path, f"{pwhere}.database_specific.severity", f"unknown severity {quote(word)}")
    source = "database_specific"
    if severity is None and cvss_score is not None:
        severity, source = severity_from_score(cvss_score), "cvss"
    if severity is None:
        group_score = score(path, max_severity, f"{where}.groups[].max_severity")
        if group_score is not None:
            severity, source = severity_from_score(group_score), "max_severity"
    if severity is None:
        severity, source = UNRATED_ADVISORY_SEVERITY, "default"

    details = text(path, primary.get("details"), f"{pwhere}.details") or ""
    summary = (
        text(path, primary.get("summary"), f"{pwhere}.summary")
        or (details.strip().splitlines() or [""])[0]
    )
    return FindingRecord(
        scanner="osv-scanner",
        rule_id=rule_id,
        category=Category.DEPENDENCY,
        title=f"{name} {version or ''}: {summary or rule_id}".replace("  ", " "),
        severity=severity,
        location=Location(path=src_path, package=name, version=version),
        cvss_score=cvss_score,
        cvss_vector=cvss_vector,
        aliases=advisory_aliases(all_ids, rule_id),
        cwe=cwe_ids(cwe_raw),
        fixed_versions=fixed,
        extra={"severity_source": source},
    )
