"""``jupiter worker``: run due work (schedules, waiting deploys, bakes,
resumptions) in rounds until stopped, or one round with ``--once``."""

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
) -> None:
    """Run what is due, round after round. SIGTERM or Ctrl-C stops it after
    the round in progress. With --once, exit 1 if a source failed."""
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
