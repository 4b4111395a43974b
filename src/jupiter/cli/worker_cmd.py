"""``jupiter worker``: run due work (schedules, waiting deploys, bakes,
reminders, outbox delivery, resumptions) in rounds until stopped, or one
round with ``--once``; with ``--executor celery``, a Celery worker that
executes deploy work from Jupiter's queue instead (docs/scale-out.md)."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated, Any

import typer

from jupiter.cli import state


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one round, then exit.")] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, help="Seconds between rounds (default 30)."),
    ] = 30.0,
    json: Annotated[
        bool, typer.Option("--json", help="Print each round as one JSON object (a line).")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="celery: be a Celery worker on JUPITER_BROKER_URL's queue (runs deploy work, "
            "schedules nothing); inprocess: run the rounds here with deploys on local threads. "
            "Default: the rounds, with deploys on JUPITER_EXECUTOR.",
        ),
    ] = None,
    pool: Annotated[
        str,
        typer.Option("--pool", help="Celery worker pool: prefork, threads or solo."),
    ] = "prefork",
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, help="Celery worker: targets deployed at once."),
    ] = 2,
    loglevel: Annotated[
        str, typer.Option("--loglevel", help="Celery worker log level (INFO, WARNING, ...).")
    ] = "INFO",
) -> None:
    """Run what is due, round after round. SIGTERM or Ctrl-C stops it after
    the round in progress. With --once, exit 1 if a source failed.

    Run exactly one round loop per installation: it alone schedules bakes,
    reminders and outbox delivery (there is no Celery beat). Start any
    number of `jupiter worker --executor celery` beside it to spread
    deploys over machines."""
    import os

    from jupiter.executors import configured_name

    if executor is not None:
        chosen = configured_name(executor)
        if chosen == "celery":
            _celery_worker(once, pool, concurrency, loglevel)
            return
        # The rounds of this process deploy on local threads.
        os.environ["JUPITER_EXECUTOR"] = chosen
    from jupiter.worker import failed, run_once

    engine = state.engine()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal: do not wait for the round
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            now = datetime.now(UTC)
            result = run_once(engine, now)
            _report(now, result, json)
            if once:
                if failed(result):
                    raise typer.Exit(1)
                return
            if stop.wait(interval):
                return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _celery_worker(once: bool, pool: str, concurrency: int, loglevel: str) -> None:
    from jupiter.errors import InputError
    from jupiter.executors import celery_app

    if once:
        raise InputError("--once runs one round of due work; a Celery worker has no rounds")
    celery_app.broker_url()  # refuse a missing or wrong URL before Celery starts
    engine = state.engine()
    _ = engine.db  # the workspace and its schema exist before the first task
    engine.close()  # each worker process opens its own (a forked pool must not share sockets)
    celery_app.start_worker(pool=pool, concurrency=concurrency, loglevel=loglevel.upper())


def _report(now: datetime, result: dict[str, list[dict[str, Any]]], json: bool) -> None:
    from jupiter.worker import failed

    if json:
        import orjson

        line = {"at": now.isoformat(), "sources": result, "failed": failed(result)}
        typer.echo(orjson.dumps(line).decode())
        return
    out = state.console()
    for name, items in result.items():
        errors = [i["error"] for i in items if i.get("failed")]
        if errors:
            out.print(f"{now:%H:%M:%S} {name}: failed: {errors[0]}", markup=False)
        elif items:
            out.print(f"{now:%H:%M:%S} {name}: {len(items)} done", markup=False)
    if not any(result.values()):
        out.print(f"{now:%H:%M:%S} nothing due", markup=False)
