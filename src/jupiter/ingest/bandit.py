"""Bandit JSON (``bandit -f json``).

Severity is Bandit's ``issue_severity`` (HIGH/MEDIUM/LOW); ``UNDEFINED`` maps
to low. The confidence goes to ``extra["confidence"]``. Paths are Bandit's
``filename`` as given on its command line; ``code`` (with Bandit's line-number
prefixes) becomes the evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from jupiter.ingest.common import (
    ProgressCallback,
    arr,
    cwe_ids,
    fail,
    json_document,
    line_no,
    obj,
    report_path,
    severity_word,
    text,
    timestamp,
)
from jupiter.limits import quote
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plugins.domains import category_for


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield one FindingRecord per entry of Bandit's ``results``."""
    with json_document(path, on_progress) as loaded:
        doc = obj(path, loaded, "top level")
        if "results" not in doc:
            fail(path, "top level", "a Bandit report needs a 'results' array")
        generated = timestamp(path, doc.get("generated_at"), "generated_at")
        for i, raw in enumerate(arr(path, doc["results"], "results")):
            where = f"results[{i}]"
            item = obj(path, raw, where)
            rule_id = text(path, item.get("test_id"), f"{where}.test_id", required=True) or ""
            word = text(path, item.get("issue_severity"), f"{where}.issue_severity", required=True)
            severity = severity_word(word)
            if severity is None:
                if (word or "").upper() != "UNDEFINED":
                    fail(path, f"{where}.issue_severity", f"unknown severity {quote(word)}")
                severity = Severity.LOW
            cwe_raw = item.get("issue_cwe")
            cwe = cwe_ids([cwe_raw.get("id")]) if isinstance(cwe_raw, dict) else []
            title = text(path, item.get("issue_text"), f"{where}.issue_text") or rule_id
            filename = text(path, item.get("filename"), f"{where}.filename", required=True) or ""
            start = line_no(path, item.get("line_number"), f"{where}.line_number")
            line_range = arr(path, item.get("line_range"), f"{where}.line_range")
            end = line_range[-1] if line_range and isinstance(line_range[-1], int) else start
            extra = {
                k: item[k] for k in ("issue_confidence", "test_name", "more_info") if item.get(k)
            }
            if "issue_confidence" in extra:
                extra["confidence"] = extra.pop("issue_confidence")
            yield FindingRecord(
                scanner="bandit",
                rule_id=rule_id,
                category=category_for(rule_id, cwe, title),
                title=title,
                severity=severity,
                location=Location(path=report_path(filename), start_line=start, end_line=end),
                cwe=cwe,
                evidence=text(path, item.get("code"), f"{where}.code"),
                detected_at=generated,
                extra=extra,
            )
