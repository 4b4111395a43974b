"""The store on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError, NotFoundError
from jupiter.models import Category, FindingRecord, Location, Severity

ASSETS = """
assets:
  - id: web-1
    kind: web_app
    environment: prod
    criticality: 5
    owner: team-a
    tags: [pci]
    group: web
  - id: dev-1
    environment: dev
    criticality: 1
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _seed_report(tmp_path: Path, items: str) -> Path:
    return _write(tmp_path, "seed.json", items)


SEED = """[
 {"vulnerability_id": "VULN-1", "type": "sql_injection", "severity": "critical",
  "cvss_score": 9.8, "affected_asset": "web-1", "detection_time": "2025-10-18T10:00:00Z"},
 {"vulnerability_id": "VULN-2", "type": "xss", "severity": "medium",
  "cvss_score": 5.4, "affected_asset": "dev-1", "detection_time": "2025-10-18T10:00:00Z"}
]"""


def test_assets_import_list_and_update(engine: Engine, tmp_path: Path) -> None:
    result = engine.import_assets(_write(tmp_path, "a.yaml", ASSETS))
    assert result == {"created": ["web-1", "dev-1"], "updated": []}
    listed = {a["id"]: a for a in engine.list_assets()}
    assert listed["web-1"]["criticality"] == 5
    assert listed["web-1"]["tags"] == ["pci"]
    assert listed["dev-1"]["kind"] == "host"
    again = engine.import_assets(_write(tmp_path, "a.yaml", ASSETS))
    assert again == {"created": [], "updated": ["web-1", "dev-1"]}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("assets: [{id: x, criticality: 9}]", "asset #1, field criticality"),
        ("assets: [{id: x, kind: spaceship}]", "asset #1, field kind"),
        ("assets: [{id: x}, {id: x}]", "appears twice"),
        ("assets: [{id: x, color: red}]", "field color"),
        ("assets: {id: x", "is not valid YAML"),
        ("just a string", "must hold a list"),
    ],
)
def test_bad_asset_files_are_refused_whole(
    engine: Engine, tmp_path: Path, text: str, fragment: str
) -> None:
    good_then_bad = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError, match=fragment):
        engine.import_assets(good_then_bad)
    assert engine.list_assets() == []


def test_ingest_prioritises_by_asset(engine: Engine, tmp_path: Path) -> None:
    engine.import_assets(_write(tmp_path, "a.yaml", ASSETS))
    report = engine.ingest([_seed_report(tmp_path, SEED)])
    assert report.stats.new == 2
    findings = engine.list_findings()
    assert [f["asset"] for f in findings] == ["web-1", "dev-1"]
    top = findings[0]
    assert top["severity"] == "critical"
    assert top["category"] == "code.sql_injection"
    assert top["priority"] == pytest.approx(98.0)  # 9.8 on a criticality-5 prod asset
    assert findings[1]["priority"] < 30


def test_reingest_only_moves_last_seen(engine: Engine, tmp_path: Path) -> None:
    engine.import_assets(_write(tmp_path, "a.yaml", ASSETS))
    seed = _seed_report(tmp_path, SEED)
    engine.ingest([seed])
    before = {f["id"]: f for f in engine.list_findings()}
    report = engine.ingest([seed])
    assert report.stats.new == 0 and report.stats.seen_again == 2
    after = {f["id"]: f for f in engine.list_findings()}
    assert before.keys() == after.keys()
    for fid, old in before.items():
        new = after[fid]
        assert new["last_seen"] >= old["last_seen"]
        assert {k: v for k, v in new.items() if k != "last_seen" and k != "sources"} == {
            k: v for k, v in old.items() if k != "last_seen" and k != "sources"
        }
        assert [s["scanner"] for s in new["sources"]] == [s["scanner"] for s in old["sources"]]


def test_unknown_asset_is_created_unregistered_or_refused(engine: Engine, tmp_path: Path) -> None:
    seed = _seed_report(tmp_path, SEED)
    with pytest.raises(InputError, match="not registered"):
        engine.ingest([seed], strict_assets=True)
    assert engine.list_findings() == [] and engine.list_assets() == []
    report = engine.ingest([seed])
    assert sorted(report.stats.unregistered_assets) == ["dev-1", "web-1"]
    assert all(not a["registered"] for a in engine.list_assets())
    # Importing the asset later registers it and re-scores its findings.
    before = {f["asset"]: f["priority"] for f in engine.list_findings()}
    engine.import_assets(_write(tmp_path, "a.yaml", ASSETS))
    after = {f["asset"]: f["priority"] for f in engine.list_findings()}
    assert after["web-1"] > before["web-1"]


def test_whole_ingest_is_one_transaction(engine: Engine, tmp_path: Path) -> None:
    good = _seed_report(tmp_path, SEED)
    bad = _write(tmp_path, "broken.json", '[{"vulnerability_id": "V", "severity": ')
    with pytest.raises(InputError, match=r"broken\.json"):
        engine.ingest([good, bad])
    assert engine.list_findings() == []
    assert engine.audit_verify().entries == 0


def test_two_scanners_one_finding(engine: Engine, tmp_path: Path) -> None:
    from jupiter.store import findings as repo
    from jupiter.store.tables import utcnow

    loc = Location(path="app/db.py", start_line=14)
    bandit = FindingRecord(
        scanner="bandit",
        rule_id="B608",
        category=Category.CODE_SQL_INJECTION,
        title="sqli",
        severity=Severity.MEDIUM,
        location=loc,
        cwe=["CWE-89"],
    )
    semgrep = bandit.model_copy(
        update={"scanner": "semgrep", "rule_id": "python.sqli", "severity": Severity.HIGH}
    )
    with engine.db.transaction() as s:
        w = repo.FindingWriter(s, utcnow(), default_asset="web-1")
        w.add_all([bandit, semgrep])
        w.flush()
    (only,) = engine.list_findings()
    assert only["severity"] == "high"
    assert sorted((s["scanner"], s["rule_id"]) for s in only["sources"]) == [
        ("bandit", "B608"),
        ("semgrep", "python.sqli"),
    ]


def test_get_finding_by_id_and_fingerprint(engine: Engine, tmp_path: Path) -> None:
    engine.ingest([_seed_report(tmp_path, SEED)])
    first = engine.list_findings()[0]
    assert engine.get_finding(str(first["id"]))["fingerprint"] == first["fingerprint"]
    assert engine.get_finding(first["fingerprint"][:12])["id"] == first["id"]
    with pytest.raises(NotFoundError, match="no finding '999'"):
        engine.get_finding("999")


def test_a_later_report_merges_new_facts_into_the_stored_finding(engine: Engine) -> None:
    from jupiter.store import findings as repo
    from jupiter.store.tables import utcnow

    first = FindingRecord(
        scanner="pip-audit",
        rule_id="PYSEC-2021-1",
        category=Category.DEPENDENCY,
        title="jinja2 XSS",
        severity=Severity.MEDIUM,
        aliases=["CVE-2024-1"],
        location=Location(path="requirements.txt", package="jinja2", version="3.1.2"),
    )
    later = first.model_copy(
        update={
            "scanner": "osv-scanner",
            "rule_id": "GHSA-aaaa-bbbb-cccc",
            "aliases": ["CVE-2024-1", "PYSEC-2021-1"],
            "fixed_versions": ["3.1.3"],
            "severity": Severity.HIGH,
            "cvss_score": 7.5,
        }
    )
    for record in (first, later, later):
        with engine.db.transaction() as s:
            w = repo.FindingWriter(s, utcnow(), default_asset="web-1")
            w.add(record)
            w.flush()
    (only,) = engine.list_findings()
    assert only["aliases"] == ["CVE-2024-1", "PYSEC-2021-1"]
    assert only["fixed_versions"] == ["3.1.3"]
    assert only["severity"] == "high" and only["cvss_score"] == 7.5
    assert {s["scanner"] for s in only["sources"]} == {"pip-audit", "osv-scanner"}
