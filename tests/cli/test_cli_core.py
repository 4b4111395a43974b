"""The real ``jupiter`` command: exit codes, one-sentence errors, --json."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from tests.conftest import ROOT, run_cli

SEED = [
    {
        "vulnerability_id": "VULN-123",
        "type": "sql_injection",
        "severity": "critical",
        "cvss_score": 9.8,
        "affected_asset": "web-app-01",
        "detection_time": "2025-10-18T10:00:00Z",
    }
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def test_init_is_idempotent(home: Path) -> None:
    first = run_cli("init", "--json", home=home)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["created"] is True
    second = run_cli("init", "--json", home=home)
    assert json.loads(second.stdout)["created"] is False
    assert (home / "jupiter.db").is_file()


def test_import_ingest_list_verify_export(home: Path, tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    r = run_cli("assets", "import", str(ROOT / "examples/assets.yaml"), home=home)
    assert r.returncode == 0, r.stderr
    r = run_cli("ingest", str(seed), "--json", home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["new_findings"] == 1
    listed = json.loads(run_cli("findings", "list", "--json", home=home).stdout)
    assert listed[0]["asset"] == "web-app-01" and listed[0]["severity"] == "critical"
    assert json.loads(run_cli("assets", "list", "--json", home=home).stdout)[0]["id"]
    r = run_cli("audit", "verify", home=home)
    assert r.returncode == 0 and "intact" in r.stdout
    r = run_cli("audit", "export", "--format", "cef", home=home)
    assert r.returncode == 0 and r.stdout.startswith("CEF:0|Jupiter|")
    out = tmp_path / "audit.jsonl"
    r = run_cli("audit", "export", "-o", str(out), home=home)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["action"] for e in lines] == ["assets.imported", "findings.ingested"]
    assert all(e["actor"] == "cli-tester" for e in lines)


def test_tampering_makes_verify_exit_1(home: Path, tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    run_cli("ingest", str(seed), home=home)
    run_cli("assets", "import", str(ROOT / "examples/assets.yaml"), home=home)
    with sqlite3.connect(home / "jupiter.db") as conn:
        conn.execute("UPDATE audit_log SET data = '{}' WHERE seq = 1")
    r = run_cli("audit", "verify", "--json", home=home)
    assert r.returncode == 1
    assert json.loads(r.stdout)["first_bad_entry"] == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["findings", "show", "42"], "no finding '42'"),
        (["ingest", "/nonexistent/report.sarif"], "does not exist"),
        (["ingest", "--format", "nessus", "x.json"], "unknown format 'nessus'"),
        (["audit", "export", "--format", "xml"], "unknown export format"),
        (["assets", "import", "/nonexistent.yaml"], "does not exist"),
        (["rollback", "7", "--yes"], "no run 7"),
        (["runs", "show", "3"], "no run 3"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(home: Path, args: list[str], fragment: str) -> None:
    r = run_cli(*args, home=home)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert fragment in r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def test_truncated_report_writes_nothing(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(SEED))
    bad = tmp_path / "bad.sarif"
    bad.write_text('{"version": "2.1.0", "runs": [{"results": [')
    r = run_cli("ingest", str(good), str(bad), home=home)
    assert r.returncode == 2 and "bad.sarif" in r.stderr
    listed = json.loads(run_cli("findings", "list", "--json", home=home).stdout)
    assert listed == []


def test_unwritable_workspace_path_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("init", home=blocker / "ws")
    assert r.returncode == 2 and "is not writable" in r.stderr


def test_unreachable_database_url(home: Path) -> None:
    r = run_cli(
        "findings",
        "list",
        home=home,
        env={"JUPITER_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:1/none"},
    )
    assert r.returncode == 2 and "cannot reach the database" in r.stderr


def test_debug_shows_traceback(home: Path) -> None:
    r = run_cli("--debug", "findings", "show", "42", home=home)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_usage_error_exits_2(home: Path) -> None:
    r = run_cli("findings", "list", "--no-such-flag", home=home)
    assert r.returncode == 2


def test_secrets_never_reach_stderr(home: Path) -> None:
    r = run_cli(
        "findings",
        "list",
        home=home,
        env={"JUPITER_DATABASE_URL": "postgresql+psycopg://app:hunter2@127.0.0.1:1/none"},
    )
    assert r.returncode == 2
    assert "hunter2" not in r.stderr and "app:***" in r.stderr
