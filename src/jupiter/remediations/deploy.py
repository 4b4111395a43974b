"""The deploy strategies over a remediation's production targets:
rolling batches (``batch``, ``max_fail``, ``pause``), canary (``percent``
first, baked under health probes, then the rest in rolling batches) and
blue-green; the configured executor (a bounded thread pool, or Celery
workers) deploys the targets of one batch.
Batches are computed from the stored targets (sorted by asset), so a
resumed deploy walks the same batches and skips targets already done."""

from __future__ import annotations

import time
from datetime import timedelta

from jupiter.faults import checkpoint
from jupiter.remediations import health
from jupiter.remediations.context import Ctx, Trigger
from jupiter.remediations.targets import Outcome
from jupiter.states import TargetState
from jupiter.store.tables import RemediationTargetRow, utcnow
from jupiter.workflows.definitions import (
    BlueGreen,
    Canary,
    DeployStage,
    MitigateStage,
    Rolling,
    parse_count,
)

T = TargetState


def batches(strategy: Rolling | Canary | BlueGreen, n: int) -> list[int]:
    """Sizes of the batches over ``n`` targets."""
    if n == 0:
        return []
    sizes: list[int] = []
    if isinstance(strategy, Canary):
        first = min(n, max(1, -(-int(strategy.percent * n) // 100)))
        sizes.append(first)
        n -= first
    if isinstance(strategy, BlueGreen):
        size = n
    else:
        size = max(1, parse_count(strategy.batch, max(n, 1), at_least=1))
    while n > 0:
        sizes.append(min(size, n))
        n -= sizes[-1]
    return sizes


def run(ctx: Ctx, stage: DeployStage | MitigateStage) -> None:
    """Deploy ``stage`` over every production target; raise :class:`Trigger`
    when the strategy says the remediation must be rolled back."""
    strategy = stage.strategy
    rows = [r for r in ctx.targets("production") if r.status != T.SKIPPED.value]
    sizes = batches(strategy, len(rows))
    max_fail = 0
    if not isinstance(strategy, BlueGreen):
        max_fail = parse_count(strategy.max_fail, len(rows))
    final = isinstance(stage, DeployStage)
    only = set(stage.only) if isinstance(stage, MitigateStage) else None
    # Batch numbers are stored for the timeline and `show`.
    groups: list[list[RemediationTargetRow]] = []
    at = 0
    for size in sizes:
        groups.append(rows[at : at + size])
        at += size
    with ctx.db.transaction() as s:
        for no, group in enumerate(groups, 1):
            for r in group:
                ctx.target(s, r.id).batch = no
    if health.has_probes(ctx, rows):
        health.baseline(ctx, rows)
    for no, group in enumerate(groups, 1):
        started = time.monotonic()
        todo = [r for r in group if r.status not in (T.DEPLOYED.value, T.ROLLED_BACK.value)]
        outcomes = _deploy_batch(ctx, todo, stage, only, final)
        ctx.event(
            stage.label,
            f"batch {no}",
            "ok" if all(o.ok for o in outcomes) else "failed",
            started=started,
            detail={
                "targets": [o.asset for o in outcomes],
                "failed": _failed(outcomes),
                "unreachable": [o.asset for o in outcomes if o.unreachable],
            },
        )
        failed = _count_failed(ctx)
        if failed > max_fail:
            first = next((o for o in outcomes if not o.ok), None)
            raise Trigger(
                f"deployment failed on {failed} target(s), more than max_fail {max_fail}",
                target=first.asset if first else None,
                measured={"failed": failed, "max_fail": max_fail, "batch": no},
            )
        changed = [r for g in groups[:no] for r in g]
        control = [r for g in groups[no:] for r in g]
        if (isinstance(strategy, Canary) and no == 1) or (
            isinstance(strategy, BlueGreen) and strategy.bake
        ):
            _bake(ctx, stage.label, changed, control, strategy.bake)
        if no < len(groups) and not isinstance(strategy, BlueGreen) and strategy.pause:
            ctx.set_due(utcnow() + timedelta(seconds=strategy.pause))
            time.sleep(strategy.pause)
            ctx.set_due(None)
        checkpoint("deploy.after_batch")


def _deploy_batch(
    ctx: Ctx,
    rows: list[RemediationTargetRow],
    stage: DeployStage | MitigateStage,
    only: set[str] | None,
    final: bool,
) -> list[Outcome]:
    """The batch's targets through the configured executor (in-process
    threads, or Celery workers): ids and parameters go out, the outcomes
    come back from the database."""
    from jupiter.executors import TargetWork, executor_for
    from jupiter.executors.work import current_mark

    if not rows:
        return []
    mark = current_mark(ctx.db, ctx.rem_id)
    work = [
        TargetWork(
            remediation_id=ctx.rem_id,
            target_id=r.id,
            asset=r.asset_id,
            stage=stage.label,
            final=final,
            blue_green=isinstance(stage.strategy, BlueGreen),
            only=tuple(sorted(only)) if only is not None else None,
            actor=ctx.actor,
            mark=mark,
        )
        for r in rows
    ]
    return executor_for().deploy(ctx, work, ctx.forks or stage.concurrency)


def _failed(outcomes: list[Outcome]) -> list[dict[str, str]]:
    return [{"target": o.asset, "detail": o.detail} for o in outcomes if not o.ok]


def _count_failed(ctx: Ctx) -> int:
    return sum(1 for r in ctx.targets("production") if r.status == T.FAILED.value)


def _bake(
    ctx: Ctx,
    stage: str,
    changed: list[RemediationTargetRow],
    control: list[RemediationTargetRow],
    seconds: float,
) -> None:
    """Watch the changed targets for ``seconds`` (health probes, judged
    against the baseline and the unchanged targets)."""
    answers = ctx.rem().facts.get("answers", {})
    if answers.get(f"{stage}:inconclusive", {}).get("continue") is True:
        return  # a person looked and said go on
    if not health.has_probes(ctx, changed):
        if seconds:
            ctx.set_due(utcnow() + timedelta(seconds=seconds))
            time.sleep(seconds)
            ctx.set_due(None)
        return
    started = time.monotonic()
    ctx.set_due(utcnow() + timedelta(seconds=seconds))
    verdict = health.watch(ctx, changed, control, seconds)
    ctx.set_due(None)
    ctx.event(stage, "bake", verdict.status, started=started, detail=verdict.to_json())
    if verdict.status == "fail":
        raise Trigger(verdict.reason, target=verdict.target, measured=verdict.measured)
    if verdict.status == "inconclusive":
        raise Inconclusive(verdict.reason, verdict.to_json())


class Inconclusive(Exception):
    """The judge could not decide within max_bake: a person must."""

    def __init__(self, reason: str, verdict: dict[str, object]) -> None:
        super().__init__(reason)
        self.reason, self.verdict = reason, verdict
