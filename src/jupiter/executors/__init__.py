"""Where a deploy batch's per-target work runs: one interface, two
implementations (docs/scale-out.md).

* ``inprocess`` (the default): a bounded thread pool in the process that
  drives the remediation.
* ``celery`` (``JUPITER_EXECUTOR=celery`` and ``JUPITER_BROKER_URL``): one
  task per target on Jupiter's queue, executed by ``jupiter worker
  --executor celery`` processes on any machine sharing the database.

Either way a work item is :class:`TargetWork` — ids and parameters, never a
plan or a secret — and whoever executes it reloads everything from the
database. The outcome is what the database records (the target row and its
timeline event), not what a thread or a broker returns, so a redelivered
message finds the work done and does nothing (:mod:`jupiter.executors.work`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from jupiter.errors import InputError
from jupiter.executors.work import TargetWork

if TYPE_CHECKING:
    from jupiter.remediations.context import Ctx
    from jupiter.remediations.targets import Outcome

NAMES = ("inprocess", "celery")


class Executor(Protocol):
    """Runs the per-target work of one deploy batch and returns each
    target's outcome (as recorded in the database), in the order given."""

    name: str

    def deploy(self, ctx: Ctx, work: list[TargetWork], concurrency: int) -> list[Outcome]: ...


def configured_name(name: str | None = None) -> str:
    """``name``, else ``JUPITER_EXECUTOR``, else ``inprocess``; checked."""
    chosen = (name or os.environ.get("JUPITER_EXECUTOR") or "inprocess").strip().lower()
    if chosen not in NAMES:
        raise InputError(
            f"executor {chosen!r} is not one of {', '.join(NAMES)}; set JUPITER_EXECUTOR "
            "to inprocess (the default) or celery"
        )
    return chosen


def executor_for(name: str | None = None) -> Executor:
    """The executor ``name`` (or ``JUPITER_EXECUTOR``) selects."""
    if configured_name(name) == "celery":
        from jupiter.executors.celery_exec import CeleryExecutor

        return CeleryExecutor()
    from jupiter.executors.inprocess import InProcessExecutor

    return InProcessExecutor()


__all__ = ["NAMES", "Executor", "TargetWork", "configured_name", "executor_for"]
