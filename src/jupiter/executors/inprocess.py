"""The default executor: the batch's targets on a bounded thread pool in
the process that drives the remediation."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from jupiter.executors.work import TargetWork, execute, recorded_outcomes

if TYPE_CHECKING:
    from jupiter.remediations.context import Ctx
    from jupiter.remediations.targets import Outcome


class InProcessExecutor:
    name = "inprocess"

    def deploy(self, ctx: Ctx, work: list[TargetWork], concurrency: int) -> list[Outcome]:
        if len(work) <= 1:
            done = [execute(ctx, w) for w in work]
        else:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(work)))) as pool:
                # Each in a copy of this context: the remediation's shared SSH
                # connections (targets.factory.pooled) live in a context variable.
                futures = [
                    pool.submit(contextvars.copy_context().run, execute, ctx, w) for w in work
                ]
                done = [f.result() for f in futures]
        out: list[Outcome] = []
        missing = [w for w, d in zip(work, done, strict=True) if d.outcome is None]
        recorded = recorded_outcomes(ctx.db, missing)
        for w, d in zip(work, done, strict=True):
            outcome = d.outcome or recorded.get(w.target_id)
            if outcome is None:
                from jupiter.remediations.targets import Outcome

                outcome = Outcome(w.asset, False, f"{w.stage}: not deployed: {d.reason}")
            out.append(outcome)
        return out
