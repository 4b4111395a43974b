"""Database faults: a PostgreSQL backend terminated in the middle of an
action's transaction (``pg_terminate_backend`` from another connection), and
SQLite's ``database is locked`` while another process holds the write lock.
Each ends as one clear StoreError sentence (or waits and succeeds), never a
half-written state, and the workspace keeps working afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from jupiter.engine import Engine
from jupiter.errors import StoreBusy, StoreError
from jupiter.workspace import Workspace
from tests.conftest import PG_URL, ROOT
from tests.reliability.counts import count

ASSETS = ROOT / "examples" / "assets.yaml"


def terminate_after(engine: Engine, statements: int) -> list[int]:
    """Make the ``statements``-th SQL statement from now on find its backend
    terminated by another connection (what an administrator or a failover
    does). Returns the list the killed pid is appended to."""
    killed: list[int] = []
    seen = {"n": 0}

    def before(conn: Any, cursor: Any, statement: str, *args: object) -> None:
        seen["n"] += 1
        if seen["n"] == statements and not killed:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)

    event.listen(engine.db.engine, "before_cursor_execute", before)
    return killed


@pytest.mark.postgres
@pytest.mark.parametrize("at", [1, 2, 3, 5])
def test_postgres_backend_terminated_mid_transaction(
    pg_schema_url: str, tmp_path: Path, at: int
) -> None:
    home = tmp_path / "home"
    engine = Engine(Workspace(home, pg_schema_url), actor="tester")
    try:
        engine.list_assets()  # migrated, pool warm
        killed = terminate_after(engine, at)
        with pytest.raises(StoreError) as info:
            engine.import_assets(ASSETS)
        assert killed, "the fault was not injected"
        count("faults injected")
        message = str(info.value)
        assert "nothing was written" in message and "\n" not in message, message
        assert info.value.retryable
    finally:
        engine.close()
    engine = Engine(Workspace(home, pg_schema_url), actor="tester")
    try:
        assert engine.list_assets() == [], "a terminated transaction wrote something"
        assert engine.audit_verify().ok
        engine.import_assets(ASSETS)  # the same action, again, works
        assert len(engine.list_assets()) == 3
        assert engine.audit_verify().ok
    finally:
        engine.close()


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_sqlite_locked_by_another_process_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process keeps the write lock past the busy timeout: the
    action fails as StoreBusy (exit 2, retryable) and wrote nothing."""
    monkeypatch.setattr("jupiter.store.db.BUSY_TIMEOUT_MS", 300)
    db_file = tmp_path / "home" / "jupiter.db"
    engine = Engine(Workspace(tmp_path / "home", f"sqlite:///{db_file}"), actor="tester")
    try:
        engine.list_assets()
        engine.db.dispose()  # new connections get the short busy timeout
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db_file), "3"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(StoreBusy) as info:
                engine.import_assets(ASSETS)
            count("faults injected")
            assert "nothing was written" in str(info.value) and info.value.exit_code == 2
        finally:
            holder.communicate(timeout=30)
        assert engine.list_assets() == []
        engine.import_assets(ASSETS)  # the lock is gone: the same action works
        assert len(engine.list_assets()) == 3
        assert engine.audit_verify().ok
    finally:
        engine.close()


WRITER = """
import sys
import subprocess
import sys
from pathlib import Path
from jupiter.engine import Engine
from jupiter.workspace import Workspace
home = Path(sys.argv[1])
eng = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor=sys.argv[2])
for _ in range(int(sys.argv[3])):
    eng.import_assets(Path(sys.argv[4]))
eng.close()
"""


def test_two_sqlite_writer_processes_both_finish_with_an_intact_chain(tmp_path: Path) -> None:
    """Two processes write at once (each action one transaction with an
    audit entry): SQLite's busy wait serialises them, nothing is lost and
    the audit chain stays one unbroken chain."""
    home = tmp_path / "home"
    engine = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="tester")
    engine.list_assets()
    rounds = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), f"writer-{n}", str(rounds), str(ASSETS)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    count("trials", 2 * rounds)
    try:
        report = engine.audit_verify()
        assert report.ok
        entries = [e for e in engine.audit_export() if e["action"] == "assets.imported"]
        assert len(entries) == 2 * rounds
    finally:
        engine.close()
