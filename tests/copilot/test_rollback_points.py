"""Rollback points of whole assets through the engine (SQLite and
PostgreSQL) and the command line (`jupiter snapshots`, `jupiter ask`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from jupiter.engine import Engine
from jupiter.errors import InputError, NotFoundError
from tests.conftest import ROOT, run_cli


def _host(tmp_path: Path, engine: Engine) -> Path:
    root = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", root, symlinks=True)
    spec = {"assets": [{"id": "h1", "kind": "host", "connection": f"local:{root}"}]}
    (tmp_path / "assets.yaml").write_text(yaml.safe_dump(spec))
    engine.import_assets(tmp_path / "assets.yaml")
    return root


def test_create_restore_and_numbering(engine: Engine, tmp_path: Path) -> None:
    root = _host(tmp_path, engine)
    conf = root / "etc/ssh/sshd_config"
    original = conf.read_bytes()
    first = engine.create_rollback_point("h1", reason="before hardening")
    second = engine.create_rollback_point("h1")
    day = first["snapshot_id"][5:15]
    assert first["snapshot_id"] == f"SNAP-{day}-001"
    assert second["snapshot_id"] == f"SNAP-{day}-002"
    assert first["files"] == len([p for p in root.rglob("*") if p.is_file()])
    conf.write_text("PermitRootLogin yes\n")
    conf.chmod(0o666)
    (root / "etc/extra.conf").write_text("new\n")
    preview = engine.restore_rollback_point(first["snapshot_id"], dry_run=True)
    assert preview["would_restore"] == ["etc/ssh/sshd_config"]
    assert conf.read_text() == "PermitRootLogin yes\n"
    done = engine.restore_rollback_point(first["snapshot_id"].lower())
    assert done["status"] == "restored" and done["written"] == ["etc/ssh/sshd_config"]
    assert done["added_since"] == ["etc/extra.conf"] and done["mismatched"] == []
    assert conf.read_bytes() == original and conf.stat().st_mode & 0o777 != 0o666
    (listed, *_) = engine.list_rollback_points("h1")
    assert listed["snapshot_id"] == second["snapshot_id"]
    restored = next(
        p for p in engine.list_rollback_points() if p["snapshot_id"] == first["snapshot_id"]
    )
    assert restored["restored_by"] == "tester"
    actions = [e["action"] for e in engine.audit_export()]
    assert actions.count("rollback_point.created") == 2 and "rollback_point.restored" in actions


def test_bad_input_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    _host(tmp_path, engine)
    with pytest.raises(NotFoundError, match="no asset 'nope'"):
        engine.create_rollback_point("nope")
    with pytest.raises(NotFoundError, match="no rollback point"):
        engine.restore_rollback_point("SNAP-2000-01-01-001")
    snap = engine.create_rollback_point("h1")["snapshot_id"]
    with pytest.raises(InputError, match="holds no etc/none"):
        engine.restore_rollback_point(snap, paths=["etc/none"])
    assert len(engine.list_rollback_points()) == 1


def test_cli_snapshots_and_ask(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    root = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", root, symlinks=True)
    spec = {"assets": [{"id": "db-9", "kind": "database", "connection": f"local:{root}"}]}
    (tmp_path / "assets.yaml").write_text(yaml.safe_dump(spec))
    assert run_cli("assets", "import", str(tmp_path / "assets.yaml"), home=home).returncode == 0
    r = run_cli("ask", "Create rollback point for the database server", "--json", home=home)
    assert r.returncode == 0, r.stderr
    snap = json.loads(r.stdout)["data"]["snapshot"]["snapshot_id"]
    (root / "etc/ssh/sshd_config").write_text("changed\n")
    r = run_cli("snapshots", "restore", snap, "--dry-run", "--json", home=home)
    assert json.loads(r.stdout)["would_restore"] == ["etc/ssh/sshd_config"]
    r = run_cli("snapshots", "restore", snap, home=home)
    assert r.returncode == 0 and "restored" in r.stdout, r.stderr
    assert (root / "etc/ssh/sshd_config").read_text() != "changed\n"
    r = run_cli("ask", "Generate config", "--meta", "config_type=ssh", "--meta", "bad", home=home)
    assert r.returncode == 2 and "not KEY=VALUE" in r.stderr
    r = run_cli("ask", "Make me a sandwich", home=home)
    assert r.returncode == 2 and "I can create a rollback point" in r.stderr
    listed = json.loads(run_cli("snapshots", "list", "--json", home=home).stdout)
    assert [(p["snapshot_id"], p["restored_by"]) for p in listed] == [(snap, "cli-tester")]


def test_session_context_on_both_backends(engine: Engine) -> None:
    from jupiter.copilot import session

    db = engine.db
    assert session.load(db, "s1", "ana") == {}
    session.save(db, "s1", "ana", {"asset": "db-01", "ignored": "x"})
    session.save(db, "s1", "ana", {"remediation": "REM-2", "asset": None})
    session.save(db, "s1", "bob", {"asset": "web-01"})
    session.save(db, None, "ana", {"asset": "nowhere"})  # no session: nothing kept
    assert session.load(db, "s1", "ana") == {"asset": "db-01", "remediation": "REM-2"}
    assert session.load(db, "s1", "bob") == {"asset": "web-01"}
    assert session.load(db, None, "ana") == {}
