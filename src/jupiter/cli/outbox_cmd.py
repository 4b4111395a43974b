"""``jupiter outbox``: what integrations are waiting to deliver, and delivery."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or dead.")
    ] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N rows.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Outbox rows, newest first, with their attempts and last error."""
    out = state.engine().outbox_list(status, channel, limit)
    if json:
        state.emit_json(out)
        return
    from rich.table import Table

    table = Table("id", "event", "severity", "channel", "subject", "status", "tries", "last error")
    for r in out["rows"]:
        table.add_row(
            str(r["id"]),
            r["event"],
            r["severity"],
            r["channel"],
            r["subject"],
            r["status"],
            str(r["attempts"]),
            (r["last_error"] or "")[:80],
        )
    console = state.console()
    console.print(table)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(out["counts"].items())) or "empty"
    console.print(f"outbox: {counts}")


@app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Outbox row ids.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Every dead row.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Put dead (or waiting) rows back in line: due now, attempts reset."""
    chosen = state.engine().outbox_retry(ids or [], dead)
    if json:
        state.emit_json({"retried": chosen})
    else:
        state.console().print(f"{len(chosen)} row(s) due again: {chosen}")


@app.command("purge")
def purge(
    status: Annotated[str, typer.Option("--status", help="delivered or dead.")] = "delivered",
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age: 30d, 12h, 2w (default 30d).")
    ] = "30d",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete delivered (or dead) rows older than --older-than."""
    from datetime import timedelta

    from jupiter.errors import InputError

    units = {"d": "days", "h": "hours", "w": "weeks", "m": "minutes"}
    if older_than[-1:] not in units or not older_than[:-1].isdecimal():
        raise InputError(f"--older-than {older_than!r} is not an age like 30d, 12h or 2w")
    age = timedelta(**{units[older_than[-1]]: int(older_than[:-1])})
    n = state.engine().outbox_purge(status, age)
    if json:
        state.emit_json({"purged": n, "status": status})
    else:
        state.console().print(f"purged {n} {status} row(s)")


@app.command("dispatch")
def dispatch(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between idle passes.")
    ] = 5.0,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON line per pass.")] = False,
) -> None:
    """Deliver due rows to their channels (until Ctrl-C, or --once)."""
    from jupiter.integrations.dispatch import PassResult

    console = state.console()

    def report(result: PassResult) -> None:
        if json:
            import orjson

            typer.echo(orjson.dumps(result.to_json()).decode())
        elif result.claimed:
            console.print(
                f"delivered {result.delivered}, retrying {result.retrying}, dead {result.dead}"
            )

    try:
        result = state.engine().outbox_dispatch(once=once, interval=interval, on_pass=report)
    except KeyboardInterrupt:
        return
    if once and not json and not result.claimed:
        console.print("nothing due")


@app.command("channels")
def channels(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The configured channels and routes (never their secrets)."""
    out = state.engine().routing.to_json()
    if json:
        state.emit_json(out)
        return
    console = state.console()
    console.print(f"routing from: {out['source']}")
    for c in out["channels"]:
        console.print(f"  channel {c['name']} ({c['type']}): {', '.join(c['fields'])}")
    for r in out["routes"]:
        console.print(
            f"  route {', '.join(r['events'])} -> {', '.join(r['channels'])} "
            f"(>= {r['min_severity']})"
        )
