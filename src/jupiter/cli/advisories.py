"""``jupiter advisories``: the offline OSV advisory database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="A directory of OSV JSON records, one record, or an OSV ecosystem zip."
        ),
    ],
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import advisories (all or nothing); `scan` and `fix` match pins against them."""
    report = state.engine().import_advisories(path)
    if json:
        state.emit_json(report)
        return
    state.console().print(
        f"imported {report['records']} advisories for {report['packages']} packages "
        f"({report['withdrawn']} withdrawn ignored)"
    )
