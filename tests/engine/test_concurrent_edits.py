"""Nothing lost when someone edits a file while `jupiter fix` (or a
rollback) changes it: every write is checked against what it was planned
from, right before and right after the atomic replace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.engine import Engine
from tests.concurrency import Appender
from tests.conftest import ROOT

SSHD = "etc/ssh/sshd_config"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    dst = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", dst, symlinks=True)
    return dst


def _fix_while_appending(engine: Engine, host: Path, interval: float) -> tuple[dict, Appender]:
    with Appender(host / SSHD, interval) as appender:
        result = engine.fix(str(host), only=["config.ssh"])
    return result, appender


def _check(result: dict, appender: Appender, host: Path) -> None:
    assert appender.count > 0
    assert appender.missing() == [], "appended lines were lost"
    statuses = {s["rule_id"]: s["status"] for s in result["steps"]}
    # Each step either landed (re-planned on top of the appends) or stopped
    # as a conflict; none was applied blindly or rolled back over the appends.
    assert set(statuses.values()) <= {"verified", "conflict", "needs_manual", "already_fixed"}
    text = (host / SSHD).read_text()
    if statuses["SSHD-ROOT-LOGIN"] == "verified":
        assert "PermitRootLogin no" in text
    else:
        assert "PermitRootLogin no" not in text
    for step in result["steps"]:
        if step["status"] == "conflict":
            assert "other party's edit is intact" in step["detail"]


def test_a_writer_appending_during_fix_loses_no_line(engine: Engine, host: Path) -> None:
    result, appender = _fix_while_appending(engine, host, 0.003)
    _check(result, appender, host)
    assert engine.audit_verify().ok


def test_a_slow_writer_lets_the_fix_land_by_replanning(engine: Engine, host: Path) -> None:
    """An edit now and then: the step re-plans on top of it and lands."""
    result, appender = _fix_while_appending(engine, host, 0.25)
    _check(result, appender, host)
    statuses = {s["rule_id"]: s["status"] for s in result["steps"]}
    assert statuses["SSHD-ROOT-LOGIN"] == "verified"


@pytest.mark.soak
@pytest.mark.parametrize("trial", range(5))
@pytest.mark.parametrize("interval", [0.001, 0.003, 0.02])
def test_soak_appending_during_fix(
    sqlite_engine: Engine, host: Path, trial: int, interval: float
) -> None:
    result, appender = _fix_while_appending(sqlite_engine, host, interval)
    _check(result, appender, host)


def test_rollback_never_overwrites_an_edit_made_after_its_check(engine: Engine, host: Path) -> None:
    original = (host / SSHD).read_bytes()
    run = engine.fix(str(host), only=["config.ssh"])["run"]
    fixed = (host / SSHD).read_bytes()
    assert fixed != original
    # A writer keeps appending during the rollback: either the rollback
    # refuses (drift seen), or stops on the conflict; no appended line is lost.
    from jupiter.errors import ConflictError

    with Appender(host / SSHD, 0.002) as appender, pytest.raises(ConflictError):
        engine.rollback(run, force=True)
    assert appender.missing() == []
    assert (host / SSHD).read_bytes().startswith(fixed)


def test_each_file_change_records_what_it_was_planned_from(engine: Engine, host: Path) -> None:
    from sqlalchemy import select

    from jupiter.store.tables import RunStepRow

    before = (host / SSHD).stat()
    run = engine.fix(str(host), only=["config.ssh"])["run"]
    with engine.db.reading() as s:
        steps = list(s.scalars(select(RunStepRow).where(RunStepRow.run_id == run)))
    writes = [c for st in steps for c in st.plan.get("changes", []) if c["kind"] == "write"]
    assert writes
    for change in writes:
        basis = change["planned_from"]
        assert basis["sha256"] == change["before_sha256"]
        assert isinstance(basis["inode"], int) and isinstance(basis["mtime_ns"], int)
        assert isinstance(basis["size"], int)
    first = next(c for c in writes if c["path"] == SSHD)
    assert first["planned_from"]["inode"] == before.st_ino
    assert first["planned_from"]["size"] == before.st_size
