"""Checkov JSON (``checkov -o json``): a list of per-framework reports, or one.

Offline (``--skip-download``, no platform key) Checkov reports ``severity:
null``. Then the severity comes from the check: HIGH for checks whose failure
lets a workload escape its container or take over the node (privileged,
privilege escalation, host namespaces, capabilities, root), LOW for
hygiene checks (probes, image digests, healthcheck), MEDIUM otherwise.
Paths drop Checkov's leading ``/`` (they are relative to the ``-d`` root).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupiter.ingest.common import (
    ProgressCallback,
    arr,
    fail,
    json_document,
    obj,
    severity_word,
    text,
)
from jupiter.limits import quote
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plugins.domains import category_for

_HIGH = frozenset(
    {
        "CKV_K8S_1", "CKV_K8S_2", "CKV_K8S_3", "CKV_K8S_4", "CKV_K8S_5", "CKV_K8S_6",
        "CKV_K8S_7", "CKV_K8S_16", "CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19", "CKV_K8S_20",
        "CKV_K8S_23", "CKV_K8S_27", "CKV_K8S_39", "CKV_DOCKER_1", "CKV_DOCKER_3",
        "CKV_DOCKER_8",
    }
)  # fmt: skip
_LOW = frozenset(
    {
        "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13",
        "CKV_K8S_43", "CKV_DOCKER_2", "CKV_DOCKER_7", "CKV2_K8S_6",
    }
)  # fmt: skip


def default_severity(check_id: str) -> Severity:
    """Severity of a Checkov check when the report gives none (see module doc)."""
    if check_id in _HIGH:
        return Severity.HIGH
    if check_id in _LOW:
        return Severity.LOW
    return Severity.MEDIUM


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield one FindingRecord per failed check of every framework report."""
    with json_document(path, on_progress) as doc:
        reports: list[Any] = doc if isinstance(doc, list) else [doc]
        for i, raw in enumerate(reports):
            where = f"[{i}]" if isinstance(doc, list) else "top level"
            report = obj(path, raw, where)
            if "results" not in report:
                # Checkov writes a bare summary for a framework that found no resources.
                if "passed" in report or "check_type" in report:
                    continue
                fail(path, where, "a Checkov report needs 'check_type' and 'results'")
            check_type = text(path, report.get("check_type"), f"{where}.check_type") or ""
            results = obj(path, report["results"], f"{where}.results")
            failed = arr(path, results.get("failed_checks"), f"{where}.results.failed_checks")
            for j, check_raw in enumerate(failed):
                yield _record(
                    path,
                    obj(path, check_raw, f"{where}.results.failed_checks[{j}]"),
                    f"{where}.results.failed_checks[{j}]",
                    check_type,
                )


def _record(path: Path, check: dict[str, Any], where: str, check_type: str) -> FindingRecord:
    check_id = text(path, check.get("check_id"), f"{where}.check_id", required=True) or ""
    name = text(path, check.get("check_name"), f"{where}.check_name") or check_id
    given = text(path, check.get("severity"), f"{where}.severity")
    severity = severity_word(given) if given else default_severity(check_id)
    if severity is None:
        fail(path, f"{where}.severity", f"unknown severity {quote(given)}")
    file_path = text(path, check.get("file_path"), f"{where}.file_path") or ""
    lines = arr(path, check.get("file_line_range"), f"{where}.file_line_range")
    start = lines[0] if lines and isinstance(lines[0], int) and lines[0] > 0 else None
    end = lines[-1] if lines and isinstance(lines[-1], int) and lines[-1] > 0 else start
    block = check.get("code_block")
    evidence = None
    if isinstance(block, list) and block:
        evidence = (
            "".join(str(row[1]) for row in block if isinstance(row, list) and len(row) == 2) or None
        )
    extra = {"check_type": check_type}
    for key in ("resource", "guideline", "bc_check_id"):
        if check.get(key):
            extra[key] = str(check[key])
    return FindingRecord(
        scanner="checkov",
        rule_id=check_id,
        category=category_for(check_id, (), name, check_type, path=file_path),
        title=name,
        severity=severity,
        location=Location(path=file_path.lstrip("/") or None, start_line=start, end_line=end),
        evidence=evidence,
        extra=extra,
    )
