"""The export reads the store the same way on SQLite and PostgreSQL: stable
fingerprints across exports, re-ingests and workspaces, filters, and an
audit entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.export.sarif import FINGERPRINT_KEY
from jupiter.store.tables import AuditRow
from jupiter.workspace import Workspace
from tests.conftest import ROOT
from tests.export.sarif_apply import validate

REPORTS = [ROOT / "examples" / "reports" / n for n in ("bandit.sarif", "trivy.json")]


def _fingerprints(log: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    """(rule, path, line, package) → fingerprint: a result across workspaces."""
    out: dict[tuple[Any, ...], str] = {}
    for run in log["runs"]:
        for r in run["results"]:
            loc = r.get("locations", [{}])[0].get("physicalLocation", {})
            key = (
                r["ruleId"],
                loc.get("artifactLocation", {}).get("uri", ""),
                loc.get("region", {}).get("startLine"),
                str(r.get("locations", [{}])[0].get("logicalLocations", "")),
            )
            assert key not in out
            out[key] = r["partialFingerprints"][FINGERPRINT_KEY]
    return out


def test_fingerprints_survive_re_ingest_and_a_new_workspace(engine: Engine, tmp_path: Path) -> None:
    engine.init()
    engine.ingest(REPORTS, asset="web")
    first = engine.export_sarif(fixes=False)
    validate(first)
    engine.ingest(REPORTS, asset="web")  # seen again: nothing but last_seen changes
    assert _fingerprints(engine.export_sarif(fixes=False)) == _fingerprints(first)
    other = Engine(
        Workspace(tmp_path / "other", f"sqlite:///{tmp_path / 'other' / 'j.db'}"), actor="t"
    )
    try:
        other.init()
        other.ingest(list(reversed(REPORTS)), asset="web")  # another order, other ids
        assert _fingerprints(other.export_sarif(fixes=False)) == _fingerprints(first)
    finally:
        other.close()


def test_filters_and_the_audit_entry(engine: Engine) -> None:
    engine.init()
    engine.ingest(REPORTS, asset="web")
    engine.ingest([ROOT / "examples" / "reports" / "checkov.sarif"], asset="k8s")
    everything = engine.export_sarif(fixes=False)
    only_web = engine.export_sarif("web", "open", fixes=False)
    validate(only_web)
    assets = {r["properties"]["asset"] for run in only_web["runs"] for r in run["results"]}
    assert assets == {"web"}
    total = sum(len(run["results"]) for run in everything["runs"])
    assert 0 < sum(len(run["results"]) for run in only_web["runs"]) < total
    assert engine.export_sarif("web", "verified", fixes=False)["runs"] == []
    with engine.db.reading() as s:
        entries = s.scalars(select(AuditRow).where(AuditRow.action == "findings.exported")).all()
    assert [e.subject for e in entries] == ["findings", "asset:web", "asset:web"]
