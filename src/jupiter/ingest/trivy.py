"""Trivy JSON (``trivy fs|image|config --format json``, SchemaVersion 2).

* ``Vulnerabilities`` → dependency findings: package, installed version,
  ``FixedVersion`` (comma-separated) as fixed versions, ``Target`` (the
  lockfile) as path. CVSS: the vector of the ``SeveritySource`` vendor, else
  NVD, else any (v4 before v3 before v2), validated; a vendor's score without
  a vector is range-checked.
* ``Misconfigurations`` with status FAIL → KSV* = iac.kubernetes, DS* =
  iac.docker, others by title; lines from ``CauseMetadata``.
* ``Secrets`` → category other, with the rule id and line.

Severity is Trivy's (CRITICAL/HIGH/MEDIUM/LOW); ``UNKNOWN`` falls back to the
CVSS score, else HIGH (see ``UNRATED_ADVISORY_SEVERITY``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from jupiter.ingest.common import (
    UNRATED_ADVISORY_SEVERITY,
    ProgressCallback,
    arr,
    cvss_base,
    cwe_ids,
    fail,
    json_document,
    line_no,
    obj,
    opt_obj,
    report_path,
    score,
    severity_from_score,
    severity_word,
    text,
    timestamp,
)
from jupiter.limits import quote
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.domains import category_for


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield the vulnerabilities, failed misconfigurations and secrets of every Result."""
    with json_document(path, on_progress) as loaded:
        doc = obj(path, loaded, "top level")
        if "Results" not in doc and "SchemaVersion" not in doc:
            fail(path, "top level", "a Trivy report needs 'SchemaVersion' and 'Results'")
        created = timestamp(path, doc.get("CreatedAt"), "CreatedAt")
        for i, rraw in enumerate(arr(path, doc.get("Results"), "Results")):
            where = f"Results[{i}]"
            result = obj(path, rraw, where)
            target = report_path(text(path, result.get("Target"), f"{where}.Target") or "") or None
            for j, v in enumerate(
                arr(path, result.get("Vulnerabilities"), f"{where}.Vulnerabilities")
            ):
                vwhere = f"{where}.Vulnerabilities[{j}]"
                yield _vulnerability(path, obj(path, v, vwhere), vwhere, target, created)
            for j, m in enumerate(
                arr(path, result.get("Misconfigurations"), f"{where}.Misconfigurations")
            ):
                mwhere = f"{where}.Misconfigurations[{j}]"
                misconf = obj(path, m, mwhere)
                if str(misconf.get("Status", "FAIL")).upper() == "FAIL":
                    yield _misconfiguration(path, misconf, mwhere, target, created)
            for j, s in enumerate(arr(path, result.get("Secrets"), f"{where}.Secrets")):
                swhere = f"{where}.Secrets[{j}]"
                yield _secret(path, obj(path, s, swhere), swhere, target, created)


def _severity(path: Path, value: Any, where: str) -> Severity | None:
    word = text(path, value, where)
    if not word or word.upper() == "UNKNOWN":
        return None
    found = severity_word(word)
    if found is None:
        fail(path, where, f"unknown severity {quote(word)}")
    return found


def _cvss(path: Path, vuln: dict[str, Any], where: str) -> tuple[str | None, float | None]:
    vendors = obj(path, vuln.get("CVSS") or {}, f"{where}.CVSS")
    preferred = [str(vuln.get("SeveritySource") or ""), "nvd", "ghsa", *vendors]
    for vendor in dict.fromkeys(preferred):
        data = vendors.get(vendor)
        if not isinstance(data, dict):
            continue
        vwhere = f"{where}.CVSS.{vendor}"
        for key, score_key in (
            ("V40Vector", "V40Score"),
            ("V3Vector", "V3Score"),
            ("V2Vector", "V2Score"),
        ):
            given = score(path, data.get(score_key), f"{vwhere}.{score_key}")
            vector = text(path, data.get(key), f"{vwhere}.{key}")
            if vector:
                clean, base = cvss_base(path, vector, f"{vwhere}.{key}")
                return clean, given if given is not None else base
            if given is not None:
                return None, given
    return None, None


def _vulnerability(
    path: Path, vuln: dict[str, Any], where: str, target: str | None, created: datetime | None
) -> FindingRecord:
    vid = text(path, vuln.get("VulnerabilityID"), f"{where}.VulnerabilityID", required=True) or ""
    pkg = text(path, vuln.get("PkgName"), f"{where}.PkgName", required=True) or ""
    version = text(path, vuln.get("InstalledVersion"), f"{where}.InstalledVersion")
    fixed_raw = text(path, vuln.get("FixedVersion"), f"{where}.FixedVersion") or ""
    vector, cvss_score = _cvss(path, vuln, where)
    severity = _severity(path, vuln.get("Severity"), f"{where}.Severity")
    if severity is None:
        severity = (
            severity_from_score(cvss_score) if cvss_score is not None else UNRATED_ADVISORY_SEVERITY
        )
    title = text(path, vuln.get("Title"), f"{where}.Title") or vid
    extra = {k: vuln[k] for k in ("PrimaryURL", "Status", "SeveritySource") if vuln.get(k)}
    return FindingRecord(
        scanner="trivy",
        detected_at=created,
        rule_id=vid,
        category=Category.DEPENDENCY,
        title=f"{pkg} {version or ''}: {title}",
        severity=severity,
        location=Location(path=target, package=pkg, version=version),
        cvss_score=cvss_score,
        cvss_vector=vector,
        cwe=cwe_ids(arr(path, vuln.get("CweIDs"), f"{where}.CweIDs")),
        fixed_versions=[v.strip() for v in fixed_raw.split(",") if v.strip()],
        extra=extra,
    )


def _misconfiguration(
    path: Path, misconf: dict[str, Any], where: str, target: str | None, created: datetime | None
) -> FindingRecord:
    rule_id = text(path, misconf.get("ID"), f"{where}.ID", required=True) or ""
    title = text(path, misconf.get("Title"), f"{where}.Title") or rule_id
    severity = _severity(path, misconf.get("Severity"), f"{where}.Severity") or Severity.MEDIUM
    cause = misconf.get("CauseMetadata") or {}
    if not isinstance(cause, dict):
        fail(path, f"{where}.CauseMetadata", "expected an object")
    start = line_no(path, cause.get("StartLine"), f"{where}.CauseMetadata.StartLine")
    end = line_no(path, cause.get("EndLine"), f"{where}.CauseMetadata.EndLine") or start
    code = opt_obj(path, cause.get("Code"), f"{where}.CauseMetadata.Code")
    code_lines = arr(path, code.get("Lines"), f"{where}.CauseMetadata.Code.Lines")
    evidence = (
        "\n".join(
            str(line.get("Content", ""))
            for line in code_lines
            if isinstance(line, dict) and line.get("IsCause")
        )
        or None
    )
    extra = {
        k: misconf[k] for k in ("AVDID", "Message", "Resolution", "PrimaryURL") if misconf.get(k)
    }
    return FindingRecord(
        scanner="trivy",
        detected_at=created,
        rule_id=rule_id,
        category=category_for(rule_id, (), f"{title} {misconf.get('Type', '')}"),
        title=title,
        severity=severity,
        location=Location(path=target, start_line=start, end_line=end),
        evidence=evidence,
        extra=extra,
    )


def _secret(
    path: Path, secret: dict[str, Any], where: str, target: str | None, created: datetime | None
) -> FindingRecord:
    rule_id = text(path, secret.get("RuleID"), f"{where}.RuleID", required=True) or ""
    start = line_no(path, secret.get("StartLine"), f"{where}.StartLine")
    return FindingRecord(
        scanner="trivy",
        detected_at=created,
        rule_id=rule_id,
        category=Category.OTHER,
        title=text(path, secret.get("Title"), f"{where}.Title") or rule_id,
        severity=_severity(path, secret.get("Severity"), f"{where}.Severity") or Severity.HIGH,
        location=Location(
            path=target,
            start_line=start,
            end_line=line_no(path, secret.get("EndLine"), f"{where}.EndLine") or start,
        ),
        evidence=text(path, secret.get("Match"), f"{where}.Match"),
    )
