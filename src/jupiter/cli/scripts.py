"""``jupiter scripts``: a team's own remediation scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

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
