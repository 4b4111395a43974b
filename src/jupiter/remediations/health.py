"""Health during a deploy: which probes a target has, a baseline sampled
before anything changes, and looks of the judge during a bake or after the
deploy (see :mod:`jupiter.health`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from jupiter.health.model import HealthConfig, Sample, Verdict
from jupiter.remediations import bridges
from jupiter.store.tables import AssetRow, RemediationTargetRow

if TYPE_CHECKING:
    from jupiter.remediations.context import Ctx


def probes_of(ctx: Ctx, trow: RemediationTargetRow) -> list[Any]:
    from jupiter.store.assets import asset_spec

    with ctx.db.reading() as s:
        row = s.get(AssetRow, trow.asset_id)
        own = asset_spec(row).probes if row is not None else []
    return [*ctx.workflow.health.probes, *own]


def _root(trow: RemediationTargetRow) -> str:
    return trow.connection.partition(":")[2]


def sample(
    ctx: Ctx, rows: list[RemediationTargetRow], rounds: int, interval: float
) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {r.asset_id: [] for r in rows}
    probes = {r.asset_id: probes_of(ctx, r) for r in rows}
    for i in range(rounds):
        for r in rows:
            if probes[r.asset_id]:
                out[r.asset_id].extend(
                    bridges.sample_all(probes[r.asset_id], asset=r.asset_id, root=_root(r))
                )
        if i + 1 < rounds:
            time.sleep(interval)
    return out


def has_probes(ctx: Ctx, rows: list[RemediationTargetRow]) -> bool:
    return any(probes_of(ctx, r) for r in rows)


def to_json(samples: dict[str, list[Sample]]) -> dict[str, list[dict[str, Any]]]:
    return {k: [s.to_json() for s in v] for k, v in samples.items()}


def from_json(data: dict[str, list[dict[str, Any]]]) -> dict[str, list[Sample]]:
    return {k: [Sample(**s) for s in v] for k, v in data.items()}


def baseline(ctx: Ctx, rows: list[RemediationTargetRow]) -> dict[str, list[Sample]]:
    """The baseline, sampled once (before the first change) and kept in facts."""
    stored = ctx.rem().facts.get("baseline")
    if stored is not None:
        return from_json(stored)
    cfg = ctx.workflow.health
    taken = sample(ctx, rows, cfg.baseline_samples, cfg.interval)
    ctx.set_facts(baseline=to_json(taken))
    return taken


def watch(
    ctx: Ctx,
    changed: list[RemediationTargetRow],
    control: list[RemediationTargetRow],
    seconds: float,
    config: HealthConfig | None = None,
) -> Verdict:
    """Look at the changed targets (against the baseline and the unchanged
    ones) every interval for ``seconds``; a 'fail' ends the look at once.
    An inconclusive verdict extends the watch up to ``max_bake``."""
    cfg = config or ctx.workflow.health
    base = baseline(ctx, changed + control)
    judge = bridges.Judging(cfg, [p for r in changed + control for p in probes_of(ctx, r)])
    deadline = time.monotonic() + seconds
    limit = time.monotonic() + max(seconds, cfg.max_bake)
    verdict = Verdict("pass", "no probes")
    seen_changed: dict[str, list[Sample]] = {r.asset_id: [] for r in changed}
    seen_control: dict[str, list[Sample]] = {r.asset_id: [] for r in control}
    while True:
        for key, val in sample(ctx, changed, 1, 0).items():
            seen_changed[key].extend(val)
        for key, val in sample(ctx, control, 1, 0).items():
            seen_control[key].extend(val)
        verdict = judge.look(base, seen_changed, seen_control)
        now = time.monotonic()
        if verdict.status == "fail":
            return verdict
        if now >= deadline and verdict.status == "pass":
            return verdict
        if now >= limit:
            return verdict
        time.sleep(cfg.interval)
