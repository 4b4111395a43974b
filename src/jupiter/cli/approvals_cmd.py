"""``jupiter approvals``: approve or reject remediations under the policy's rules."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RefArg = Annotated[str, typer.Argument(help="Remediation id, such as REM-3.")]
CommentOpt = Annotated[str, typer.Option("--comment", help="Note for the record.")]


def print_verdict(a: dict[str, Any]) -> None:
    out = state.console()
    out.print(
        f"{a['remediation']} [{a['status']}] {a['outcome']}: {len(a['counted'])} of "
        f"{a['required']} approval(s) from {', '.join(a['approver_roles'])}; plan "
        f"{a['plan_hash'][:12]}; requested by {a['requested_by']}, expires {a['expires_at']}"
    )
    for c in a["checklist"]:
        out.print(f"  [{c['status']}] {c['label']}" + (f" ({c['detail']})" if c["detail"] else ""))
    for r in a["reasons"]:
        out.print(f"  {r}")


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """Remediations awaiting approval."""
    rows = state.engine().list_approvals()
    if json:
        state.emit_json(rows)
        return
    for a in rows:
        print_verdict(a)
    if not rows:
        state.console().print("nothing awaits approval")


@app.command("show")
def show(ref: RefArg, json: JsonOpt = False) -> None:
    """One remediation's approval: rules, verdicts, checklist, plan hash."""
    a = state.engine().show_approval(ref)
    if json:
        state.emit_json(a)
        return
    print_verdict(a)
    for v in a["verdicts"]:
        state.console().print(f"  {v['verdict']} by {v['user']} for plan {v['plan_hash'][:12]}")


@app.command("approve")
def approve(
    ref: RefArg,
    plan_hash: Annotated[
        str | None, typer.Option("--plan-hash", help="The plan hash you reviewed.")
    ] = None,
    comment: CommentOpt = "",
    json: JsonOpt = False,
) -> None:
    """Approve the plan you reviewed; the remediation goes on once the quorum is met."""
    a = state.engine().approve_remediation(ref, plan_hash, comment)
    if json:
        state.emit_json(a)
    else:
        print_verdict(a)


@app.command("reject")
def reject(ref: RefArg, comment: CommentOpt = "", json: JsonOpt = False) -> None:
    """Reject a remediation (with a --comment): it is cancelled."""
    a = state.engine().reject_remediation(ref, comment)
    if json:
        state.emit_json(a)
    else:
        print_verdict(a)
