"""The seed's Example 1 (tests/copilot/seed_example_1.py, copied verbatim
from the workflow guide with only its import changed) runs against a
prepared workspace and prints real values; the workspace afterwards proves
each printed value."""

from __future__ import annotations

import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupiter.copilot import CopilotEngine, Query
from jupiter.engine import Engine
from jupiter.workspace import Workspace
from tests.copilot.workspace import build
from tests.integrations.servers import FakeHec, FakeJira, http_server
from tests.tools import tool

HERE = Path(__file__).parent


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    hec, jira = FakeHec("hec-secret-token"), FakeJira()
    with http_server(hec) as hec_srv, http_server(jira) as jira_srv:
        monkeypatch.setenv("COPILOT_HEC_TOKEN", "hec-secret-token")
        monkeypatch.setenv("COPILOT_JIRA_TOKEN", "jira-secret-token")
        monkeypatch.setenv("JUPITER_BANDIT", str(tool("bandit", "bandit")))
        home = build(tmp_path, splunk=hec_srv.url, jira=jira_srv.url)
        # Step 1 of the guide, "Detection": the continuous scan found the
        # SQL injection on both production copies.
        with Engine(Workspace.resolve(home), actor="admin") as eng:
            for asset in ("web-01", "web-02"):
                eng.scan(f"local:{tmp_path / 'fleet' / asset}", asset=asset)
        monkeypatch.setenv("JUPITER_HOME", str(home))
        monkeypatch.delenv("JUPITER_DATABASE_URL", raising=False)
        yield {"home": home, "tmp": tmp_path, "hec": hec, "jira": jira}


def test_seed_example_1_runs_verbatim(prepared: dict[str, Any], capsys: Any) -> None:
    source = (HERE / "seed_example_1.py").read_text(encoding="utf-8")
    assert source.startswith("from jupiter.copilot import CopilotEngine, Query\n")
    runpy.run_path(str(HERE / "seed_example_1.py"), run_name="__main__")
    out = capsys.readouterr().out
    print(out)
    lines = out.splitlines()
    snap = re.search(r"Snapshot created: (SNAP-\d{4}-\d{2}-\d{2}-\d{3})$", lines[0])
    assert snap, lines[0]
    assert re.search(r"Script generated: remediate_sql_injection\.py$", lines[1]), lines[1]
    passed = re.search(r"Tests passed: (\d+)/(\d+)$", lines[2])
    assert passed and passed.group(1) == passed.group(2) and int(passed.group(2)) >= 5
    assert lines[3].endswith("Deployment started: DEPLOY-REM-1"), lines[3]
    valid = re.search(r"Validation: (\w+) \((\d+)% confidence\)$", lines[4])
    assert valid and valid.group(1) == "fixed", lines[4]
    # re-detection 60 + bandit 25 + health probes 15: every source passed.
    if valid.group(2) != "100":
        with CopilotEngine() as c:
            why = c.process_query(Query(message="Validate REM-1", user_id="analyst_01")).data[
                "evidence"
            ]
        pytest.fail(f"confidence {valid.group(2)}: {why}")
    assert "workflow complete" in lines[5]

    tmp, home = prepared["tmp"], prepared["home"]
    with Engine(Workspace.resolve(home), actor="admin") as eng:
        points = eng.list_rollback_points()
        assert [p["snapshot_id"] for p in points] == [snap.group(1)]
        assert points[0]["asset"] == "db-01"  # "the database server"
        rem = eng.remediations.show("REM-1")
        assert rem.status == "completed"
        # Production deployed by the rolling strategy; staging was fixed by
        # the staging test (its own runs), as staging mirrors production.
        assert {t.asset: t.status for t in rem.targets if t.role == "production"} == {
            "web-01": "deployed",
            "web-02": "deployed",
        }
        assert eng.list_findings(asset="web-01", status="open") == []
    for asset in ("web-01", "web-02", "web-stg"):
        login = (tmp / "fleet" / asset / "auth/login.py").read_text()
        assert "% (username" not in login and "%s AND password = %s" in login, login
    # Step 6 reached the SIEM and the ticket for real.
    assert any(e["event"]["event"] == "remediation.completed" for e in prepared["hec"].events)
    tickets = [i for i in prepared["jira"].issues.values() if i["summary"].endswith("REM-1")]
    seen = [(i["summary"], i["status"]) for i in prepared["jira"].issues.values()]
    assert [t["status"] for t in tickets] == ["Resolved"], seen

    # The fix regresses on web-02: validation now says so, from evidence.
    login = tmp / "fleet" / "web-02" / "auth/login.py"
    from tests.copilot.workspace import LOGIN

    login.write_text(LOGIN)
    copilot = CopilotEngine()
    again = copilot.process_query(
        Query(
            message="Validate that the vulnerability is fixed",
            user_id="analyst_01",
            session_id="session_123",
        )
    )
    assert again.ok and again.data["status"] == "not_fixed"
    outcomes = {e["name"]: e["outcome"] for e in again.data["evidence"]}
    assert outcomes == {
        "re_detection": "failed",
        "external_scanner": "failed",
        "health": "passed",
    }
    assert again.data["confidence"] == 15

    # And the whole remediation is rolled back on request (the session's).
    back = copilot.process_query(
        Query(
            message="Roll back the remediation",
            user_id="analyst_01",
            session_id="session_123",
        )
    )
    assert back.ok and back.data["status"] == "rolled_back", back.message
    for asset in ("web-01", "web-02"):
        assert (tmp / "fleet" / asset / "auth/login.py").read_text() == LOGIN
    copilot.close()
