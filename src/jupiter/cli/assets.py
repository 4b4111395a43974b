"""``jupiter assets``: import and list assets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="assets.yaml: a list of assets.")],
    json: JsonOpt = False,
) -> None:
    """Create or update assets from a YAML file (all or nothing)."""
    result = state.engine().import_assets(file)
    if json:
        state.emit_json(result)
        return
    state.console().print(
        f"imported {len(result['created'])} new and {len(result['updated'])} updated assets"
    )


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """List assets."""
    rows = state.engine().list_assets()
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table("id", "kind", "env", "crit", "group", "owner", "connection", "registered")
    for a in rows:
        table.add_row(
            str(a["id"]),
            str(a["kind"]),
            str(a["environment"]),
            str(a["criticality"]),
            str(a["group"] or ""),
            str(a["owner"] or ""),
            str(a["connection"] or ""),
            "yes" if a["registered"] else "no (seen in a report)",
        )
    state.console().print(table)
