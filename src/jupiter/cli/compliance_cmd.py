"""``jupiter compliance``: controls per asset, before → after."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)


@app.command("report")
def report(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only this asset group.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pass/fail per control (CIS ids where they correspond), before -> after."""
    rows = state.engine().compliance_report(asset=asset, group=group)
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    for a in rows:
        s = a["summary"]
        table = Table(
            "control",
            "CIS",
            "title",
            "before",
            "after",
            title=f"{a['asset']}: {s['pass']} pass, {s['fail']} fail, {s['excepted']} excepted",
        )
        for c in a["controls"]:
            table.add_row(c["control"], c["cis"] or "", c["title"], c["before"] or "-", c["after"])
        state.console().print(table)
    if not rows:
        state.console().print("no compliance results yet; scan or fix an asset first")
