"""``jupiter pull-requests list | sync``: the pull/merge requests Jupiter
delivered (``jupiter fix --pull-request``) and their state."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(
    no_args_is_help=True,
    help="Pull/merge requests delivered by `jupiter fix --pull-request`, kept current.",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("list")
def list_cmd(
    status: Annotated[
        str | None,
        typer.Option("--state", help="Only this state: open, declined, merged or obsolete."),
    ] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Only this OWNER/NAME.")] = None,
    json: JsonOpt = False,
) -> None:
    """List delivered pull requests, oldest first."""
    rows = state.engine().list_pull_requests(state=status, repo=repo)
    if json:
        state.emit_json(rows)
        return
    out = state.console()
    if not rows:
        out.print("no pull requests delivered yet")
    for r in rows:
        ci = f" ci={r['ci']}" if r["ci"] else ""
        out.print(
            f"{r['forge']:<7} {r['repo']} #{r['number']:<5} {r['state']:<9} {r['branch']} "
            f"({len(r['findings'])} finding(s)){ci}  {r['url']}"
        )


@app.command("sync")
def sync_cmd(json: JsonOpt = False) -> None:
    """Poll the forges now (the worker does this every round): merged requests
    complete their remediation, closed ones are remembered as declined, and CI
    results are recorded. Exit 1 if a request could not be checked."""
    result = state.engine().sync_pull_requests()
    if json:
        state.emit_json(result)
    else:
        out = state.console()
        if not result:
            out.print("no open pull requests to check")
        for e in result:
            head = f"{e['forge']} {e['repo']} #{e['number']}"
            if e.get("failed"):
                out.print(f"[red]{head}: {e['error']}[/]")
            else:
                extra = f" ci={e['ci']}" if e.get("ci") else ""
                done = e.get("remediation_completed")
                extra += f"; {done} completed" if done else ""
                out.print(f"{head}: {e['state']}{extra}")
    if any(e.get("failed") for e in result):
        raise typer.Exit(1)
