"""``jupiter catalog``: what Jupiter can fix, from the fix catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state


def catalog(
    framework: Annotated[
        str | None,
        typer.Option(help="terraform, cloudformation, kubernetes or dockerfile."),
    ] = None,
    fix_class: Annotated[
        str | None, typer.Option("--class", help="safe, risk or needs_manual.")
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print README's table of fixes.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the fixes Jupiter knows: rule ids, resources, attribute, class."""
    from jupiter.catalog import load_catalog, markdown_table

    cat = load_catalog()
    entries = cat.select(framework, fix_class)
    if json:
        state.emit_json(
            {
                "entries": [e.to_json() for e in entries],
                "coverage": cat.coverage("checkov"),
            }
        )
        return
    if markdown:
        typer.echo(markdown_table(entries), nl=False)
        return
    from rich.table import Table

    table = Table("id", "framework", "class", "checks", "resources", "path")
    for e in entries:
        table.add_row(
            e.id,
            e.framework + (f"/{e.provider}" if e.provider else ""),
            e.fix_class,
            ", ".join(e.rule_ids()),
            ", ".join(e.resources),
            e.path or "",
        )
    state.console().print(table)
    cov = cat.coverage("checkov")
    state.console().print(
        f"{len(entries)} entries; Checkov ids covered: {cov['rule_ids']} "
        f"({cov['fixable']} fixable, {cov['by_class']['needs_manual']} need a person)"
    )
