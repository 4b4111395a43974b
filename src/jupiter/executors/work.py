"""One target's share of a deploy batch, and the one way to execute it.

A :class:`TargetWork` is what travels (a thread argument, a Celery message):
versioned ids and parameters, never the plan or a secret. Executing it
reloads the remediation, the target row and its sealed plan from the
database, then checks, in order, before anything is applied:

1. the remediation is still under way (an ended one is left alone) and
   someone drives it: its lease is held and not expired (work a dead
   driver sent is left to the next driver, which sends it again);
2. the target has no outcome recorded for this dispatch yet (a timeline
   ``deploy`` event newer than ``mark``) — a redelivered message whose work
   was finished, by this worker or one that was killed before its ack,
   returns that outcome and applies nothing;
3. no other copy of the item runs — in this process, or in a live process
   holding the target's fix run (a broker may redeliver a message while its
   first copy still runs): the copy waits until that one recorded the
   outcome (then it is done) or died (then it takes over);

and :func:`jupiter.remediations.targets.deploy_target` then recovers a
killed run's half-applied step, skips the steps whose recorded outcome is
``verified``, and applies the rest under the target's lease and lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from jupiter.errors import InputError, JupiterError
from jupiter.states import ENDED_REMEDIATION, TargetState
from jupiter.store.tables import RemediationEventRow, utcnow

if TYPE_CHECKING:
    from jupiter.remediations.context import Ctx
    from jupiter.remediations.targets import Outcome
    from jupiter.store.db import Database

VERSION = 1
T = TargetState
_ENDED = {s.value for s in ENDED_REMEDIATION}
_LEFT_ALONE = {T.ROLLING_BACK.value, T.ROLLED_BACK.value, T.SKIPPED.value}


@dataclass(frozen=True)
class TargetWork:
    """Deploy ``stage``'s steps (only rules in ``only``, when given) to the
    target row ``target_id`` of remediation ``remediation_id``, as ``actor``.
    ``mark`` is the newest timeline event id when the work was dispatched:
    a ``deploy`` event for this target after it is this work's outcome."""

    remediation_id: int
    target_id: int
    asset: str
    stage: str
    final: bool
    blue_green: bool
    only: tuple[str, ...] | None
    actor: str
    mark: int
    version: int = VERSION

    def to_message(self) -> dict[str, Any]:
        """The JSON a broker carries."""
        out = asdict(self)
        out["only"] = list(self.only) if self.only is not None else None
        return out

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> TargetWork:
        if data.get("version") != VERSION:
            raise InputError(
                f"a work item of version {data.get('version')!r} reached a worker that reads "
                f"version {VERSION}; run the same Jupiter version on every worker"
            )
        try:
            only = data["only"]
            return cls(
                remediation_id=int(data["remediation_id"]),
                target_id=int(data["target_id"]),
                asset=str(data["asset"]),
                stage=str(data["stage"]),
                final=bool(data["final"]),
                blue_green=bool(data["blue_green"]),
                only=tuple(str(r) for r in only) if only is not None else None,
                actor=str(data["actor"]),
                mark=int(data["mark"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"a malformed work item reached the worker ({exc}); dropped") from None


def current_mark(db: Database, remediation_id: int) -> int:
    """The newest timeline event id of the remediation (0 when none)."""
    with db.reading() as s:
        value = s.scalar(
            select(func.max(RemediationEventRow.id)).where(
                RemediationEventRow.remediation_id == remediation_id
            )
        )
    return int(value or 0)


def recorded_outcomes(db: Database, work: list[TargetWork]) -> dict[int, Outcome]:
    """Target row id -> the outcome the database holds for that work, for
    the items that have one."""
    from jupiter.remediations.targets import Outcome

    if not work:
        return {}
    rem_id = work[0].remediation_id
    wanted = {(w.stage, w.asset): w for w in work}
    low = min(w.mark for w in work)
    with db.reading() as s:
        rows = s.scalars(
            select(RemediationEventRow)
            .where(
                RemediationEventRow.remediation_id == rem_id,
                RemediationEventRow.name == "deploy",
                RemediationEventRow.id > low,
            )
            .order_by(RemediationEventRow.id)
        )
        out: dict[int, Outcome] = {}
        for row in rows:
            w = wanted.get((row.stage, row.target or ""))
            if w is None or row.id <= w.mark or w.target_id in out:
                continue
            detail = row.detail or {}
            run = detail.get("run")
            out[w.target_id] = Outcome(
                w.asset,
                row.status == "ok",
                str(detail.get("detail") or row.status),
                run if isinstance(run, int) else None,
                float(row.duration or 0.0),
            )
    return out


_POLL = 0.5
_inflight: set[tuple[int, int]] = set()
_inflight_lock = threading.Lock()


@contextmanager
def _claim(work: TargetWork) -> Iterator[bool]:
    key = (work.remediation_id, work.target_id)
    with _inflight_lock:
        mine = key not in _inflight
        _inflight.add(key)
    try:
        yield mine
    finally:
        if mine:
            with _inflight_lock:
                _inflight.discard(key)


@dataclass
class Executed:
    """What executing a work item did: ``applied`` (deploy_target ran),
    ``done`` (an outcome was already recorded), ``busy`` (another copy runs
    in this process) or ``skipped`` (the remediation or target moved on)."""

    status: str
    outcome: Outcome | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason}
        if self.outcome is not None:
            o = self.outcome
            out["outcome"] = {"asset": o.asset, "ok": o.ok, "detail": o.detail, "run": o.run}
        return out


def execute(ctx: Ctx, work: TargetWork, *, wait: float = 0.0) -> Executed:
    """Execute one work item at most once (see the module's docstring).

    While another copy of it runs (in this process, or in a live process
    holding the target's run), wait up to ``wait`` seconds for that copy to
    record the outcome or to die, then look again; ``busy`` when it still
    runs. A broker redelivers a message that waited too long, so a copy
    must not be acknowledged as done while the work may yet be lost: a
    Celery task waits for as long as the other copy lives."""
    deadline = time.monotonic() + wait
    while True:
        with _claim(work) as mine:
            if mine:
                result = _execute_claimed(ctx, work)
                if result.status != "busy":
                    return result
            else:
                result = Executed("busy", reason="another copy of this work runs in this process")
        if time.monotonic() >= deadline:
            return result
        time.sleep(_POLL)


def _execute_claimed(ctx: Ctx, work: TargetWork) -> Executed:
    from jupiter.remediations.targets import deploy_target
    from jupiter.store.tables import RemediationTargetRow

    rem = ctx.rem()
    if rem.status in _ENDED:
        return Executed("skipped", reason=f"{ctx.label} is {rem.status}")
    if rem.lease_holder is None or (rem.expires_at is not None and rem.expires_at < utcnow()):
        return Executed(
            "skipped",
            reason=f"nobody drives {ctx.label} now (its lease is free or expired); whoever "
            "drives it next sends the work again",
        )
    done = recorded_outcomes(ctx.db, [work]).get(work.target_id)
    if done is not None:
        return Executed("done", done, "the outcome was already recorded")
    with ctx.db.reading() as s:
        trow = s.get(RemediationTargetRow, work.target_id)
        if trow is None or trow.remediation_id != work.remediation_id:
            return Executed("skipped", reason=f"{ctx.label} has no target row {work.target_id}")
        if trow.status in _LEFT_ALONE:
            return Executed("skipped", reason=f"target {trow.asset_id} is {trow.status}")
        steps = ctx.steps(trow)
    if work.only is not None:
        steps = [st for st in steps if st.rule_id in work.only]
    holder = _live_run_holder(ctx, work.asset)
    if holder is not None:
        return Executed("busy", reason=holder)
    try:
        outcome = deploy_target(
            ctx,
            work.target_id,
            steps,
            work.stage,
            final=work.final,
            blue_green=work.blue_green,
        )
    except JupiterError as exc:
        # Recorded, so the driver waiting on the database learns it.
        return Executed("applied", record_failure(ctx, work, f"{work.stage}: {exc}"))
    except Exception as exc:
        # A bug: still recorded (the driver must not wait for an hour), then raised.
        from jupiter.redact import redact_text

        why = f"{work.stage}: internal error: {type(exc).__name__}: {redact_text(str(exc))}"
        record_failure(ctx, work, why)
        raise
    return Executed("applied", outcome)


def _live_run_holder(ctx: Ctx, asset: str) -> str | None:
    """Why not to start: a fix run of this remediation on ``asset`` is still
    ``running`` in a live process (another copy of this work); None when
    there is none (or only runs a killed process left, which deploy_target
    recovers; a run of this process is covered by the in-flight claim)."""
    from jupiter.rollbacks import _refuse_if_alive
    from jupiter.states import RunState

    with ctx.db.reading() as s:
        running = [r for r in ctx.runs_of(s, asset) if r.status == RunState.RUNNING.value]
    for run in running:
        try:
            _refuse_if_alive(run)
        except InputError as exc:
            return str(exc)
    return None


def record_failure(ctx: Ctx, work: TargetWork, why: str) -> Outcome:
    """Record ``why`` as this work's outcome: the target ``failed`` (unless
    it is past that) and its timeline ``deploy`` event."""
    from jupiter.remediations.targets import Outcome

    with ctx.db.transaction() as s:
        trow = ctx.target(s, work.target_id)
        if trow.status in (T.PENDING.value, T.DEPLOYING.value):
            ctx.move_target(s, trow, T.FAILED, detail=why)
        ctx.event(
            work.stage,
            "deploy",
            "failed",
            target=work.asset,
            detail={"run": None, "detail": why},
            s=s,
        )
    return Outcome(work.asset, False, why)
