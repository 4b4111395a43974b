"""Parallel `jupiter ingest` processes into one workspace give the same
findings, sources and assets as ingesting the same reports one after another,
on SQLite and on PostgreSQL (real processes, real databases)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import PG_URL, ROOT, need_service, postgres_problem

from jupiter.engine import Engine
from jupiter.errors import StoreBusy
from jupiter.workspace import Workspace


def _seed(path: Path, start: int, count: int, assets: int) -> None:
    """Seed-format SQL-injection findings spread over unregistered assets."""
    items = [
        {
            "vulnerability_id": f"VULN-{i}",
            "type": "sql_injection",
            "severity": ["low", "medium", "high", "critical"][i % 4],
            "affected_asset": f"asset-{i % assets}",
            "path": f"app/mod{i % 50}.py",
            "line": i,
            "aliases": [f"CVE-2099-{i}"] if i % 3 == 0 else [],
        }
        for i in range(start, start + count)
    ]
    path.write_text(json.dumps(items))


def _sarif(path: Path, driver: str, start: int, count: int, level: str) -> None:
    """SARIF results on asset-0's lines: SQL injection (CWE-89) on the same
    path and line as seed findings, so they merge into them as new sources."""
    results = [
        {
            "ruleId": "B608",
            "level": level,
            "message": {"text": f"Possible SQL injection {i}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"app/mod{i % 50}.py"},
                        "region": {"startLine": i},
                    }
                }
            ],
        }
        for i in range(start, start + count)
    ]
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": driver, "rules": [{"id": "B608"}]}},
                "results": results,
            }
        ],
    }
    path.write_text(json.dumps(doc))


def _reports(folder: Path, scale: int) -> list[list[str]]:
    """Four ingest command lines over overlapping reports."""
    folder.mkdir()
    a, b, c, d = (folder / n for n in ("a.json", "b.json", "c.sarif", "d.sarif"))
    # Overlaps: a/b share half their findings; c/d hit asset-0's findings of
    # a and b (every 5th line is on asset-0) with two other scanners.
    _seed(a, 0, 2 * scale, 5)
    _seed(b, scale, 2 * scale, 5)
    _sarif(c, "scanner-c", 0, 3 * scale, "error")
    _sarif(d, "scanner-d", scale, 3 * scale, "warning")
    return [
        ["ingest", "--json", str(a)],
        ["ingest", "--json", str(b)],
        ["ingest", "--json", "--asset", "asset-0", str(c)],
        ["ingest", "--json", "--asset", "asset-0", str(d)],
    ]


def _env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPITER_")}
    env.update({"JUPITER_HOME": str(home), "JUPITER_DATABASE_URL": url, "JUPITER_ACTOR": "t"})
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "jupiter.cli.app", *args]


def _run_parallel(commands: list[list[str]], env: dict[str, str]) -> list[str]:
    procs = [
        subprocess.Popen(
            _cli(*c), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    errors = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        if proc.returncode != 0:
            errors.append(f"exit {proc.returncode}: {err.strip()} {out[:200]}")
    return errors


def _run_sequential(commands: list[list[str]], home: Path, url: str) -> None:
    """The same ingests one after another, in this process (the baseline)."""
    with Engine(Workspace(home, url), actor="t") as eng:
        for c in commands:
            asset = c[c.index("--asset") + 1] if "--asset" in c else None
            eng.ingest([Path(c[-1])], asset=asset)


def _state(home: Path, url: str) -> dict[str, Any]:
    """Everything ingest decides, minus ids and times."""
    with Engine(Workspace(home, url), actor="t") as eng:
        findings = {
            f["fingerprint"]: (
                f["asset"],
                f["severity"],
                f["priority"],
                tuple(f["aliases"]),
                tuple(sorted((s["scanner"], s["rule_id"]) for s in f["sources"])),
            )
            for f in eng.list_findings()
        }
        verify = eng.audit_verify()
        assert verify.ok, verify.problem
        return {
            "findings": findings,
            "sources": sum(len(v[4]) for v in findings.values()),
            "assets": sorted(str(a["id"]) for a in eng.list_assets()),
            "audit_entries": verify.entries,
        }


@contextmanager
def _pg_schema() -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def _urls(backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if backend == "sqlite":
        yield (f"sqlite:///{tmp_path / 'par.db'}", f"sqlite:///{tmp_path / 'seq.db'}")
        return
    problem = postgres_problem()
    need_service(problem is None, problem or "")
    with _pg_schema() as parallel, _pg_schema() as sequential:
        yield parallel, sequential


def _compare(backend: str, tmp_path: Path, scale: int, rounds: int) -> None:
    commands = _reports(tmp_path / "reports", scale)
    with _urls(backend, tmp_path) as (par_url, seq_url):
        par_home, seq_home = tmp_path / "par", tmp_path / "seq"
        for _ in range(rounds):  # later rounds: every finding exists, only merges race
            errors = _run_parallel(commands, _env(par_home, par_url))
            assert errors == []
            _run_sequential(commands, seq_home, seq_url)
        parallel, sequential = _state(par_home, par_url), _state(seq_home, seq_url)
    assert len(parallel["findings"]) == len(sequential["findings"]) > 0
    assert parallel["sources"] == sequential["sources"]
    assert parallel["assets"] == sequential["assets"] == [f"asset-{i}" for i in range(5)]
    assert parallel["findings"] == sequential["findings"]
    assert parallel["audit_entries"] == sequential["audit_entries"]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_four_parallel_ingests_equal_sequential(backend: str, tmp_path: Path) -> None:
    _compare(backend, tmp_path, scale=300, rounds=1)


@pytest.mark.soak
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_parallel_ingests_equal_sequential_soak(backend: str, tmp_path: Path) -> None:
    _compare(backend, tmp_path, scale=6000, rounds=3)


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_ingest_waits_out_a_writer_then_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer holding SQLite's lock past the busy timeout makes the ingest
    roll back and run again (bounded), not fail."""
    monkeypatch.setattr("jupiter.store.db.BUSY_TIMEOUT_MS", 100)
    report = tmp_path / "a.json"
    _seed(report, 0, 50, 2)
    home = tmp_path / "ws"
    with Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="t") as eng:
        eng.init()
        holder = _hold_write_lock(home / "jupiter.db")
        timer = threading.Timer(0.6, holder.rollback)
        timer.start()
        try:
            report_ = eng.ingest([report])
        finally:
            timer.join()
            holder.close()
        assert report_.stats.new == 50
        assert len(eng.list_findings()) == 50


def test_ingest_gives_up_after_bounded_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jupiter.store.db.BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr("jupiter.store.db.RETRY_ATTEMPTS", 2)
    report = tmp_path / "a.json"
    _seed(report, 0, 10, 1)
    home = tmp_path / "ws"
    with Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="t") as eng:
        eng.init()
        holder = _hold_write_lock(home / "jupiter.db")
        try:
            with pytest.raises(StoreBusy, match="busy with another writer"):
                eng.ingest([report])
        finally:
            holder.close()
        assert eng.list_findings() == []
