"""``jupiter snapshots``: rollback points of whole assets, and ``jupiter ask``
(the copilot, one query)."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    asset: Annotated[str, typer.Argument(help="The asset id (see `jupiter assets list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit).")] = "",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Capture every file under the asset's root as a rollback point (SNAP-DATE-N)."""
    out = state.engine().create_rollback_point(asset, reason=reason)
    if json:
        state.emit_json(out)
        return
    state.console().print(
        f"{out['snapshot_id']}: {out['files']} file(s), {out['bytes']} bytes of {asset}"
    )


@app.command("list")
def listing(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rollback points, newest first."""
    rows = state.engine().list_rollback_points(asset)
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table("id", "asset", "files", "taken at", "by", "restored", title="Rollback points")
    for r in rows:
        table.add_row(
            r["snapshot_id"],
            r["asset"],
            str(r["files"]),
            r["taken_at"],
            r["taken_by"],
            r["restored_at"] or "-",
        )
    state.console().print(table)


@app.command("restore")
def restore(
    snapshot_id: Annotated[
        str, typer.Argument(help="The rollback point, e.g. SNAP-2026-12-05-001.")
    ],
    path: Annotated[
        list[str] | None, typer.Option("--path", help="Only this path (repeatable).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit).")] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what differs; write nothing.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Put the asset's files back as the rollback point holds them, proven by sha256."""
    out = state.engine().restore_rollback_point(
        snapshot_id, paths=path or None, reason=reason, dry_run=dry_run
    )
    if json:
        state.emit_json(out)
        return
    con = state.console()
    if dry_run:
        con.print(f"would restore {len(out['would_restore'])} file(s):")
        for p in out["would_restore"]:
            con.print(f"  {p}")
    else:
        con.print(
            f"{out['asset']} {out['status']} to {out['snapshot_id']}: {out['verified_files']} "
            f"file(s) verified, rewritten: {', '.join(out['written']) or 'none'}"
        )
    if out["added_since"]:
        con.print(f"created since (left in place): {', '.join(out['added_since'])}")
    if out["status"] == "incomplete":
        raise typer.Exit(1)


def ask(
    message: Annotated[str, typer.Argument(help="What to do, in words.")],
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="Metadata KEY=VALUE (repeatable; VALUE may be JSON)."),
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Session id: follow-ups name nothing.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the whole response as JSON.")] = False,
) -> None:
    """Ask the copilot (see docs/copilot.md); exits 2 when it did nothing."""
    import orjson

    from jupiter.copilot import CopilotEngine, Query
    from jupiter.errors import InputError

    metadata: dict[str, object] = {}
    for item in meta or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--meta {item!r} is not KEY=VALUE")
        try:
            metadata[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            metadata[key] = value
    with CopilotEngine(state.home()) as copilot:
        response = copilot.process_query(
            Query(message, metadata or None, user_id=state.actor(), session_id=session)
        )
    if json:
        state.emit_json(response.to_json())
    else:
        state.console(stderr=not response.ok).print(response.message)
    if not response.ok:
        raise typer.Exit(2)
