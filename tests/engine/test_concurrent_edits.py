"""Nothing lost when someone edits a file while `jupiter fix` (or a
rollback) changes it: every write is checked against what it was planned
from, right before and right after the atomic replace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from jupiter.engine import Engine
from jupiter.models import FindingRecord
from jupiter.plans import Plan, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import ValidationResult
from jupiter.targets.base import TargetView
from tests.concurrency import Appender
from tests.conftest import ROOT
from tests.engine import plugins

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


class _KeepsTheRest(plugins.RejectedByValidator):
    """Fixes 'insecure' in place, keeping the rest of the file."""

    name = "test-in-place"
    rule = "T-INPLACE"
    rule_ids = frozenset({rule})
    edits_left = 0

    def plan(self, finding: FindingRecord, view: TargetView, params: BaseModel) -> Plan:
        before = view.read_bytes(plugins.FILE).decode()
        if "insecure" not in before:
            return Plan(remediator=self.name, rule_id=self.rule, title="fixed")
        after = before.replace("insecure", "secure")
        return Plan(
            remediator=self.name,
            rule_id=self.rule,
            title="fix it",
            changes=[
                WriteFile(
                    path=plugins.FILE,
                    content=after,
                    before_sha256=sha256_bytes(before.encode()),
                )
            ],
            diff=unified_diff(plugins.FILE, before, after),
        )

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        # Someone edits the file between the plan and the write.
        if self.edits_left:
            self.edits_left -= 1
            root = Path(candidate.describe().removeprefix("candidate of local:"))
            with (root / plugins.FILE).open("a") as fh:
                fh.write(f"# admin edit {self.edits_left}\n")
        return []


def _in_place_target(engine: Engine, tmp_path: Path, edits: int) -> Path:
    engine.registry.plugins.clear()
    plugin = _KeepsTheRest()
    plugin.edits_left = edits
    engine.registry.add(plugin, source="test")
    root = tmp_path / "t"
    (root / "etc").mkdir(parents=True)
    (root / plugins.FILE).write_text("insecure\n")
    return root


def test_an_edit_between_plan_and_write_is_kept_and_the_fix_replanned(
    engine: Engine, tmp_path: Path
) -> None:
    root = _in_place_target(engine, tmp_path, edits=1)
    (step,) = engine.fix(str(root))["steps"]
    assert step["status"] == "verified", step
    assert "re-planned 1 time(s)" in step["detail"]
    assert (root / plugins.FILE).read_text() == "secure\n# admin edit 0\n"
    assert "step.replanned" in [e["action"] for e in engine.audit_export()]
    assert engine.audit_verify().ok


def test_a_file_that_keeps_changing_stops_the_step_as_a_conflict(
    engine: Engine, tmp_path: Path
) -> None:
    root = _in_place_target(engine, tmp_path, edits=10)
    result = engine.fix(str(root))
    (step,) = result["steps"]
    assert step["status"] == "conflict", step
    assert "stopped after 4 attempt(s)" in step["detail"]
    assert result["status"] == "failed"
    lines = (root / plugins.FILE).read_text().splitlines()
    assert lines == ["insecure", *(f"# admin edit {n}" for n in range(9, 5, -1))]
    (finding,) = engine.list_findings()
    assert finding["status"] == "open"
