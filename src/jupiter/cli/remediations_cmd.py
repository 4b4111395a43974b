"""``jupiter remediate`` and ``jupiter remediations list|show|approve|answer|
resume|cancel|rollback`` (docs/workflows.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from jupiter.cli import state

if TYPE_CHECKING:
    from jupiter.remediations import EventInfo, RemediationInfo

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RemArg = Annotated[str, typer.Argument(help="The remediation, e.g. REM-3.")]
NoWaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Drive the remediation on now (default), or leave it to `jupiter worker`.",
    ),
]

ForksOpt = Annotated[
    int | None,
    typer.Option(
        "--forks",
        min=1,
        max=256,
        help="Targets planned and deployed at a time (default: the deploy stage's "
        "concurrency, 20). Each SSH host gets one connection for the whole run.",
    ),
]

app = typer.Typer(no_args_is_help=True, help="Remediation workflows across asset groups.")

_STYLE = {
    "completed": "green",
    "deployed": "green",
    "ok": "green",
    "finished": "green",
    "pass": "green",
    "rolled_back": "bold red",
    "failed": "bold red",
    "fail": "bold red",
    "triggered": "bold red",
    "waiting": "yellow",
    "awaiting_approval": "yellow",
    "waiting_manual": "yellow",
    "inconclusive": "yellow",
    "unreachable": "bold red",
}


def _styled(text: str, status: str, default: str = "") -> str:
    from rich.markup import escape

    style = _STYLE.get(status, default)
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def register(root: typer.Typer) -> None:
    root.command(
        "remediate",
        help="Plan one reviewed remediation on a target, an asset or a group's production "
        "assets, and drive it through its workflow. Exit 1 if it ends rolled back or failed.",
    )(remediate)
    root.add_typer(app, name="remediations")


def _progress(json: bool) -> Any:
    if json:
        return None
    out = state.console()

    def show(e: EventInfo) -> None:
        if e.status == "started":
            return
        who = f" {e.target}" if e.target else ""
        took = f" ({e.duration:.2f}s)" if e.duration is not None else ""
        out.print(f"  {e.stage:<10} {e.name}{who}: {_styled(e.status, e.status)}{took}")

    return show


def remediate(
    target: Annotated[
        str | None,
        typer.Argument(help="A directory, local:PATH or ssh:USER@HOST[:PORT]/ROOT."),
    ] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="One registered asset.")] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Every production asset of a group.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only this rule id or category.")
    ] = None,
    finding: Annotated[
        list[int] | None, typer.Option("--finding", help="Only this finding (repeatable).")
    ] = None,
    batch: Annotated[
        bool,
        typer.Option("--batch", help="The rules of --finding/--only across the whole group."),
    ] = False,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Workflow name.")] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="rolling, canary or blue-green.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="REMEDIATOR.KEY=VALUE.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; store nothing.")] = False,
    wait: NoWaitOpt = True,
    forks: ForksOpt = None,
    json: JsonOpt = False,
) -> None:
    from jupiter.targets.factory import pooled

    eng = state.engine()
    # Plan and deploy over one connection per SSH host.
    with pooled():
        made = eng.remediations.create(
            target,
            asset=asset,
            group=group,
            only=only,
            findings=finding,
            batch=batch,
            workflow=workflow,
            strategy=strategy,
            dry_run=dry_run,
            raw_params=param,
            forks=forks,
        )
        info = made.remediation
        if info is not None and wait:
            if not json:
                state.console().print(f"{info.id}: planned on {len(info.targets)} target(s)")
            info = eng.remediations.run(info.id, progress=_progress(json), forks=forks)
    if json:
        out = made.to_json()
        if info is not None:
            out["remediation"] = info.to_json()
            out["status"] = info.status
        state.emit_json(out)
    else:
        _print_created(made.to_json(), info)
    if info is not None and info.status in ("rolled_back", "failed", "test_failed"):
        raise typer.Exit(1)


def _print_created(made: dict[str, Any], info: RemediationInfo | None) -> None:
    out = state.console()
    for t in made["targets"]:
        out.print(
            f"{t['asset']} ({t['role']}): {len(t['steps'])} fix(es), plan {t['plan_hash'][:12]}"
        )
        for s in t["steps"]:
            out.print(f"    #{s['finding']} {s['rule_id']}: {s['title']}")
    if info is None:
        out.print(f"[cyan]{made['status']}[/]: nothing was stored")
        return
    _print_info(info, timeline=False)


def _print_info(info: RemediationInfo, timeline: bool = True) -> None:
    from rich.markup import escape

    out = state.console()
    out.print(
        f"{info.id} {_styled(info.status, info.status, 'cyan')} workflow {info.workflow}, stage "
        f"{info.stage or '(done)'}, plan {info.plan_hash[:12]}"
    )
    if info.reason:
        out.print(f"  reason: {info.reason}")
    waiting = info.facts.get("waiting")
    if info.status == "waiting_manual" and waiting:
        fields = " ".join(f"--field {k}=<{v}>" for k, v in waiting["fields"].items())
        out.print(f"  question: {waiting['question']}")
        out.print(f"  answer with: jupiter remediations answer {info.id} {fields}")
    if info.status == "awaiting_approval":
        out.print(f"  approve with: jupiter remediations approve {info.id}")
    if info.due_at:
        out.print(f"  next look: {info.due_at}")
    for t in info.targets:
        out.print(
            f"  {t.asset:<20} {t.role:<10} batch {t.batch}  {_styled(t.status, t.status)}  "
            f"{escape(t.detail)}"
        )
    result = info.result
    if result:
        for key in ("status", "reason", "target", "rollback_snapshot", "rollback_duration"):
            out.print(f"  {key}: {result.get(key)}")
        out.print(f"  system_status: {result.get('system_status')}")
    if timeline and info.timeline:
        out.print("timeline:")
        for e in info.timeline:
            if e.status == "started":
                continue
            who = f" {e.target}" if e.target else ""
            took = f" {e.duration:.2f}s" if e.duration is not None else ""
            shown = _styled(e.status, e.status)
            out.print(f"  {e.at[:19]} {e.stage:<10} {e.name}{who}: {shown}{took}")


def _emit(info: RemediationInfo, json: bool, fail_on_rollback: bool = True) -> None:
    if json:
        state.emit_json(info.to_json())
    else:
        _print_info(info)
    if fail_on_rollback and info.status in ("rolled_back", "failed", "test_failed"):
        raise typer.Exit(1)


@app.command("list", help="List remediations, newest first.")
def list_(
    status: Annotated[str | None, typer.Option("--status", help="Only in this state.")] = None,
    json: JsonOpt = False,
) -> None:
    items = state.engine().remediations.listing(status)
    if json:
        state.emit_json([i.to_json() for i in items])
        return
    out = state.console()
    if not items:
        out.print("no remediations")
    for i in items:
        out.print(
            f"{i.id:<8} {_styled(f'{i.status:<18}', i.status, 'cyan')} {i.workflow:<14} "
            f"{i.group or '-':<12} {len(i.targets)} target(s)  {i.created_at[:19]}"
        )


@app.command("show", help="One remediation with its targets and timeline.")
def show(ref: RemArg, json: JsonOpt = False) -> None:
    _emit(state.engine().remediations.show(ref), json, fail_on_rollback=False)


@app.command(
    "approve",
    help="Approve the plan of a remediation awaiting approval (roles, separation of duties "
    "and the policy's quorum apply, as in `jupiter approvals approve`); once approved it is "
    "driven on.",
)
def approve(
    ref: RemArg,
    plan_hash: Annotated[
        str | None, typer.Option("--plan-hash", help="The plan hash you reviewed.")
    ] = None,
    comment: Annotated[str, typer.Option("--comment", help="Why, for the audit.")] = "",
    wait: NoWaitOpt = True,
    json: JsonOpt = False,
) -> None:
    eng = state.engine()
    # Once the quorum is met the approval drives the remediation on (the
    # approver needs no operator role for that: the system deploys what was
    # approved); --no-wait leaves it to `jupiter worker`.
    verdict = eng.approve_remediation(ref, plan_hash, comment, run=wait)
    info = eng.remediations.show(ref)
    if verdict["outcome"] != "approved":
        if json:
            state.emit_json(verdict)
            return
        from jupiter.cli.approvals_cmd import print_verdict

        print_verdict(verdict)
        return
    _emit(info, json)


@app.command("answer", help="Answer the manual question a remediation waits on.")
def answer(
    ref: RemArg,
    field: Annotated[
        list[str], typer.Option("--field", help="NAME=VALUE (bool, int or str as asked).")
    ],
    wait: NoWaitOpt = True,
    json: JsonOpt = False,
) -> None:
    from jupiter.errors import InputError

    values: dict[str, str] = {}
    for item in field:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--field {item!r} is not NAME=VALUE")
        values[name.strip()] = value
    eng = state.engine()
    info = eng.remediations.answer(ref, values, run=False)
    if wait and info.status not in ("rolled_back", "failed", "cancelled"):
        info = eng.remediations.run(info.id, progress=_progress(json))
    _emit(info, json)


@app.command("resume", help="Go on with a remediation from where the store says it stands.")
def resume(ref: RemArg, forks: ForksOpt = None, json: JsonOpt = False) -> None:
    _emit(state.engine().remediations.resume(ref, progress=_progress(json), forks=forks), json)


@app.command("cancel", help="Cancel a remediation; what it changed is rolled back first.")
def cancel(ref: RemArg, json: JsonOpt = False) -> None:
    _emit(state.engine().remediations.cancel(ref), json, fail_on_rollback=False)


@app.command(
    "rollback",
    help="Roll back what a remediation changed (all, one --target, or --path), proven by hashes.",
)
def rollback(
    ref: RemArg,
    target: Annotated[str | None, typer.Option("--target", help="Only this asset.")] = None,
    path: Annotated[
        list[str] | None, typer.Option("--path", help="Only this path (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also overwrite paths changed since the deploy.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    info = state.engine().remediations.rollback(ref, target=target, paths=path, force=force)
    _emit(info, json, fail_on_rollback=False)
