"""``jupiter init``, ``jupiter ingest`` and ``jupiter findings``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def init(json: JsonOpt = False) -> None:
    """Create the workspace and its database (idempotent)."""
    result = state.engine().init()
    if json:
        state.emit_json(result)
        return
    verb = "created" if result["created"] else "already initialised:"
    state.console().print(f"workspace {verb} {result['home']}")


def ingest(
    files: Annotated[list[Path], typer.Argument(help="Report files.")],
    asset: Annotated[
        str | None, typer.Option("--asset", help="Asset the reports are about.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto, sarif, bandit, checkov, trivy, pip-audit, osv or seed.",
        ),
    ] = "auto",
    strict_assets: Annotated[
        bool,
        typer.Option("--strict-assets", help="Refuse reports naming unregistered assets."),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Ingest scanner reports in one transaction: all files land, or none."""
    from jupiter.ingest import FORMATS

    if fmt != "auto" and fmt not in FORMATS:
        from jupiter.errors import InputError

        raise InputError(f"unknown format {fmt!r}; use auto or one of: {', '.join(FORMATS)}")
    for path in files:
        if not path.is_file():
            from jupiter.errors import InputError

            raise InputError(f"report {path} does not exist or is not a file")
    eng = state.engine()
    if json:
        report = eng.ingest(files, asset=asset, fmt=fmt, strict_assets=strict_assets)
        state.emit_json(report.to_json())
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )

    err = state.console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        tasks: dict[Path, TaskID] = {}

        def on_progress(path: Path, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = bar.add_task(path.name, total=total)
            bar.update(tasks[path], completed=done)

        report = eng.ingest(
            files, asset=asset, fmt=fmt, strict_assets=strict_assets, progress=on_progress
        )
    out = state.console()
    s = report.stats
    out.print(
        f"ingested {s.results} results from {len(report.files)} file(s): "
        f"{s.new} new findings, {s.seen_again} seen again, {s.new_sources} new sources"
    )
    for a in s.unregistered_assets:
        out.print(
            f"[yellow]note:[/] asset {a!r} was not registered; created it as unregistered "
            "(import it with `jupiter assets import` to set its criticality)"
        )


@app.command("list")
def list_(
    asset: Annotated[str | None, typer.Option(help="Only this asset.")] = None,
    status: Annotated[str | None, typer.Option(help="open, fixed, verified, ...")] = None,
    severity: Annotated[str | None, typer.Option(help="critical, high, ...")] = None,
    category: Annotated[str | None, typer.Option(help="dependency, config.ssh, ...")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    json: JsonOpt = False,
) -> None:
    """List findings, highest priority first."""
    rows = state.engine().list_findings(
        asset=asset, status=status, severity=severity, category=category, limit=limit
    )
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table(
        "id", "prio", "severity", "asset", "rule", "title", "location", "sources", "status"
    )
    colours = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
    for f in rows:
        loc = f["location"]
        where = loc["path"] or ""
        if loc["start_line"]:
            where += f":{loc['start_line']}"
        if loc["package"]:
            where = f"{loc['package']} {loc['version'] or ''}".strip() + (
                f" ({where})" if where else ""
            )
        sev = f["severity"]
        table.add_row(
            str(f["id"]),
            f"{f['priority']:.1f}",
            f"[{colours.get(sev, '')}]{sev}[/]",
            f["asset"],
            f["rule_id"],
            f["title"],
            where,
            ",".join(sorted({s["scanner"] for s in f["sources"]})),
            f["status"],
        )
    state.console().print(table)
    if not rows:
        state.console().print("no findings match")


@app.command("show")
def show(
    finding: Annotated[str, typer.Argument(help="Finding id or fingerprint prefix.")],
    json: JsonOpt = False,
) -> None:
    """Show one finding with all its sources."""
    data = state.engine().get_finding(finding)
    if json:
        state.emit_json(data)
        return
    out = state.console()
    for key in (
        "id",
        "fingerprint",
        "asset",
        "rule_id",
        "category",
        "title",
        "severity",
        "cvss_score",
        "cvss_vector",
        "aliases",
        "cwe",
        "fixed_versions",
        "location",
        "evidence",
        "status",
        "priority",
        "first_seen",
        "last_seen",
        "sources",
    ):
        out.print(f"[bold]{key}[/]: {data[key]}")


@app.command("prioritise")
def prioritise(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    json: JsonOpt = False,
) -> None:
    """Set priorities from the policy's `priority` decision (see docs/governance.md)."""
    result = state.engine().prioritise(asset)
    if json:
        state.emit_json(result)
        return
    state.console().print(
        f"{result['changed']} of {result['findings']} finding(s) re-prioritised by policy "
        f"{result['policy_hash'][:12]}"
    )


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the SARIF file here (atomically: all of it or nothing) instead of stdout.",
    ),
]


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="Export format: sarif.")] = "sarif",
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only findings with this status (open, ...).")
    ] = None,
    output: OutputOpt = None,
    fixes: Annotated[
        bool,
        typer.Option(
            "--fixes/--no-fixes",
            help="Include the exact fixes `jupiter fix` would make (reads the assets' files; "
            "needs the analyst or operator role). --no-fixes: findings only.",
        ),
    ] = True,
) -> None:
    """Export findings as SARIF 2.1.0, with each fixable finding's proposed fix
    as exact text replacements (see docs/findings.md). Changes nothing."""
    emit_sarif(fmt, output, lambda: state.engine().export_sarif(asset, status, fixes=fixes))


def emit_sarif(fmt: str, output: Path | None, build: Callable[[], dict[str, Any]]) -> None:
    """Check the format and the output path, build the log, write it whole."""
    from jupiter.errors import InputError
    from jupiter.export.sarif import check_writable, dumps, write_atomically

    if fmt != "sarif":
        raise InputError(f"unknown export format {fmt!r}; use sarif")
    if output is not None:
        check_writable(output)  # before planning anything
    log = build()
    text = dumps(log)
    if output is None:
        sys.stdout.write(text)
        return
    write_atomically(output, text)
    results = sum(len(run["results"]) for run in log["runs"])
    with_fix = sum(1 for run in log["runs"] for r in run["results"] if r.get("fixes"))
    state.console(stderr=True).print(
        f"wrote {output}: {results} result(s) in {len(log['runs'])} run(s), {with_fix} with a fix"
    )
