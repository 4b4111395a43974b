"""pip-audit, OSV-Scanner and seed JSON, and cross-scanner issue keys for advisories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.ingest import detect_format, parse_report
from jupiter.models import Category, Severity

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scanners"


def test_pip_audit_json() -> None:
    records = list(parse_report(FIXTURES / "pip-audit.json"))
    assert [(r.location.package, r.rule_id) for r in records] == [
        ("flask", "PYSEC-2023-62"),
        ("jinja2", "GHSA-h5c8-rqwp-cp95"),
        ("requests", "PYSEC-2023-74"),
        ("requests", "GHSA-9wx4-h78v-vm56"),
        ("urllib3", "GHSA-v845-jxx5-vc9f"),
        ("werkzeug", "PYSEC-2023-58"),
        ("pyyaml", "PYSEC-2021-142"),
    ]  # the skipped "gunicorn" dependency yields nothing
    flask = records[0]
    assert flask.scanner == "pip-audit" and flask.category is Category.DEPENDENCY
    assert flask.location.version == "2.2.2" and flask.location.path is None
    assert flask.aliases == ["CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq"]
    assert flask.fixed_versions == ["2.2.5", "2.3.2"]
    # pip-audit rates nothing: the documented default applies, and says so.
    assert all(r.severity is Severity.HIGH for r in records)
    assert flask.extra["severity_source"] == "default"
    assert flask.title.startswith("flask 2.2.2: Flask is a lightweight")


def test_pip_audit_legacy_list_shape(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "pip-audit.json").read_text())["dependencies"]
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(doc, indent=2))
    assert detect_format(path) == "pip-audit"
    assert len(list(parse_report(path))) == 7


def test_osv_scanner_groups_records_of_one_flaw() -> None:
    records = list(parse_report(FIXTURES / "osv-scanner.json"))
    assert [(r.location.package, r.rule_id) for r in records] == [
        ("flask", "GHSA-m2qf-hxjv-5gpq"),
        ("PyYAML", "GHSA-8q59-q68h-6hv4"),
        ("requests", "PYSEC-2023-74"),
    ]
    flask, pyyaml, requests = records
    assert flask.scanner == "osv-scanner"
    assert sorted(flask.aliases) == ["CVE-2023-30861", "PYSEC-2023-62"]
    assert flask.fixed_versions == ["2.3.2", "2.2.5"]  # git commits are not versions
    assert flask.severity is Severity.HIGH and flask.extra["severity_source"] == "database_specific"
    assert flask.cvss_score == 7.5 and flask.cwe == ["CWE-539"]
    assert flask.location.path == "/src/shop/requirements.txt"
    assert pyyaml.severity is Severity.CRITICAL and pyyaml.fixed_versions == ["5.4"]
    # No database severity: the CVSS vector's base score decides (6.1 → medium).
    assert requests.cvss_score == 6.1 and requests.severity is Severity.MEDIUM
    assert requests.extra["severity_source"] == "cvss"
    assert requests.fixed_versions == ["2.31.0"]


def test_pip_audit_osv_and_trivy_agree_on_the_issue_key() -> None:
    pip_audit: dict = {}
    for record in parse_report(FIXTURES / "pip-audit.json"):
        pip_audit.setdefault(record.location.package.lower(), record)  # requests: CVE-2023-32681
    osv = {r.location.package.lower(): r for r in parse_report(FIXTURES / "osv-scanner.json")}
    trivy = {
        r.location.package.lower(): r
        for r in parse_report(FIXTURES / "trivy.json")
        if r.category is Category.DEPENDENCY
    }
    for package in ("flask", "pyyaml", "requests"):
        assert pip_audit[package].issue_key() == osv[package].issue_key(), package
        assert pip_audit[package].fingerprint("shop") == osv[package].fingerprint("shop")
    assert pip_audit["flask"].issue_key() == ("dep", "flask", "2.2.2", "CVE-2023-30861")
    assert trivy["flask"].issue_key() == osv["flask"].issue_key()
    assert trivy["pyyaml"].issue_key() == pip_audit["pyyaml"].issue_key()
    # Different advisories on one package stay apart.
    requests = [
        r for r in parse_report(FIXTURES / "pip-audit.json") if r.location.package == "requests"
    ]
    assert requests[0].issue_key() != requests[1].issue_key()


def test_seed_single_object() -> None:
    (record,) = list(parse_report(FIXTURES / "seed.json"))
    assert record.scanner == "seed" and record.rule_id == "VULN-123"
    assert record.category is Category.CODE_SQL_INJECTION
    assert record.severity is Severity.CRITICAL and record.cvss_score == 9.8
    assert record.asset == "web-app-01"
    assert record.detected_at == datetime(2025, 10, 18, 10, 0, tzinfo=UTC)
    assert record.title == "SQL injection (VULN-123)"


def test_seed_list_with_optional_fields() -> None:
    sql, ssh, dep = list(parse_report(FIXTURES / "seed-list.json"))
    assert (sql.location.path, sql.location.start_line) == ("app/db.py", 14)
    assert ssh.category is Category.CONFIG_SSH and ssh.asset == "bastion-01"
    assert ssh.cvss_score == 7.4  # from the vector, none given
    assert ssh.extra == {"ticket": "SEC-881"}
    assert dep.category is Category.DEPENDENCY
    assert dep.severity is Severity.HIGH  # no severity word: from cvss_score 7.5
    assert dep.issue_key() == ("dep", "flask", "2.2.2", "CVE-2023-30861")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"cvss_score": 11.0}, "cvss_score"),
        ({"cvss_score": "high"}, "cvss_score"),
        ({"detection_time": "yesterday"}, "detection_time"),
        ({"type": None}, "type"),
        ({"vulnerability_id": ""}, "vulnerability_id"),
        ({"severity": None, "cvss_score": None}, "severity"),
    ],
)
def test_seed_bad_fields_name_the_field(tmp_path: Path, patch: dict, field: str) -> None:
    item = json.loads((FIXTURES / "seed.json").read_text()) | patch
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps([{"vulnerability_id": "OK-1", "type": "x", "severity": "low"}, item])
    )
    with pytest.raises(InputError) as info:
        list(parse_report(path, "seed"))
    assert str(path) in str(info.value)
    assert f"[1].{field}" in str(info.value)


def test_seed_titles_spell_acronyms() -> None:
    _, ssh, dep = list(parse_report(FIXTURES / "seed-list.json"))
    assert ssh.title == "Weak SSH config (VULN-124)"
    assert dep.title == "Vulnerable dependency (VULN-125)"
