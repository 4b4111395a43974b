"""Deploying one target, and rolling one back — each through the fix
runs' one path: a :class:`~jupiter.runs.RunExecutor` run under the
target's lock with the reviewed plans, and :meth:`Engine.rollback` of those
runs (restore from their snapshots, proven by hashes)."""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from jupiter import compliance
from jupiter.errors import InputError, JupiterError, UnreachableError
from jupiter.faults import checkpoint
from jupiter.remediations.context import Ctx
from jupiter.remediations.planning import StepPlan, candidates
from jupiter.remediations.slots import deploy_idle, files, switch_back
from jupiter.states import RunState, TargetState
from jupiter.store.tables import RemediationTargetRow
from jupiter.targets.base import Target
from jupiter.targets.factory import open_target

T = TargetState
LOCK_TIMEOUT = 30.0
_DONE = ("verified", "already_fixed")


@dataclass
class Outcome:
    asset: str
    ok: bool
    detail: str
    run: int | None = None
    seconds: float = 0.0
    unreachable: bool = False


def failure(asset: str, stage: str, exc: JupiterError, run: int | None = None) -> Outcome:
    """The outcome of a target that raised ``exc``; a host that accepted no
    connection is reported ``unreachable`` (it still counts as failed)."""
    if isinstance(exc, UnreachableError):
        return Outcome(asset, False, f"unreachable during {stage}: {exc}", run, unreachable=True)
    return Outcome(asset, False, f"{stage}: could not deploy: {exc}", run)


def _recover_dead_runs(ctx: Ctx, asset: str) -> None:
    """A run of ours left ``running`` by a process that died: put back what
    it was in the middle of applying (``Engine.recover``)."""
    with ctx.db.reading() as s:
        dead = [r.id for r in ctx.runs_of(s, asset) if r.status == RunState.RUNNING.value]
    for run_id in dead:
        ctx.engine.recover(run_id, lock_timeout=LOCK_TIMEOUT)


def done_steps(ctx: Ctx, asset: str) -> set[tuple[int | None, str]]:
    """(finding, rule) of the steps earlier runs of this remediation
    already applied and verified on ``asset`` (and did not roll back)."""
    from sqlalchemy import select

    from jupiter.store.tables import RunStepRow

    with ctx.db.reading() as s:
        runs = [r.id for r in ctx.runs_of(s, asset) if r.status != RunState.ROLLED_BACK.value]
        if not runs:
            return set()
        rows = s.scalars(
            select(RunStepRow).where(RunStepRow.run_id.in_(runs), RunStepRow.status.in_(_DONE))
        )
        return {(r.finding_id, r.rule_id) for r in rows}


def deploy_target(
    ctx: Ctx,
    tid: int,
    steps: list[StepPlan],
    stage: str,
    *,
    final: bool = True,
    blue_green: bool = False,
) -> Outcome:
    """Apply ``steps`` (those not applied yet) to one target; the target
    row says ``deploying`` (committed) before anything is written. With
    ``blue_green`` the idle slot is fixed and the link switched to it."""
    started = time.monotonic()
    with ctx.db.transaction() as s:
        trow = ctx.target(s, tid)
        asset, connection = trow.asset_id, trow.connection
        # Unreachable when planned or when the rollback point was taken:
        # nothing is changed there (it counts as failed toward max_fail).
        no_snapshot = unreachable(trow)
        if trow.status == T.PENDING.value and not no_snapshot:
            ctx.move_target(s, trow, T.DEPLOYING, detail=f"{stage}: deploying")
    checkpoint("deploy.before_apply")
    if no_snapshot:
        outcome = Outcome(
            asset,
            False,
            f"unreachable before {stage} (when planned or snapshotted); not deployed",
            unreachable=True,
        )
    elif blue_green:
        _recover_dead_runs(ctx, asset)
        outcome = _blue_green(ctx, tid, asset, connection, steps, stage)
    else:
        _recover_dead_runs(ctx, asset)
        done = done_steps(ctx, asset)
        todo = [st for st in steps if (st.finding_id, st.rule_id) not in done]
        outcome = Outcome(asset, True, "already applied", None)
        if todo:
            outcome = _apply(ctx, tid, asset, connection, todo, stage)
    outcome.seconds = round(time.monotonic() - started, 3)
    with ctx.db.transaction() as s:
        trow = ctx.target(s, tid)
        if outcome.run is not None:
            # Controls on the new state, as a plain `jupiter fix` records them.
            compliance.evaluate(s, asset, outcome.run)
        if not outcome.ok:
            facts: dict[str, Any] = {"run": outcome.run}
            if outcome.unreachable:
                facts["unreachable"] = True
            ctx.move_target(s, trow, T.FAILED, detail=outcome.detail, facts=facts)
        elif final:
            ctx.move_target(s, trow, T.DEPLOYED, detail=outcome.detail, facts={"run": outcome.run})
        else:
            trow.detail = outcome.detail
        ctx.event(
            stage,
            "deploy",
            "ok" if outcome.ok else ("unreachable" if outcome.unreachable else "failed"),
            target=asset,
            started=started,
            detail={"run": outcome.run, "detail": outcome.detail},
            s=s,
        )
    checkpoint("deploy.after_target")
    return outcome


def unreachable(trow: RemediationTargetRow) -> bool:
    """Whether the target failed because its host could not be reached."""
    return trow.status == T.FAILED.value and (trow.detail or "").startswith("unreachable")


def _blue_green(
    ctx: Ctx, tid: int, asset: str, connection: str, steps: list[StepPlan], stage: str
) -> Outcome:
    """Fix the idle slot (a fresh copy of the live one, so every step runs
    there) and switch the link to it; the switch is recorded (intent) first."""
    with ctx.db.reading() as s:
        snap = dict(ctx.target(s, tid).snapshot or {})
    switch = snap.get("switch")
    if switch and live_slot(ctx, asset, connection) == switch["to"]:
        return Outcome(asset, True, f"{stage}: already switched to {switch['to']}")

    def record(info: dict[str, str]) -> None:
        with ctx.db.transaction() as s:
            row = ctx.target(s, tid)
            row.snapshot = {**(row.snapshot or {}), "switch": info}
        checkpoint("deploy.before_switch")

    try:
        outcome, done = deploy_idle(
            ctx.engine,
            asset,
            connection,
            lambda target: _run_on(ctx, tid, asset, target, steps, stage),
            record,
        )
    except UnreachableError as exc:
        return failure(asset, stage, exc)
    except JupiterError as exc:
        return Outcome(asset, False, f"{stage}: blue-green deploy failed: {exc}")
    result: Outcome = outcome
    if done:
        result.detail += f"; switched {done['from']} -> {done['to']}"
    return result


def live_slot(ctx: Ctx, asset: str, connection: str) -> str | None:
    from jupiter.remediations import bridges
    from jupiter.remediations.slots import layout_of

    layout = layout_of(ctx.engine, asset)
    if layout is None:
        return None
    with closing(open_target(connection)) as root:
        live: str = bridges.slots(root, layout).live()
        return live


def _apply(
    ctx: Ctx, tid: int, asset: str, connection: str, todo: list[StepPlan], stage: str
) -> Outcome:
    try:
        with files(ctx.engine, asset, connection) as target:
            return _run_on(ctx, tid, asset, target, todo, stage)
    except JupiterError as exc:
        return failure(asset, stage, exc)


def _run_on(
    ctx: Ctx, tid: int, asset: str, target: Target, todo: list[StepPlan], stage: str
) -> Outcome:
    """One fix run of the reviewed plans on ``target`` under its lock."""
    from jupiter.locks import Holder, TargetLock
    from jupiter.runs import RunExecutor
    from jupiter.snapshots import BlobStore

    chain = candidates(ctx.engine, todo)
    holder = Holder.current("deploy", ctx.actor)
    try:
        with TargetLock(ctx.db, target, holder, timeout=LOCK_TIMEOUT) as lock:
            executor = RunExecutor(
                ctx.db, BlobStore(ctx.engine.workspace.blobs), target, ctx.actor, None, None, lock
            )
            run_id = executor.start(asset, {"remediation": ctx.label, "stage": stage})
            lock.bind_run(run_id)
            with ctx.db.transaction() as s:
                trow = ctx.target(s, tid)
                trow.run_ids = [*trow.run_ids, run_id]
                trow.fix_run_id = run_id
            results = []
            for i, (cand, plan) in enumerate(chain, 1):
                results.append(executor.execute(run_id, i, cand, plan))
                checkpoint("deploy.after_step")
            status = executor.finish(run_id, results)
    except JupiterError as exc:
        return failure(asset, stage, exc)
    bad = [r for r in results if r.status not in _DONE]
    if status == "succeeded" and not bad:
        return Outcome(asset, True, f"{stage}: {len(results)} fix(es) applied and verified", run_id)
    why = "; ".join(f"{r.rule_id}: {r.status}: {r.detail}" for r in bad) or status
    return Outcome(asset, False, f"{stage}: {why}", run_id)


def rollback_target(
    ctx: Ctx, tid: int, paths: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Roll back what this remediation changed on one target (all of it, or
    only ``paths``), run by run, newest first, proven by hashes; then compare
    with the rollback point the snapshot stage recorded."""
    from jupiter.snapshots import ManifestEntry, verify_restored

    started = time.monotonic()
    with ctx.db.transaction() as s:
        trow = ctx.target(s, tid)
        asset, connection = trow.asset_id, trow.connection
        if paths is None and trow.status != T.ROLLING_BACK.value:
            ctx.move_target(s, trow, T.ROLLING_BACK, detail="rolling back")
    checkpoint("rollback.before_target")
    _recover_dead_runs(ctx, asset)
    with ctx.db.reading() as s:
        runs = [(r.id, r.status) for r in ctx.runs_of(s, asset)]
        snapshot = ctx.target(s, tid).snapshot
    restored: list[str] = []
    rollback_runs: list[int] = []
    errors: list[str] = []
    switch = (snapshot or {}).get("switch")
    if switch:
        # Blue-green: the old slot was never touched; point the link back at it.
        if paths is not None:
            errors.append("a blue-green target is rolled back whole (the link switched back)")
        elif switch_back(ctx.engine, asset, connection, switch):
            restored.append(f"{switch['to']} -> {switch['from']}")
        runs = []
    for run_id, status in reversed(runs):
        if status == RunState.ROLLED_BACK.value:
            continue
        try:
            mine = _paths_of_run(ctx, run_id)
            wanted = None if paths is None else [p for p in paths if p in mine]
            if wanted == []:
                continue
            out = ctx.engine.rollback(run_id, paths=wanted, force=force)
        except InputError as exc:
            if "changed nothing" in str(exc):
                continue
            errors.append(f"run {run_id}: {exc}")
            continue
        except JupiterError as exc:
            errors.append(f"run {run_id}: {exc}")
            continue
        rollback_runs.append(out["rollback_run"])
        restored.extend(out["restored"])
        if not out["verified"]:
            errors.append(f"run {run_id}: mismatch on {', '.join(out['mismatches'])}")
    mismatches: list[str] = []
    if snapshot and not errors:
        entries = [ManifestEntry.from_dict(e) for e in snapshot["entries"]]
        if paths is not None:
            entries = [e for e in entries if e.path in paths]
        with files(ctx.engine, asset, connection) as target:
            mismatches = verify_restored(target, entries)
    ok = not errors and not mismatches
    seconds = round(time.monotonic() - started, 3)
    proof: dict[str, Any] = {
        "restored": sorted(set(restored)),
        "rollback_runs": rollback_runs,
        "mismatches": mismatches,
        "errors": errors,
        "seconds": seconds,
    }
    with ctx.db.transaction() as s:
        trow = ctx.target(s, tid)
        if rollback_runs:
            trow.rollback_run_id = rollback_runs[-1]
        if paths is None:
            if ok:
                detail = "rolled back; matches the rollback point (verified by hash)"
                ctx.move_target(s, trow, T.ROLLED_BACK, detail=detail, facts=proof)
            else:
                detail = "rollback FAILED: " + "; ".join(errors or [f"mismatch {mismatches}"])
                ctx.move_target(s, trow, T.FAILED, detail=detail, facts=proof)
        else:
            done = ", ".join(sorted(set(restored))) or "nothing"
            trow.detail = f"partly rolled back: {done}"
        ctx.event(
            "rollback",
            "rollback",
            "ok" if ok else "failed",
            target=asset,
            started=started,
            detail=proof,
            s=s,
        )
    checkpoint("rollback.after_target")
    return {"asset": asset, "ok": ok, **proof}


def _paths_of_run(ctx: Ctx, run_id: int) -> set[str]:
    from jupiter.run_manifest import rollback_entries

    with ctx.db.reading() as s:
        try:
            return set(rollback_entries(s, run_id).before)
        except JupiterError:
            return set()


def changed(trow: RemediationTargetRow) -> bool:
    """Whether the remediation may have changed this target."""
    return trow.status in (
        T.DEPLOYING.value,
        T.DEPLOYED.value,
        T.FAILED.value,
        T.ROLLING_BACK.value,
    )
