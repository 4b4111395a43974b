"""The worker: every source runs each round; one failing does not stop the others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jupiter import worker
from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.store.tables import AuditRow
from tests.conftest import ROOT, run_cli


@pytest.fixture
def clean_sources() -> Iterator[list[str]]:
    added: list[str] = []
    yield added
    for name in added:
        worker.unregister_due(name)


def test_a_failing_source_is_recorded_and_the_others_run(
    sqlite_engine: Engine, clean_sources: list[str]
) -> None:
    seen: list[tuple[str, datetime]] = []

    def good(engine: Engine, now: datetime) -> list[dict[str, Any]]:
        seen.append(("good", now))
        return [{"did": "something"}]

    def broken(engine: Engine, now: datetime) -> list[dict[str, Any]]:
        seen.append(("broken", now))
        raise RuntimeError("connection refused: postgres://app:hunter2@db/prod")

    def refused(engine: Engine, now: datetime) -> list[dict[str, Any]]:
        raise InputError("asset 'web-9' has no connection; set one in assets.yaml")

    for name, fn in (("t-a-broken", broken), ("t-b-good", good), ("t-c-refused", refused)):
        worker.register_due(name, fn)
        clean_sources.append(name)
    sqlite_engine.init()
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    result = worker.run_once(sqlite_engine, now)
    assert result["t-b-good"] == [{"did": "something"}]
    assert seen == [("broken", now), ("good", now)]
    broken_error = result["t-a-broken"][0]
    assert broken_error["failed"] is True
    assert broken_error["error"].startswith("RuntimeError: connection refused")
    assert "hunter2" not in broken_error["error"]
    assert result["t-c-refused"] == [
        {"error": "asset 'web-9' has no connection; set one in assets.yaml", "failed": True}
    ]
    assert set(worker.failed(result)) >= {"t-a-broken", "t-c-refused"}
    with sqlite_engine.db.reading() as s:
        entries = list(s.scalars(select(AuditRow).where(AuditRow.action == "worker.source_failed")))
    assert sorted(e.subject for e in entries) == ["worker:t-a-broken", "worker:t-c-refused"]
    assert all("hunter2" not in e.data for e in entries)
    assert sqlite_engine.audit_verify().ok


def test_now_must_be_aware(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        worker.run_once(sqlite_engine, datetime(2026, 12, 5))


def test_once_from_the_command_line(tmp_path: Path) -> None:
    done = run_cli("worker", "--once", "--json", home=tmp_path / "ws")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    round_ = json.loads(line)
    assert round_["failed"] == [] and "at" in round_


def test_sigterm_stops_the_loop_after_the_round(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPITER_")}
    env["JUPITER_HOME"] = str(tmp_path / "ws")
    with subprocess.Popen(
        [sys.executable, "-m", "jupiter.cli.app", "worker", "--interval", "3600", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # the first round is done
            assert json.loads(first)["failed"] == []
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.monotonic() - started < 30
        finally:
            if proc.poll() is None:
                proc.kill()
