"""The one state machine: every state has its row in the table, illegal
moves are refused with nothing written, legal ones write state and audit
together."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.states import (
    TRANSITIONS,
    IllegalTransition,
    RemediationState,
    RunState,
    StepState,
    allowed,
    transition,
)
from jupiter.store.tables import AuditRow, RunRow, utcnow


@pytest.mark.parametrize("kind", list(TRANSITIONS))
def test_every_state_has_its_row_and_moves_stay_inside_the_enum(kind: type) -> None:
    table = TRANSITIONS[kind]
    assert set(table) == set(kind)
    for targets in table.values():
        assert all(isinstance(t, kind) for t in targets)


def test_ended_states_cannot_move_forward_again() -> None:
    assert not allowed(RemediationState, "cancelled", RemediationState.DEPLOYING)
    assert not allowed(RemediationState, "rolled_back", RemediationState.COMPLETED)
    assert not allowed(StepState, "verified", StepState.APPLYING)
    assert not allowed(RunState, "succeeded", RunState.RUNNING)
    assert not allowed(RunState, "no-such-state", RunState.FAILED)
    assert allowed(RemediationState, "completed", RemediationState.ROLLED_BACK)


def _run(engine: Engine) -> int:
    with engine.db.transaction() as s:
        row = RunRow(
            kind="fix",
            status=RunState.RUNNING,
            asset_id=None,
            target="local:/x",
            actor="t",
            params={},
            summary={},
            rollback_of=None,
            started_at=utcnow(),
            finished_at=None,
        )
        s.add(row)
        s.flush()
        return row.id


def test_transition_writes_state_and_audit_in_one_transaction(engine: Engine) -> None:
    run_id = _run(engine)
    with engine.db.transaction() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        transition(s, row, RunState.SUCCEEDED, actor="ana", subject=f"run:{run_id}", facts={"n": 1})
    with engine.db.reading() as s:
        row = s.get(RunRow, run_id)
        assert row is not None and row.status == "succeeded"
        entry = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc())).first()
        assert entry is not None
        assert (entry.action, entry.actor, entry.subject) == (
            "run.succeeded",
            "ana",
            f"run:{run_id}",
        )
        assert '"from":"running"' in entry.data and '"n":1' in entry.data


def test_an_illegal_move_is_refused_and_writes_nothing(engine: Engine) -> None:
    run_id = _run(engine)
    with engine.db.reading() as s:
        before = s.scalar(select(AuditRow.seq).order_by(AuditRow.seq.desc()))
    refused = pytest.raises(IllegalTransition, match="is running; it cannot move to rolled_back")
    with refused, engine.db.transaction() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        transition(s, row, RunState.ROLLED_BACK, actor="ana", subject=f"run:{run_id}")
    with engine.db.reading() as s:
        row = s.get(RunRow, run_id)
        assert row is not None and row.status == "running"
        assert s.scalar(select(AuditRow.seq).order_by(AuditRow.seq.desc())) == before
