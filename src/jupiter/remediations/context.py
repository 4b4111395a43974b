"""What a stage sees while it runs: the remediation's rows, its frozen
workflow, and the few ways it may change them (state moves through
:func:`jupiter.states.transition`, facts, timeline events), each committed
in its own transaction with its audit entry."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import NotFoundError
from jupiter.redact import redact
from jupiter.states import RemediationState, TargetState, transition
from jupiter.store.tables import (
    RemediationEventRow,
    RemediationRow,
    RemediationTargetRow,
    RunRow,
    utcnow,
)
from jupiter.workflows.definitions import FORKS, Workflow

if TYPE_CHECKING:
    from jupiter.engine import Engine
    from jupiter.remediations.planning import StepPlan
    from jupiter.remediations.results import EventInfo
    from jupiter.sealing import WorkspaceKey

M, T = RemediationState, TargetState
A = TypeVar("A")
B = TypeVar("B")


def _concurrency(wf: Workflow) -> int:
    for stage in wf.stages:
        value = getattr(stage, "concurrency", None)
        if isinstance(value, int):
            return value
    return FORKS


def label(rem_id: int) -> str:
    return f"REM-{rem_id}"


def subject(rem_id: int) -> str:
    return f"remediation:{label(rem_id)}"


class Trigger(Exception):
    """Roll the whole remediation back: why, on which target, the numbers."""

    def __init__(
        self, reason: str, target: str | None = None, measured: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason, self.target, self.measured = reason, target, measured or {}


class Stop(Exception):
    """End the remediation without rolling back (nothing changed)."""

    def __init__(self, to: RemediationState, reason: str) -> None:
        super().__init__(reason)
        self.to, self.reason = to, reason


class Ctx:
    """A remediation being driven by this process."""

    def __init__(self, engine: Engine, rem_id: int, actor: str) -> None:
        self.engine, self.rem_id, self.actor = engine, rem_id, actor
        self.db = engine.db
        self.label = label(rem_id)
        self.subject = subject(rem_id)
        row = self.rem()
        self.workflow = Workflow.model_validate(row.definition)
        self._key: WorkspaceKey | None = None
        self._steps: dict[str, list[StepPlan]] = {}
        self.progress: Callable[[EventInfo], None] | None = None
        # The worker may drive with its own "now" (a round's clock, tests).
        self.skew = timedelta(0)
        # Targets at a time (``--forks``); None: the stage's concurrency.
        self.forks: int | None = None

    def now(self) -> datetime:
        return utcnow() + self.skew

    # -- reading ---------------------------------------------------------
    def rem(self, s: Session | None = None) -> RemediationRow:
        if s is not None:
            row = s.get(RemediationRow, self.rem_id, populate_existing=True)
        else:
            with self.db.reading() as r:
                row = r.get(RemediationRow, self.rem_id)
        if row is None:
            raise NotFoundError(f"no remediation {self.label}; see `jupiter remediations list`")
        return row

    def targets(self, role: str | None = "production") -> list[RemediationTargetRow]:
        with self.db.reading() as s:
            q = select(RemediationTargetRow).where(
                RemediationTargetRow.remediation_id == self.rem_id
            )
            if role is not None:
                q = q.where(RemediationTargetRow.role == role)
            return list(s.scalars(q.order_by(RemediationTargetRow.asset_id)))

    def target(self, s: Session, tid: int) -> RemediationTargetRow:
        row = s.get(RemediationTargetRow, tid, populate_existing=True)
        assert row is not None
        return row

    @property
    def key(self) -> WorkspaceKey:
        if self._key is None:
            from jupiter.keys import KeyStore

            self._key = KeyStore(self.engine.workspace.home).workspace_key()
        return self._key

    def steps(self, trow: RemediationTargetRow) -> list[StepPlan]:
        from jupiter.remediations.planning import unseal_steps

        if trow.asset_id not in self._steps:
            self._steps[trow.asset_id] = unseal_steps(
                self.key, self.rem_id, trow.asset_id, trow.plan_sealed
            )
        return self._steps[trow.asset_id]

    def runs_of(self, s: Session, asset: str) -> list[RunRow]:
        """The fix runs this remediation made on ``asset``, oldest first
        (found by their parameters, so a run whose id was never written
        back, because the process died right after starting it, counts too)."""
        rows = s.scalars(
            select(RunRow).where(RunRow.asset_id == asset, RunRow.kind == "fix").order_by(RunRow.id)
        )
        return [r for r in rows if (r.params or {}).get("remediation") == self.label]

    def fan_out(self, fn: Callable[[A], B], items: list[A]) -> list[B]:
        """``fn`` over ``items``, ``--forks`` (else the deploy stage's
        concurrency) at a time, results in order; each call runs in a copy of
        this context, so it shares the remediation's SSH connections."""
        forks = self.forks or _concurrency(self.workflow)
        if forks <= 1 or len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(forks, len(items))) as pool:
            futures = [pool.submit(contextvars.copy_context().run, fn, i) for i in items]
            return [f.result() for f in futures]

    # -- writing ---------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[tuple[Session, RemediationRow]]:
        with self.db.transaction() as s:
            row = self.rem(s)
            yield s, row
            row.updated_at = utcnow()

    def move(
        self, to: RemediationState, facts: dict[str, Any] | None = None, reason: str | None = None
    ) -> None:
        """Move the remediation to ``to`` (nothing when it is there already)."""
        with self.write() as (s, row):
            if row.status == to.value:
                return
            if reason is not None:
                row.reason = reason
            transition(s, row, to, actor=self.actor, subject=self.subject, facts={**(facts or {})})

    def set_facts(self, **facts: Any) -> None:
        with self.write() as (_, row):
            row.facts = {**row.facts, **redact(facts)}

    def set_due(self, when: datetime | None) -> None:
        with self.write() as (_, row):
            row.due_at = when

    def move_target(
        self,
        s: Session,
        trow: RemediationTargetRow,
        to: TargetState,
        detail: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> None:
        if trow.status == to.value:
            return
        if detail is not None:
            trow.detail = detail
        if to is T.DEPLOYING and trow.started_at is None:
            trow.started_at = utcnow()
        if to in (T.DEPLOYED, T.FAILED, T.ROLLED_BACK, T.SKIPPED):
            trow.finished_at = utcnow()
        transition(
            s,
            trow,
            to,
            actor=self.actor,
            subject=f"{self.subject}/target:{trow.asset_id}",
            facts={"detail": trow.detail, **(facts or {})},
        )

    def event(
        self,
        stage: str,
        name: str,
        status: str,
        *,
        target: str | None = None,
        started: float | None = None,
        detail: dict[str, Any] | None = None,
        s: Session | None = None,
    ) -> None:
        """One line of the timeline (with its duration when ``started``)."""
        now = utcnow()
        duration = round(time.monotonic() - started, 3) if started is not None else None
        row = RemediationEventRow(
            remediation_id=self.rem_id,
            stage=stage,
            target=target,
            name=name,
            status=status,
            # Shown by `remediations show` (a test's output, a probe's error):
            # redacted like the audit trail.
            detail=redact(detail or {}),
            started_at=now,
            finished_at=now if duration is not None else None,
            duration=duration,
        )
        if s is not None:
            s.add(row)
        else:
            with self.db.transaction() as w:
                w.add(row)
        if self.progress is not None:
            from jupiter.remediations.results import EventInfo

            # A display must never stop the work.
            with contextlib.suppress(Exception):
                self.progress(
                    EventInfo(stage, name, status, target, now.isoformat(), duration, detail or {})
                )

    def audit(self, action: str, data: dict[str, Any]) -> None:
        with self.db.transaction() as s:
            audit.record(s, self.actor, action, self.subject, data)
