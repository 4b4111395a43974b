"""``jupiter schedules``: continuous detection, run by ``jupiter worker``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("add")
def add(
    asset: Annotated[str | None, typer.Option("--asset", help="Scan this asset.")] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Scan every asset of this group.")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="How often: 6h, 90m, 1d12h, 2w.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="A cron expression, e.g. '0 */6 * * *'.")
    ] = None,
    zone: Annotated[str, typer.Option("--zone", help="Time zone of --cron (IANA name).")] = "UTC",
    scan: Annotated[
        bool, typer.Option("--scan", help="Run Jupiter's built-in scan (the default).")
    ] = False,
    ingest_command: Annotated[
        str | None,
        typer.Option(
            "--ingest-command",
            help="Your scanner's command line (split like a shell does, never run by one); "
            "placeholders {asset} {root} {connection} {report}. Its report ({report}, else "
            "stdout) is ingested.",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Report format for --ingest-command (default auto).")
    ] = "auto",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds the scanner may run (default 600).")
    ] = 600.0,
    json: JsonOpt = False,
) -> None:
    """Scan an asset or group on a timer (run by `jupiter worker`)."""
    row = state.engine().schedules.add(
        asset=asset,
        group=group,
        every=every,
        cron=cron,
        zone=zone,
        scan=scan,
        ingest_command=ingest_command,
        fmt=fmt,
        timeout=timeout,
    )
    if json:
        state.emit_json(row)
        return
    state.console().print(f"schedule {row['id']}: {_describe(row)}; next run {row['next_run_at']}")


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """List schedules with their next and last run."""
    rows = state.engine().schedules.list_all()
    if json:
        state.emit_json(rows)
        return
    out = state.console()
    if not rows:
        out.print("no schedules; add one with `jupiter schedules add`")
    for row in rows:
        last = row["last_result"] or {}
        status = (
            f"last {row['last_run_at']}: {row['last_status']}, "
            f"{len(last.get('new_findings', []))} new, {len(last.get('reopened', []))} reopened"
            if row["last_run_at"]
            else "not run yet"
        )
        out.print(f"{row['id']}  {_describe(row)}", markup=False)
        out.print(f"    next {row['next_run_at']}; {status}", markup=False)


@app.command("remove")
def remove(
    schedule: Annotated[int, typer.Argument(help="Schedule id (see `jupiter schedules list`).")],
    json: JsonOpt = False,
) -> None:
    """Remove a schedule."""
    row = state.engine().schedules.remove(schedule)
    if json:
        state.emit_json(row)
        return
    state.console().print(f"removed schedule {row['id']}: {_describe(row)}")


def _describe(row: dict[str, Any]) -> str:
    scope = f"asset {row['asset']}" if row["asset"] else f"group {row['group']}"
    if row["cron"]:
        when = f"cron '{row['cron']}'" + (f" {row['zone']}" if row["zone"] != "UTC" else "")
    else:
        when = f"every {_duration(row['every_seconds'])}"
    what = []
    if row["scan"]:
        what.append("scan")
    if row["ingest_command"]:
        import shlex

        what.append(f"ingest `{shlex.join(row['ingest_command'])}`")
    return f"{' + '.join(what)} {scope}, {when}"


def _duration(seconds: int) -> str:
    out = ""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"
