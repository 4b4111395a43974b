"""pip-audit JSON (``pip-audit -f json``).

pip-audit reports no severity at all, so every advisory gets
:data:`~jupiter.ingest.common.UNRATED_ADVISORY_SEVERITY` (HIGH) and
``extra["severity_source"] = "default"``; triage policy may lower it, and an
OSV or Trivy report of the same advisory (same issue key) carries a rating.
Dependencies pip-audit skipped (``skip_reason``) yield nothing. Older
pip-audit versions wrote the ``dependencies`` list as the whole document;
both shapes are read. There is no file location: ``--asset`` names the target.
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
    fail,
    json_document,
    obj,
    text,
)
from jupiter.models import Category, FindingRecord, Location


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield one dependency FindingRecord per (package, advisory)."""
    with json_document(path, on_progress) as doc:
        deps: Any
        if isinstance(doc, dict):
            if "dependencies" not in doc:
                fail(path, "top level", "a pip-audit report needs a 'dependencies' array")
            deps = doc["dependencies"]
        else:
            deps = doc
        for i, raw in enumerate(arr(path, deps, "dependencies")):
            where = f"dependencies[{i}]"
            dep = obj(path, raw, where)
            name = text(path, dep.get("name"), f"{where}.name", required=True) or ""
            if dep.get("skip_reason"):
                continue
            version = text(path, dep.get("version"), f"{where}.version", required=True)
            for j, vraw in enumerate(arr(path, dep.get("vulns"), f"{where}.vulns")):
                vwhere = f"{where}.vulns[{j}]"
                vuln = obj(path, vraw, vwhere)
                vid = text(path, vuln.get("id"), f"{vwhere}.id", required=True) or ""
                aliases = advisory_aliases(arr(path, vuln.get("aliases"), f"{vwhere}.aliases"), vid)
                fixed = [
                    text(path, v, f"{vwhere}.fix_versions[{k}]", required=True) or ""
                    for k, v in enumerate(
                        arr(path, vuln.get("fix_versions"), f"{vwhere}.fix_versions")
                    )
                ]
                description = text(path, vuln.get("description"), f"{vwhere}.description") or ""
                summary = (description.strip().splitlines() or [""])[0][:200]
                yield FindingRecord(
                    scanner="pip-audit",
                    rule_id=vid,
                    category=Category.DEPENDENCY,
                    title=f"{name} {version}: {summary or vid}",
                    severity=UNRATED_ADVISORY_SEVERITY,
                    location=Location(package=name, version=version),
                    aliases=aliases,
                    fixed_versions=fixed,
                    extra={"severity_source": "default", "description": description},
                )
