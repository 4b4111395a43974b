"""Ingest of the real-tool fixtures through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import FIXTURES

from jupiter.engine import Engine

SCANNERS = FIXTURES / "scanners"


def test_real_reports_deduplicate_across_scanners(engine: Engine) -> None:
    reports = [SCANNERS / n for n in ("bandit.json", "semgrep.sarif", "checkov.json")]
    report = engine.ingest(reports, asset="web-app-01")
    assert report.stats.results == 4 + 3 + 21
    findings = engine.list_findings()
    by_place: dict[tuple[str, int], list[dict[str, object]]] = {}
    for f in findings:
        loc = f["location"]
        by_place.setdefault((loc["path"], loc["start_line"]), []).append(f)

    # Bandit B608 and Semgrep's SQL-injection rule on the same lines: one
    # finding each, with both sources.
    for line in (14, 19):
        (sqli,) = [
            f for f in by_place[("app/db.py", line)] if f["category"] == "code.sql_injection"
        ]
        assert sorted(s["scanner"] for s in sqli["sources"]) == ["bandit", "semgrep"]
        assert sqli["cwe"] == ["CWE-89"]
    # Checkov's 21 failed checks on two resources stay 21 findings.
    checkov = [f for f in findings if any(s["scanner"] == "checkov" for s in f["sources"])]
    assert len(checkov) == 21
    # 2 SQL injections (two sources each), Bandit's B201 and B104 and
    # Semgrep's debug rule (category "other": kept apart), 21 Checkov checks.
    assert len(findings) == report.stats.new == 2 + 3 + 21
    again = engine.ingest(reports, asset="web-app-01")
    assert again.stats.new == 0 and again.stats.new_sources == 0
    assert engine.audit_verify().ok
