"""The Celery executor: each target of a batch becomes one task on
Jupiter's queue; the driver (which holds the remediation's lease) then
waits for the database to record every target's outcome.

It waits on the database, not on Celery results: a worker killed after
applying and before acknowledging leaves its message to be redelivered,
and the copy that runs next finds the recorded outcome (or recovers the
half-applied step) — so the database row stays the only truth and no
result backend is needed. ``JUPITER_TASK_TIMEOUT`` (seconds, default 3600)
bounds the wait: a target with no outcome by then is recorded ``failed``
("no worker finished it"), which also makes any later copy of its message
a no-op.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from jupiter.errors import InputError, JupiterError
from jupiter.executors.work import TargetWork, record_failure, recorded_outcomes

if TYPE_CHECKING:
    from jupiter.remediations.context import Ctx
    from jupiter.remediations.targets import Outcome

DEFAULT_TIMEOUT = 3600.0
POLL = 0.2


def task_timeout() -> float:
    text = os.environ.get("JUPITER_TASK_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise InputError(f"JUPITER_TASK_TIMEOUT must be a positive number of seconds, not {text!r}")
    return value


class CeleryExecutor:
    name = "celery"

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = task_timeout() if timeout is None else timeout

    def send(self, work: list[TargetWork]) -> None:
        """Put one message per work item on Jupiter's queue."""
        from jupiter.executors import celery_app

        app = celery_app.app()
        queue = celery_app.queue_name()
        try:
            for w in work:
                app.send_task(
                    celery_app.TASK_DEPLOY,
                    kwargs={"work": w.to_message()},
                    queue=queue,
                    routing_key=queue,
                    # Redelivered copies keep this id: a log shows them as one task.
                    task_id=f"rem{w.remediation_id}-t{w.target_id}-m{w.mark}",
                )
        except JupiterError:
            raise
        except Exception as exc:  # noqa: BLE001 - kombu, redis, amqp errors: say which, no password
            from jupiter.redact import redact_text

            raise ServiceUnavailable(
                f"could not queue work on the broker ({type(exc).__name__}: "
                f"{redact_text(str(exc))}); check JUPITER_BROKER_URL and that the broker runs"
            ) from None

    def deploy(self, ctx: Ctx, work: list[TargetWork], concurrency: int) -> list[Outcome]:
        """Queue the batch, then wait for each target's recorded outcome.
        ``concurrency`` is the workers' to bound (``--concurrency``)."""
        if not work:
            return []
        self.send(work)
        deadline = time.monotonic() + self.timeout
        outcomes: dict[int, Outcome] = {}
        while True:
            pending = [w for w in work if w.target_id not in outcomes]
            if not pending:
                break
            found = recorded_outcomes(ctx.db, pending)
            outcomes.update(found)
            _show(ctx, [w for w in pending if w.target_id in found], found)
            if len(outcomes) == len(work):
                break
            if time.monotonic() >= deadline:
                for w in pending:
                    if w.target_id not in outcomes:
                        outcomes[w.target_id] = record_failure(
                            ctx,
                            w,
                            f"{w.stage}: no worker finished it within {self.timeout:g} s; is "
                            "`jupiter worker --executor celery` running on this queue?",
                        )
                break
            time.sleep(POLL)
        return [outcomes[w.target_id] for w in work]


def _show(ctx: Ctx, done: list[TargetWork], found: dict[int, Outcome]) -> None:
    """The workers recorded these targets' timeline events: show them as an
    in-process deploy would (``remediate`` prints each target's line)."""
    if ctx.progress is None:
        return
    import contextlib

    from jupiter.remediations.results import EventInfo
    from jupiter.store.tables import utcnow

    for w in done:
        o = found[w.target_id]
        info = EventInfo(
            w.stage,
            "deploy",
            "ok" if o.ok else "failed",
            w.asset,
            utcnow().isoformat(),
            o.seconds,
            {"run": o.run, "detail": o.detail},
        )
        with contextlib.suppress(Exception):  # a display must never stop the work
            ctx.progress(info)


class ServiceUnavailable(JupiterError):
    """The broker could not be reached; nothing was queued for the rest."""

    exit_code = 1
    retryable = True
