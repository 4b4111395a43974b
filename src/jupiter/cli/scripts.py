"""``jupiter scripts``: a team's own remediation scripts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from jupiter.cli import state

if TYPE_CHECKING:
    from jupiter.custom.trial import TrialReport

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("add")
def add(
    manifest: Annotated[Path, typer.Argument(help="manifest.yaml naming the script beside it.")],
    json: JsonOpt = False,
) -> None:
    """Register (or replace) a script; it is pinned by its sha256."""
    info = state.engine().register_script(manifest)
    if json:
        state.emit_json(info)
        return
    state.console().print(
        f"registered {info['name']} as remediator {info['remediator']} "
        f"(rules: {', '.join(map(str, info['rule_ids']))})"
    )


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """List registered scripts and whether they are still as registered."""
    rows = state.engine().list_scripts()
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table("name", "remediator", "rules", "paths", "timeout", "status")
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r.get("remediator", "")),
            ", ".join(map(str, r.get("rule_ids", []))),
            ", ".join(map(str, r.get("paths", []))),
            str(r.get("timeout", "")),
            str(r["status"]) + (f": {r['error']}" if r.get("error") else ""),
        )
    state.console().print(table)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Script name.")]) -> None:
    """Unregister a script."""
    state.engine().remove_script(name)
    state.console().print(f"removed {name}")


@app.command("test")
def test(
    manifest: Annotated[Path, typer.Argument(help="manifest.yaml naming the script beside it.")],
    target: Annotated[Path, typer.Option("--target", help="Folder to copy and run the script on.")],
    path: Annotated[
        str | None, typer.Option("--path", help="The finding's path ({finding.path}).")
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="The finding's rule (default: the first).")
    ] = None,
    line: Annotated[
        int | None, typer.Option("--line", help="The finding's line ({finding.start_line}).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Run a script once in its sandbox on a throw-away copy of TARGET and
    report what it changed, what it tried outside its paths, and how long it
    took. Nothing is registered; TARGET itself is never written. Exit 1 when
    the script failed or changed what it did not declare."""
    from jupiter.custom.trial import run_trial

    report = run_trial(state.engine().workspace, manifest, target, path, rule, line)
    if json:
        state.emit_json(report.to_json())
    else:
        _print_trial(report)
    if not report.ok and report.needs_manual is None:
        raise typer.Exit(1)


def _print_trial(report: TrialReport) -> None:
    from jupiter.redact import redact_text

    if report.needs_manual:
        lines = [f"{report.script}: not run: {report.needs_manual}"]
    else:
        status = "timed out" if report.timed_out else f"exit {report.returncode}"
        lines = [
            f"{report.script} on a copy of {report.target}: {status} in {report.duration_s} s",
            f"declared paths: {', '.join(report.declared)}",
            f"changed (declared): {', '.join(report.changed) or 'nothing'}",
            "changed but NOT declared (a fix run rolls this back): "
            + (", ".join(report.undeclared) or "nothing"),
            "refused by the sandbox:" + ("" if report.refused else " nothing"),
            *(f"  {line}" for line in report.refused),
        ]
        if report.verified is not None:
            lines.append(f"verify: {'fixed' if report.verified else 'NOT fixed'}")
        if report.stdout.strip():
            lines += ["output:", report.stdout.rstrip()]
        if report.stderr.strip():
            lines += ["errors:", report.stderr.rstrip()]
    state.console().print(redact_text("\n".join(lines)), markup=False)
