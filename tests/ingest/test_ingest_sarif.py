"""SARIF parsing on real Bandit/Semgrep/Checkov output and CodeQL/Trivy-shaped files."""

from __future__ import annotations

from pathlib import Path

from jupiter.ingest import detect_format, parse_report
from jupiter.models import Category, Severity

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scanners"


def _parse(name: str) -> list:
    return list(parse_report(FIXTURES / name))


def test_bandit_sarif_reads_issue_severity_when_level_is_missing() -> None:
    records = _parse("bandit.sarif")
    assert [(r.rule_id, r.location.path, r.location.start_line) for r in records] == [
        ("B608", "app/db.py", 14),
        ("B608", "app/db.py", 19),
        ("B201", "app/views.py", 24),
        ("B104", "app/views.py", 24),
    ]
    # Bandit's medium results carry no SARIF level: the severity must come
    # from properties.issue_severity, not SARIF's default.
    assert [r.severity for r in records] == [
        Severity.MEDIUM,
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.MEDIUM,
    ]
    assert all(r.scanner == "bandit" for r in records)
    assert records[0].category is Category.CODE_SQL_INJECTION
    assert records[0].cwe == ["CWE-89"]
    assert records[0].extra["confidence"] == "MEDIUM"
    assert "SELECT id, username" in (records[0].evidence or "")
    assert records[2].category == "code.debug"  # B201: the python-security domain
    assert records[3].category == "code.bind_all"  # B104
    assert all(r.asset is None for r in records)


def test_semgrep_sarif_maps_cwe_tag_and_default_level() -> None:
    records = _parse("semgrep.sarif")
    assert len(records) == 3
    sql = [r for r in records if r.rule_id.endswith("python-sql-injection-string-format")]
    assert [(r.location.start_line, r.location.end_line) for r in sql] == [(14, 14), (19, 20)]
    assert all(r.category is Category.CODE_SQL_INJECTION for r in sql)
    assert all(r.severity is Severity.HIGH for r in sql)  # rule default level "error"
    assert all(r.scanner == "semgrep" for r in records)
    debug = next(r for r in records if r.rule_id.endswith("flask-debug-enabled"))
    assert debug.severity is Severity.MEDIUM and debug.cwe == ["CWE-489"]
    assert debug.location.path == "app/views.py"


def test_bandit_and_semgrep_sql_injection_on_the_same_line_share_an_issue_key() -> None:
    bandit = {r.location.start_line: r for r in _parse("bandit.sarif") if r.rule_id == "B608"}
    semgrep = {
        r.location.start_line: r
        for r in _parse("semgrep.sarif")
        if r.category is Category.CODE_SQL_INJECTION
    }
    assert set(bandit) == set(semgrep) == {14, 19}
    for line in (14, 19):
        assert bandit[line].issue_key() == semgrep[line].issue_key()
        assert bandit[line].fingerprint("web-app-01") == semgrep[line].fingerprint("web-app-01")
    assert bandit[14].issue_key() != bandit[19].issue_key()


def test_codeql_sarif_uses_extension_rules_security_severity_and_base_uris() -> None:
    records = _parse("codeql.sarif")
    assert [r.rule_id for r in records] == [
        "py/sql-injection",
        "py/sql-injection",
        "py/flask-debug",
        "py/unused-import",
    ]
    first, absolute, debug, unused = records
    assert first.scanner == "codeql"
    assert first.severity is Severity.HIGH and first.extra["security_severity"] == 8.8
    assert first.category is Category.CODE_SQL_INJECTION and first.cwe == ["CWE-89"]
    # An absolute file:// URI under %SRCROOT% becomes relative to it.
    assert absolute.location.path == "app/db.py" and absolute.location.start_line == 20
    assert debug.cwe == ["CWE-215", "CWE-489"] and debug.severity is Severity.HIGH
    # No security-severity: the rule's default level "note" applies; URIs are decoded.
    assert unused.severity is Severity.LOW and unused.location.path == "app/my views.py"
    assert first.title == "This SQL query depends on a [user-provided value](1)."
    assert first.extra["rule_title"] == "SQL query built from user-controlled sources"


def test_checkov_sarif_severity_comes_from_the_check_not_the_blanket_error_level() -> None:
    records = _parse("checkov.sarif")
    assert len(records) == 21
    by_id = {r.rule_id: r for r in records}
    assert by_id["CKV_K8S_16"].severity is Severity.HIGH  # privileged
    assert by_id["CKV_K8S_43"].severity is Severity.LOW  # image digest
    assert by_id["CKV_K8S_14"].severity is Severity.MEDIUM
    assert by_id["CKV_K8S_16"].category is Category.IAC_KUBERNETES
    assert by_id["CKV_DOCKER_3"].category is Category.IAC_DOCKER
    assert by_id["CKV_K8S_16"].location.path == "k8s/deployment.yaml"
    assert by_id["CKV_DOCKER_2"].location.path == "Dockerfile"
    assert "privileged: true" in (by_id["CKV_K8S_16"].evidence or "")


def test_trivy_sarif_vulnerability_becomes_a_dependency_finding() -> None:
    vuln, misconf = _parse("trivy.sarif")
    assert vuln.category is Category.DEPENDENCY
    assert (vuln.location.package, vuln.location.version) == ("flask", "2.2.2")
    assert vuln.fixed_versions == ["2.3.2", "2.2.5"]
    assert vuln.severity is Severity.HIGH
    assert vuln.title.startswith("flask: Possible disclosure")
    assert misconf.category is Category.IAC_KUBERNETES and misconf.severity is Severity.HIGH
    assert misconf.location.start_line == 22


def test_sarif_fixtures_are_detected_as_sarif() -> None:
    for name in ("bandit.sarif", "semgrep.sarif", "checkov.sarif", "codeql.sarif", "trivy.sarif"):
        assert detect_format(FIXTURES / name) == "sarif", name


def test_progress_reports_bytes_read_up_to_the_file_size(tmp_path: Path) -> None:
    source = (FIXTURES / "checkov.json").read_bytes()
    big = tmp_path / "big.json"
    big.write_bytes(source + b" " * (3 << 20))  # trailing whitespace is valid JSON
    seen: list[int] = []
    records = list(parse_report(big, "checkov", on_progress=seen.append))
    assert len(records) == 21
    assert len(seen) >= 4
    assert seen == sorted(seen) and seen[-1] == big.stat().st_size
