"""Bandit JSON, Checkov JSON and Trivy JSON parsing, and format detection of every fixture."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from jupiter.ingest import FORMATS, detect_format, parse_report
from jupiter.models import Category, Severity

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scanners"


@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [
        ("bandit.json", "bandit", 4),
        ("bandit.sarif", "sarif", 4),
        ("semgrep.sarif", "sarif", 3),
        ("checkov.json", "checkov", 21),
        ("checkov.sarif", "sarif", 21),
        ("codeql.sarif", "sarif", 4),
        ("trivy.json", "trivy", 8),
        ("trivy.sarif", "sarif", 2),
        ("pip-audit.json", "pip-audit", 7),
        ("osv-scanner.json", "osv", 3),
        ("seed.json", "seed", 1),
        ("seed-list.json", "seed", 3),
    ],
)
def test_each_fixture_is_detected_and_parsed(name: str, fmt: str, count: int) -> None:
    path = FIXTURES / name
    assert detect_format(path) == fmt
    assert len(list(parse_report(path))) == count
    # Forcing the right format gives the same records as auto-detection.
    assert list(parse_report(path, fmt)) == list(parse_report(path))


def test_formats_tuple_is_the_public_contract() -> None:
    assert FORMATS == ("sarif", "bandit", "checkov", "trivy", "pip-audit", "osv", "seed")


def test_bandit_json() -> None:
    records = list(parse_report(FIXTURES / "bandit.json"))
    assert [(r.rule_id, r.severity, r.location.path, r.location.start_line) for r in records] == [
        ("B608", Severity.MEDIUM, "app/db.py", 14),
        ("B608", Severity.MEDIUM, "app/db.py", 19),
        ("B201", Severity.HIGH, "app/views.py", 24),
        ("B104", Severity.MEDIUM, "app/views.py", 24),
    ]
    sql = records[0]
    assert sql.scanner == "bandit" and sql.category is Category.CODE_SQL_INJECTION
    assert sql.cwe == ["CWE-89"] and sql.extra["confidence"] == "MEDIUM"
    assert sql.title == "Possible SQL injection vector through string-based query construction."
    assert "cur.execute(" in (sql.evidence or "")
    assert records[3].cwe == ["CWE-605"]
    generated = json.loads((FIXTURES / "bandit.json").read_text())["generated_at"]
    assert sql.detected_at == datetime.fromisoformat(generated.replace("Z", "+00:00"))
    assert sql.detected_at is not None and sql.detected_at.tzinfo is not None
    # JSON and SARIF from the same Bandit run describe the same issues.
    sarif = list(parse_report(FIXTURES / "bandit.sarif"))
    assert [r.issue_key() for r in records] == [r.issue_key() for r in sarif]


def test_checkov_json_list_of_frameworks_with_null_severity() -> None:
    records = list(parse_report(FIXTURES / "checkov.json"))
    assert len(records) == 21
    docker = [r for r in records if r.category is Category.IAC_DOCKER]
    k8s = [r for r in records if r.category is Category.IAC_KUBERNETES]
    assert sorted(r.rule_id for r in docker) == ["CKV_DOCKER_2", "CKV_DOCKER_3"]
    assert len(k8s) == 19
    by_id = {r.rule_id: r for r in records}
    privileged = by_id["CKV_K8S_16"]
    assert privileged.severity is Severity.HIGH
    assert privileged.location.path == "k8s/deployment.yaml"  # Checkov's leading "/" dropped
    assert (privileged.location.start_line, privileged.location.end_line) == (1, 23)
    assert privileged.extra["resource"] == "Deployment.shop.shop"
    assert privileged.extra["check_type"] == "kubernetes"
    assert "privileged: true" in (privileged.evidence or "")
    assert by_id["CKV_K8S_8"].severity is Severity.LOW
    assert by_id["CKV_DOCKER_3"].severity is Severity.HIGH
    assert by_id["CKV_DOCKER_2"].location.path == "Dockerfile"
    # Nineteen checks on one resource are nineteen issues, not one.
    assert len({r.issue_key() for r in records}) == 21


def test_checkov_json_single_report_and_summary_only_frameworks(tmp_path: Path) -> None:
    reports = json.loads((FIXTURES / "checkov.json").read_text())
    single = tmp_path / "single.json"
    single.write_text(json.dumps(next(r for r in reports if r["check_type"] == "dockerfile")))
    assert [r.rule_id for r in parse_report(single)] == ["CKV_DOCKER_2", "CKV_DOCKER_3"]
    empty = tmp_path / "empty.json"
    empty.write_text(
        json.dumps(
            [{"check_type": "helm", "passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}]
        )
    )
    assert list(parse_report(empty, "checkov")) == []


def test_trivy_json_vulnerabilities_and_misconfigurations() -> None:
    records = list(parse_report(FIXTURES / "trivy.json"))
    deps = [r for r in records if r.category is Category.DEPENDENCY]
    assert [(r.rule_id, r.location.package, r.location.version) for r in deps] == [
        ("CVE-2023-30861", "flask", "2.2.2"),
        ("CVE-2020-14343", "PyYAML", "5.3.1"),
        ("CVE-2023-43804", "urllib3", "1.26.5"),
    ]
    flask, pyyaml, urllib3 = deps
    assert flask.fixed_versions == ["2.3.2", "2.2.5"]
    assert flask.severity is Severity.HIGH and flask.cvss_score == 7.5
    assert flask.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
    assert flask.cwe == ["CWE-539"] and flask.location.path == "requirements.txt"
    assert pyyaml.severity is Severity.CRITICAL and pyyaml.fixed_versions == ["5.4"]
    # SeveritySource "ghsa" picks GHSA's vector over Red Hat's.
    assert urllib3.cvss_score == 5.9 and urllib3.severity is Severity.MEDIUM
    misconf = {r.rule_id: r for r in records if r.category is not Category.DEPENDENCY}
    assert misconf["DS002"].category is Category.IAC_DOCKER
    assert misconf["DS002"].severity is Severity.HIGH
    assert misconf["DS026"].severity is Severity.LOW
    ksv017 = misconf["KSV017"]
    assert ksv017.category is Category.IAC_KUBERNETES
    assert (ksv017.location.path, ksv017.location.start_line) == ("k8s/deployment.yaml", 22)
    assert ksv017.evidence == "            privileged: true"
    assert misconf["KSV001"].location.end_line == 23
    assert all(r.detected_at is not None and r.detected_at.year == 2026 for r in records)


def test_trivy_skips_passed_misconfigurations_and_reads_secrets(tmp_path: Path) -> None:
    doc = {
        "SchemaVersion": 2,
        "Results": [
            {
                "Target": "k8s/deployment.yaml",
                "Misconfigurations": [
                    {"ID": "KSV017", "Title": "Privileged container", "Severity": "HIGH",
                     "Status": "PASS"},
                ],
            },
            {
                "Target": "app/settings.py",
                "Class": "secret",
                "Secrets": [
                    {"RuleID": "aws-access-key-id", "Category": "AWS", "Severity": "CRITICAL",
                     "Title": "AWS Access Key ID", "StartLine": 3, "EndLine": 3,
                     "Match": "AWS_KEY = \"****************\""},
                ],
            },
        ],
    }  # fmt: skip
    path = tmp_path / "trivy.json"
    path.write_text(json.dumps(doc))
    (secret,) = list(parse_report(path))
    assert secret.rule_id == "aws-access-key-id" and secret.severity is Severity.CRITICAL
    assert (secret.location.path, secret.location.start_line) == ("app/settings.py", 3)
