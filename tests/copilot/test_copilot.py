"""The copilot's intents on a prepared workspace: the seed's configuration
queries, rollback points, session context, asset resolution, unknown
requests and permission refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupiter.copilot import CopilotEngine, Query, Response
from jupiter.copilot.intents import parse
from jupiter.engine import Engine
from jupiter.workspace import Workspace
from tests.copilot.workspace import build


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("copilot"))


@pytest.fixture
def copilot(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CopilotEngine]:
    # A query without user_id acts as JUPITER_ACTOR (else the OS user).
    monkeypatch.setenv("JUPITER_ACTOR", "analyst_01")
    with CopilotEngine(home) as c:
        yield c


def admin(home: Path) -> Engine:
    return Engine(Workspace.resolve(home), actor="admin")


def ask(c: CopilotEngine, message: str, **kw: Any) -> Response:
    return c.process_query(Query(message=message, **kw))


# -- the seed's queries map to intents ----------------------------------------
@pytest.mark.parametrize(
    ("message", "metadata", "intent"),
    [
        (
            "Create rollback point before remediation",
            {"asset_id": "web-app-01"},
            "create_rollback_point",
        ),
        ("Create rollback point for database server", None, "create_rollback_point"),
        (
            "Generate remediation script for SQL injection",
            {"vulnerability_type": "sql_injection"},
            "generate_script",
        ),
        ("Generate script to fix SQL injection in user login", None, "generate_script"),
        ("Test remediation in staging environment", {"script_id": "SCRIPT-123"}, "test_staging"),
        ("Test the remediation in staging", None, "test_staging"),
        ("Deploy to production with rolling strategy", None, "deploy"),
        ("Deploy remediation to production", None, "deploy"),
        ("Validate SQL injection remediation", None, "validate"),
        ("Validate that the vulnerability is fixed", None, "validate"),
        ("Send remediation success to Splunk", None, "send_siem"),
        ("Update Jira ticket to resolved", None, "update_ticket"),
        ("Rollback to snapshot SNAP-2025-10-18-001", None, "rollback"),
        ("Generate hardened SSH config", {"config_type": "ssh"}, "generate_config"),
        ("Generate firewall rules for web server", None, "generate_config"),
        ("Generate secure PostgreSQL config", None, "generate_config"),
        ("Show remediation statistics", None, "statistics"),
        ("List critical findings", None, "list_findings"),
        ("Please do it", {"config_type": "ssh"}, "generate_config"),
        ("Make me a sandwich", None, "unknown"),
    ],
)
def test_intents(message: str, metadata: dict[str, Any] | None, intent: str) -> None:
    assert parse(message, metadata).intent == intent


def test_parameters_from_the_message() -> None:
    p = parse("Deploy REM-7 with blue green strategy", None).params
    assert p["remediation"] == "REM-7" and p["strategy"] == "blue-green"
    p = parse("Generate script to fix SQL injection in auth/login.py", None).params
    assert p["vulnerability_type"] == "sql_injection" and p["component"] == "auth/login.py"
    p = parse("Rollback to snapshot snap-2025-10-18-001", None).params
    assert p["snapshot_id"] == "SNAP-2025-10-18-001"
    assert parse("Create rollback point for database server", None).params["asset_ref"] == (
        "database server"
    )


# -- the seed's configuration queries ------------------------------------------
def test_seed_config_queries(copilot: CopilotEngine) -> None:
    ssh = copilot.process_query(
        Query(
            message="Generate hardened SSH config",
            metadata={"config_type": "ssh", "hardening_level": "maximum"},
        )
    )
    assert ssh.ok, ssh.message
    assert ssh.data["kind"] == "ssh" and ssh.data["params"] == {"level": "maximum"}
    sshd = ssh.data["config"]["files"]["etc/ssh/sshd_config"]
    for line in ("PermitRootLogin no", "PasswordAuthentication no", "MaxAuthTries"):
        assert line in sshd

    fw = copilot.process_query(
        Query(
            message="Generate firewall rules for web server",
            metadata={
                "config_type": "firewall",
                "asset_type": "web_server",
                "allowed_ports": [80, 443],
            },
        )
    )
    assert fw.ok, fw.message
    (rules,) = fw.data["config"]["files"].values()
    assert "policy drop" in rules and "80" in rules and "443" in rules and "limit rate" in rules

    pg = copilot.process_query(
        Query(
            message="Generate secure PostgreSQL config",
            metadata={
                "config_type": "database",
                "database": "postgresql",
                "environment": "production",
            },
        )
    )
    assert pg.ok, pg.message
    files = pg.data["config"]["files"]
    conf = next(v for k, v in files.items() if k.endswith("postgresql.conf"))
    assert "ssl = on" in conf and "password_encryption = scram-sha-256" in conf
    assert pg.data["params"] == {"environment": "production"}

    with admin(copilot.workspace.home) as eng:
        done = [e for e in eng.audit_export() if e["action"] == "config.generated"]
    assert [e["actor"] for e in done][-3:] == ["analyst_01"] * 3


def test_config_refusals_are_one_sentence(copilot: CopilotEngine) -> None:
    r = ask(
        copilot,
        "Generate secure MySQL config",
        metadata={"config_type": "database", "database": "mysql"},
    )
    assert not r.ok and "only PostgreSQL" in r.message
    r = ask(
        copilot, "Generate config", metadata={"config_type": "ssh", "hardening_level": "extreme"}
    )
    assert not r.ok and "level" in r.message and "\n" not in r.message
    r = ask(copilot, "Generate a hardened config")
    assert not r.ok and "ssh, firewall or database" in r.message


# -- rollback points, resolution and session context ----------------------------
def test_database_server_resolves_and_session_remembers(copilot: CopilotEngine, home: Path) -> None:
    first = ask(copilot, "Create rollback point for database server", session_id="ctx-1")
    assert first.ok, first.message
    snap = first.data["snapshot"]
    assert snap["asset"] == "db-01" and snap["files"] > 0
    assert snap["snapshot_id"].startswith("SNAP-") and len(snap["snapshot_id"]) == 19

    # No asset named: the session's last asset; a new copilot process too.
    with CopilotEngine(home) as again:
        second = ask(again, "Take another snapshot", session_id="ctx-1")
    assert second.ok, second.message
    assert second.data["snapshot"]["asset"] == "db-01"
    assert second.data["snapshot"]["snapshot_id"] != snap["snapshot_id"]

    # Another session, or another user in the same session, has no context.
    other = ask(copilot, "Take another snapshot", session_id="ctx-2")
    assert not other.ok and "which asset?" in other.message
    stranger = ask(copilot, "Take another snapshot", session_id="ctx-1", user_id="admin")
    assert not stranger.ok and "which asset?" in stranger.message
    # "Rollback" alone in a session that only took snapshots: a question.
    r = ask(copilot, "Rollback", session_id="ctx-1")
    assert (
        not r.ok and f"'Rollback to snapshot {second.data['snapshot']['snapshot_id']}'" in r.message
    )


def test_ambiguous_asset_is_a_question(copilot: CopilotEngine, home: Path) -> None:
    with admin(home) as eng:
        before = len(eng.list_rollback_points())
    r = ask(copilot, "Create rollback point for the web app", session_id="amb")
    assert not r.ok
    assert r.data["candidates"] == ["web-01", "web-02", "web-stg"]
    assert "which one?" in r.message
    r = ask(copilot, "Create rollback point for the production web app")
    assert not r.ok and r.data["candidates"] == ["web-01", "web-02"]
    r = ask(copilot, "Create rollback point for the staging web app")
    assert r.ok and r.data["snapshot"]["asset"] == "web-stg"
    r = ask(copilot, "Create rollback point for mainframe")
    assert not r.ok and "no asset matches 'mainframe'" in r.message
    with admin(home) as eng:
        assert len(eng.list_rollback_points()) == before + 1


def test_rollback_to_a_snapshot_restores_and_proves_it(copilot: CopilotEngine, home: Path) -> None:
    r = ask(copilot, "Create rollback point", metadata={"asset_id": "web-02"}, session_id="rb")
    snap = r.data["snapshot"]["snapshot_id"]
    with admin(home) as eng:
        root = Path(next(a for a in eng.list_assets() if a["id"] == "web-02")["connection"][6:])
    original = (root / "auth/login.py").read_text()
    (root / "auth/login.py").write_text("broken = True\n")
    (root / "auth/new.py").write_text("added = 1\n")
    # The seed's manual rollback query (its snapshot id replaced by ours).
    back = copilot.process_query(
        Query(
            message=f"Rollback to snapshot {snap}",
            user_id="analyst_01",
            session_id="rb",
            metadata={"snapshot_id": snap, "reason": "Manual rollback requested"},
        )
    )
    assert back.ok, back.message
    assert back.data["status"] == "rolled_back"
    assert back.data["rollback"]["written"] == ["auth/login.py"]
    assert back.data["rollback"]["mismatched"] == []
    assert back.data["rollback"]["added_since"] == ["auth/new.py"]
    assert (root / "auth/login.py").read_text() == original
    # A viewer may not restore; nothing changes.
    (root / "auth/login.py").write_text("broken again\n")
    denied = ask(copilot, f"Rollback to snapshot {snap}", user_id="viewer_01")
    assert not denied.ok and denied.data == {"error": "permission_denied"}
    assert "snapshots.restore" in denied.message
    assert (root / "auth/login.py").read_text() == "broken again\n"
    (root / "auth/login.py").write_text(original)
    missing = ask(copilot, "Rollback to snapshot SNAP-1999-01-01-001")
    assert not missing.ok and "no rollback point" in missing.message


# -- refusals -------------------------------------------------------------------
def test_permission_refusal_is_audited_and_writes_nothing(
    copilot: CopilotEngine, home: Path
) -> None:
    with admin(home) as eng:
        before = len(eng.list_rollback_points())
    r = ask(copilot, "Create rollback point for database server", user_id="viewer_01")
    assert not r.ok and r.intent == "create_rollback_point"
    assert "viewer_01" in r.message and "snapshots.create" in r.message
    with admin(home) as eng:
        assert len(eng.list_rollback_points()) == before
        denied = [e for e in eng.audit_export() if e["action"] == "permission.denied"]
    assert denied and denied[-1]["actor"] == "viewer_01"


def test_unknown_request_says_what_it_understood(copilot: CopilotEngine) -> None:
    r = ask(copilot, "Make me a sandwich with REM-4")
    assert not r.ok and r.intent == "unknown"
    assert "remediation REM-4" in r.message and "create a rollback point" in r.message
    assert r.data["understood"] == {"remediation": "REM-4"}
    assert "generate_script" in r.data["capabilities"]


def test_unavailable_integrations_say_so(copilot: CopilotEngine) -> None:
    r = ask(copilot, "Send remediation success to Splunk", metadata={"remediation_id": "REM-1"})
    assert not r.ok and "no splunk channel is configured" in r.message
    r = ask(copilot, "Update Jira ticket to resolved", metadata={"remediation_id": "REM-1"})
    assert not r.ok and "no Jira channel is configured" in r.message
    r = ask(copilot, "Validate that the vulnerability is fixed", session_id="empty")
    assert not r.ok and "which remediation?" in r.message


def test_statistics_and_findings(copilot: CopilotEngine) -> None:
    stats = copilot.get_statistics()
    for key in (
        "remediations_performed",
        "remediation_success_rate",
        "avg_remediation_time",
        "rollbacks_performed",
        "vulnerabilities_fixed",
    ):
        assert key in stats
    r = ask(copilot, "Show remediation statistics")
    assert r.ok and r.data["remediations_performed"] == stats["remediations_performed"]
    r = ask(copilot, "List open findings on database server")
    assert r.ok and r.data["filters"] == {"status": "open", "asset": "db-01"}
    assert r.data["count"] == len(r.data["findings"])
    r = ask(copilot, "List findings", metadata={"severity": "urgent"})
    assert not r.ok and "unknown severity" in r.message


def test_script_before_test_and_deploy(copilot: CopilotEngine) -> None:
    s = "flow"
    r = ask(copilot, "Generate script to fix SQL injection in auth/login.py", session_id=s)
    assert not r.ok and "no open code.sql_injection finding in auth/login.py" in r.message
    # Naming the asset scans it first (detection on demand).
    r = ask(
        copilot,
        "Generate script to fix SQL injection in auth/login.py",
        metadata={"asset_id": "web-01", "format": "bash"},
        session_id=s,
    )
    assert r.ok, r.message
    script = r.data["script"]
    assert script["id"] == "REM-1" and script["filename"] == "remediate_sql_injection.sh"
    assert script["content"].startswith("#!") and "auth/login.py" in script["content"]
    assert {t["asset"] for t in script["targets"]} == {"web-01", "web-02", "web-stg"}
    assert "(username, password_hash)" in script["diff"][0]
    r = ask(copilot, "Deploy remediation to production", session_id=s)
    assert not r.ok and "test it in staging before deploying" in r.message
    r = ask(copilot, "Deploy it with canary strategy", session_id=s)
    assert not r.ok and "planned to deploy rolling" in r.message
    r = ask(copilot, "Validate that the vulnerability is fixed", session_id=s)
    assert r.ok and r.data["status"] == "pending" and r.data["confidence"] == 0
    r = ask(copilot, "Test the remediation in production", session_id=s)
    assert not r.ok and "tests run in staging" in r.message
    r = ask(copilot, "Test the remediation in staging", session_id=s, user_id="viewer_01")
    assert not r.ok and "which remediation?" in r.message  # the viewer's own session is empty
    r = ask(copilot, "Test REM-1 in staging", user_id="viewer_01")
    assert not r.ok and r.data == {"error": "permission_denied"}
    r = ask(copilot, "Roll back the remediation", session_id=s)
    assert not r.ok and "REM-1 changed nothing that can be rolled back" in r.message


# -- the optional language-model backend (a fake OpenAI-compatible server) -------
def test_llm_only_names_an_intent(copilot: CopilotEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.integrations.servers import Request, closed_port, http_server

    answers = {
        "safety net": {"intent": "create_rollback_point", "params": {"asset_ref": "db-01"}},
        "wipe": {"intent": "delete_everything", "params": {}},
        "chat": {"intent": "unknown", "params": {}},
    }

    def chat(req: Request) -> tuple[int, object]:
        body = req.json()
        text = body["messages"][-1]["content"]
        assert body["messages"][0]["role"] == "system"
        assert req.headers["authorization"] == "Bearer llm-key"
        key = next(k for k in answers if k in text)
        content = json.dumps(answers[key])
        return 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}

    with http_server(chat) as srv:
        monkeypatch.setenv("JUPITER_LLM_URL", srv.url + "/v1")
        monkeypatch.setenv("JUPITER_LLM_API_KEY", "llm-key")
        # The grammar understands this one: the model is never asked.
        r = ask(copilot, "Show remediation statistics")
        assert r.ok and not srv.requests
        r = ask(copilot, "I want a safety net for our data store please")
        assert r.ok and r.intent == "create_rollback_point", r.message
        assert r.data["snapshot"]["asset"] == "db-01"
        assert srv.requests[-1].path == "/v1/chat/completions"
        # Roles still decide, whatever the model says.
        r = ask(copilot, "I want a safety net for our data store please", user_id="viewer_01")
        assert not r.ok and r.data == {"error": "permission_denied"}
        r = ask(copilot, "wipe the fleet")
        assert not r.ok and "intent the copilot lacks: 'delete_everything'" in r.message
        r = ask(copilot, "let's chat")
        assert not r.ok and r.intent == "unknown" and "I can create a rollback point" in r.message
    monkeypatch.setenv("JUPITER_LLM_URL", f"http://127.0.0.1:{closed_port()}/v1")
    r = ask(copilot, "let's chat")
    assert not r.ok and "gave no usable answer" in r.message and "llm-key" not in r.message


def test_readme_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import re

    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The copilot", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    home = build(tmp_path)
    with admin(home) as eng:
        eng.scan(f"local:{tmp_path / 'fleet' / 'web-01'}", asset="web-01")
    monkeypatch.setenv("JUPITER_HOME", str(home))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"True SNAP-\d{4}-\d{2}-\d{2}-001", out[0]), out
    assert out[1] == "REM-1 remediate_sql_injection.py"
    assert out[2] == "pending 0"


def test_redaction_spares_scripts_and_configs_only() -> None:
    from jupiter.copilot.engine import _redacted

    fixed = 'cursor.execute("... WHERE username = %s AND password = %s", (u, p))'
    out = _redacted(
        {
            "script": {"content": fixed, "diff": "password = 'hunter2'"},
            "config": {"files": {"x.conf": "password_encryption = scram-sha-256"}},
            "token": "abc",
        }
    )
    assert out["script"]["content"] == fixed
    assert out["config"]["files"] == {"x.conf": "password_encryption = scram-sha-256"}
    assert "hunter2" not in out["script"]["diff"] and out["token"] == "***REDACTED***"
