"""``jupiter audit``: verify and export the tamper-evident audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
def verify(
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Walk the hash chain; exit 1 and name the first bad entry if it was tampered with."""
    from jupiter.errors import DatabaseDamaged

    try:
        result = state.engine().audit_verify()
    except DatabaseDamaged as exc:
        # A check that cannot read what it checks has failed: exit 1, not 2.
        message = f"the audit chain cannot be read: {exc.message}"
        if json:
            state.emit_json(
                {"ok": False, "entries": 0, "first_bad_entry": None, "problem": message}
            )
        else:
            state.console(stderr=True).print(f"audit chain UNREADABLE: {message}")
        raise typer.Exit(1) from None
    if json:
        state.emit_json(result.to_json())
    elif result.ok:
        state.console().print(f"audit chain intact: {result.entries} entries verified")
    else:
        state.console(stderr=True).print(f"audit chain BROKEN: {result.problem}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or cef.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Export every audit entry for a SIEM (JSON lines or ArcSight CEF)."""
    import sys

    import orjson

    from jupiter import __version__
    from jupiter.audit import to_cef
    from jupiter.errors import InputError

    if fmt not in ("jsonl", "cef"):
        raise InputError(f"unknown export format {fmt!r}; use jsonl or cef")
    lines = (
        (orjson.dumps(e).decode() if fmt == "jsonl" else to_cef(e, __version__))
        for e in state.engine().audit_export()
    )
    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    tmp = output.with_name(output.name + ".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
    tmp.replace(output)
