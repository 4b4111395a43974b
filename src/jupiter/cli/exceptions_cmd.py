"""``jupiter exceptions``: waivers with a reason, a ticket and an expiry."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdArg = Annotated[int, typer.Argument(help="Exception id (see `jupiter exceptions list`).")]


def _show(data: dict[str, object], json: bool, line: str) -> None:
    if json:
        state.emit_json(data)
    else:
        state.console().print(line)


@app.command("request")
def request(
    reason: Annotated[str, typer.Option("--reason", help="Why the risk is accepted.")],
    ticket: Annotated[str, typer.Option("--ticket", help="Change or risk ticket reference.")],
    expires: Annotated[
        str, typer.Option("--expires", help="YYYY-MM-DD, an ISO datetime, or Nd (days).")
    ],
    finding: Annotated[str | None, typer.Option("--finding", help="One finding.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="A rule id...")] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="...on this asset.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="...on this asset group.")] = None,
    json: JsonOpt = False,
) -> None:
    """Request an exception; it takes effect once another admin approves it."""
    w = state.engine().request_exception(reason, ticket, expires, finding, rule, asset, group)
    _show(w, json, f"exception {w['id']} requested (expires {w['expires_at']}); needs approval")


@app.command("approve")
def approve(
    waiver: IdArg,
    comment: Annotated[str, typer.Option("--comment", help="Note for the record.")] = "",
    json: JsonOpt = False,
) -> None:
    """Approve an exception (not your own): its findings become excepted."""
    w = state.engine().approve_exception(waiver, comment)
    _show(w, json, f"exception {waiver} approved; {len(w['excepted'])} finding(s) excepted")


@app.command("revoke")
def revoke(
    waiver: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    json: JsonOpt = False,
) -> None:
    """Revoke an exception: its findings reopen."""
    w = state.engine().revoke_exception(waiver, reason)
    _show(w, json, f"exception {waiver} revoked; {len(w['reopened'])} finding(s) reopened")


@app.command("expire")
def expire(json: JsonOpt = False) -> None:
    """Expire the exceptions whose time is up and reopen their findings."""
    done = state.engine().expire_exceptions()
    n = sum(len(d["reopened"]) for d in done)
    _show({"expired": done}, json, f"{len(done)} exception(s) expired; {n} finding(s) reopened")


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="requested, approved, revoked or expired.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """List exceptions."""
    rows = state.engine().list_exceptions(status)
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table("id", "status", "covers", "reason", "ticket", "by", "approved", "expires")
    for w in rows:
        covers = (
            f"finding {w['finding']}"
            if w["scope"] == "finding"
            else f"{w['rule_id']} on {w['asset'] or 'group ' + str(w['group'])}"
        )
        table.add_row(
            str(w["id"]),
            str(w["status"]),
            covers,
            str(w["reason"]),
            str(w["ticket"]),
            str(w["requested_by"]),
            str(w["approved_by"] or ""),
            str(w["expires_at"]),
        )
    state.console().print(table)
