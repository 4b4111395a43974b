"""Jupiter's seed JSON: the "detected vulnerability" record of the workflow guide.

One object or a list of objects::

    {"vulnerability_id": "VULN-123", "type": "sql_injection", "severity": "critical",
     "cvss_score": 9.8, "affected_asset": "web-app-01",
     "detection_time": "2025-10-18T10:00:00Z"}

``vulnerability_id`` is the rule id (so each record is its own issue),
``type`` gives the category (see ``TYPE_CATEGORIES``; others are matched by
words, else ``other``), ``affected_asset`` the asset. ``severity`` is
required unless ``cvss_score`` is given (then the score's rating is used).
Optional: ``title``, ``path``, ``line``, ``package``, ``version``,
``cvss_vector`` (validated; it gives the score when ``cvss_score`` is absent),
``aliases``, ``fixed_versions``. Other keys are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupiter.ingest.common import (
    ProgressCallback,
    advisory_aliases,
    arr,
    cvss_base,
    fail,
    json_document,
    line_no,
    obj,
    score,
    severity_from_score,
    severity_word,
    text,
    timestamp,
)
from jupiter.limits import quote
from jupiter.models import Category, FindingRecord, Location
from jupiter.plugins.domains import category_for

TYPE_CATEGORIES: dict[str, Category] = {
    "sql_injection": Category.CODE_SQL_INJECTION,
    "sqli": Category.CODE_SQL_INJECTION,
    "vulnerable_dependency": Category.DEPENDENCY,
    "dependency": Category.DEPENDENCY,
    "outdated_package": Category.DEPENDENCY,
    "ssh_misconfiguration": Category.CONFIG_SSH,
    "weak_ssh_config": Category.CONFIG_SSH,
    "database_misconfiguration": Category.CONFIG_DATABASE,
    "firewall_misconfiguration": Category.CONFIG_FIREWALL,
    "open_port": Category.CONFIG_FIREWALL,
    "kubernetes_misconfiguration": Category.IAC_KUBERNETES,
    "docker_misconfiguration": Category.IAC_DOCKER,
    "insecure_permissions": Category.PERMISSIONS,
    "file_permissions": Category.PERMISSIONS,
}
_KNOWN = frozenset({
    "vulnerability_id", "type", "severity", "cvss_score", "affected_asset", "detection_time",
    "title", "path", "line", "package", "version", "cvss_vector", "aliases", "fixed_versions",
})  # fmt: skip


_ACRONYMS = frozenset({"sql", "ssh", "xss", "csrf", "ssrf", "rce", "tls", "ssl", "k8s", "cve"})


def _title(kind: str) -> str:
    """``sql_injection`` → ``SQL injection``."""
    words = [w.upper() if w in _ACRONYMS else w for w in kind.lower().replace("-", "_").split("_")]
    text = " ".join(w for w in words if w)
    return text[:1].upper() + text[1:]


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield one FindingRecord per seed object."""
    with json_document(path, on_progress) as doc:
        items = doc if isinstance(doc, list) else [doc]
        for i, raw in enumerate(items):
            where = f"[{i}]" if isinstance(doc, list) else "top level"
            yield _record(path, obj(path, raw, where), where)


def _record(path: Path, item: dict[str, Any], where: str) -> FindingRecord:
    vid = text(path, item.get("vulnerability_id"), f"{where}.vulnerability_id", required=True)
    kind = text(path, item.get("type"), f"{where}.type", required=True) or ""
    key = kind.strip().lower().replace("-", "_").replace(" ", "_")
    category = TYPE_CATEGORIES.get(key) or category_for(key, (), kind.replace("_", " "))

    cvss_score = score(path, item.get("cvss_score"), f"{where}.cvss_score")
    vector = text(path, item.get("cvss_vector"), f"{where}.cvss_vector")
    if vector:
        vector, base = cvss_base(path, vector, f"{where}.cvss_vector")
        cvss_score = base if cvss_score is None else cvss_score
    word = text(path, item.get("severity"), f"{where}.severity")
    if word:
        severity = severity_word(word)
        if severity is None:
            fail(
                path,
                f"{where}.severity",
                f"unknown severity {quote(word)} (use critical, high, medium, low or info)",
            )
    elif cvss_score is not None:
        severity = severity_from_score(cvss_score)
    else:
        fail(path, f"{where}.severity", "is missing and there is no cvss_score to derive it from")

    detected = timestamp(path, item.get("detection_time"), f"{where}.detection_time")

    title = text(path, item.get("title"), f"{where}.title") or f"{_title(kind)} ({vid})"
    return FindingRecord(
        scanner="seed",
        rule_id=vid or "",
        category=category,
        title=title,
        severity=severity,
        asset=text(path, item.get("affected_asset"), f"{where}.affected_asset"),
        location=Location(
            path=text(path, item.get("path"), f"{where}.path"),
            start_line=line_no(path, item.get("line"), f"{where}.line"),
            package=text(path, item.get("package"), f"{where}.package"),
            version=text(path, item.get("version"), f"{where}.version"),
        ),
        cvss_score=cvss_score,
        cvss_vector=vector,
        aliases=advisory_aliases(arr(path, item.get("aliases"), f"{where}.aliases"), vid or ""),
        fixed_versions=[
            str(v) for v in arr(path, item.get("fixed_versions"), f"{where}.fixed_versions")
        ],
        detected_at=detected,
        extra={k: v for k, v in item.items() if k not in _KNOWN},
    )
