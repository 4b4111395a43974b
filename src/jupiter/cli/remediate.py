"""``jupiter scan | plan | fix | rollback | runs | remediators``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from jupiter.cli import state

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AssetOpt = Annotated[
    str | None,
    typer.Option("--asset", help="Asset id for the target (default: the folder's name)."),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Remediator parameter REMEDIATOR.KEY=VALUE, e.g. sshd-hardening.level=baseline.",
    ),
]
LockTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0.0,
        help="Seconds to wait for another run holding the target's lock (default 0: do not "
        "wait; exit 2 naming the holder).",
    ),
]
TargetArg = Annotated[
    str, typer.Argument(help="A directory, local:PATH, or ssh:USER@HOST[:PORT]/ROOT.")
]

runs_app = typer.Typer(no_args_is_help=True, help="List and show fix and rollback runs.")
remediators_app = typer.Typer(no_args_is_help=True, help="List the remediation plugins.")

_STATUS_STYLE = {
    "verified": "green",
    "already_fixed": "green",
    "needs_manual": "yellow",
    "planned": "cyan",
    "failed": "bold red",
    "rolled_back": "bold red",
    "conflict": "bold yellow",
}


def register(app: typer.Typer) -> None:
    app.command("scan", help="Run the built-in checks over a target and store the findings.")(scan)
    app.command("plan", help="Show the plan and diff for one finding; changes nothing.")(plan)
    app.command(
        "fix",
        help="Scan, plan, snapshot, validate, apply and verify fixes. Exit 1 if any fix "
        "failed (failed fixes are rolled back automatically).",
    )(fix)
    app.command(
        "rollback",
        help="Restore what a fix run changed (all, or --path), and prove it by hashes. "
        "Exit 1 if a restored path does not match its snapshot.",
    )(rollback)
    app.add_typer(runs_app, name="runs")
    app.add_typer(remediators_app, name="remediators")


def scan(target: TargetArg, asset: AssetOpt = None, json: JsonOpt = False) -> None:
    eng = state.engine()
    report = eng.scan(target, asset)
    findings = eng.list_findings(asset=report.asset, status="open")
    detected = set(report.fingerprints)
    current = [f for f in findings if f["fingerprint"] in detected]
    # A finding in a repository's configuration says which taken file it is in and why
    # that file was taken (the store keeps findings, not the survey).
    by_path = {t["path"]: t for t in report.config_files if t["status"] == "taken"}
    for f in current:
        source = by_path.get(f["location"]["path"] or "")
        if source is not None:
            f["config_file"] = {"path": source["path"], "evidence": source["evidence"]}
    if json:
        state.emit_json({**report.to_json(), "findings": current})
        return
    out = state.console()
    out.print(
        f"scanned {report.target} as asset {report.asset!r}: {report.stats.results} findings "
        f"({report.stats.new} new)"
    )
    for f in current:
        loc = f["location"]
        where = f"{loc['path']}:{loc['start_line']}" if loc["start_line"] else loc["path"]
        out.print(f"  #{f['id']:<5} {f['severity']:<8} {f['rule_id']:<24} {f['title']}  ({where})")
    if report.config_files:
        out.print("configuration files in the repository:")
    for taken in report.config_files:
        out.print(
            f"  {taken['status']:<9} {taken['domain']:<9} {taken['path']}: {taken['evidence']}"
        )
    for err in report.errors:
        out.print(f"[yellow]warning:[/] {err['remediator']}: {err['error']}")


def plan(
    finding: Annotated[str, typer.Argument(help="Finding id or fingerprint prefix.")],
    param: ParamOpt = None,
    json: JsonOpt = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="text (default), or sarif: the finding and its fix as exact replacements.",
        ),
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="With --format sarif: write the file here."),
    ] = None,
) -> None:
    if fmt not in ("text", "sarif"):
        from jupiter.errors import InputError

        raise InputError(f"unknown plan format {fmt!r}; use text or sarif")
    if fmt == "sarif":
        from jupiter.cli.findings import emit_sarif

        emit_sarif(
            fmt,
            output,
            lambda: state.engine().export_sarif(finding=finding, raw_params=param or []),
        )
        return
    result = state.engine().plan(finding, param or [])
    if json:
        state.emit_json(result)
        return
    p = result["plan"]
    out = state.console()
    out.print(f"finding #{result['finding']} → {result['remediator']}: {p['title']}")
    if p["needs_manual"]:
        out.print(f"[yellow]needs manual action:[/] {p['needs_manual']}")
    elif not p["changes"]:
        out.print("[green]already fixed: nothing to change[/]")
    _print_risk(p["risk"])
    if p["diff"]:
        _print_diff(p["diff"])


def fix(
    target: TargetArg,
    asset: AssetOpt = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Only this rule id or category (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plans and diffs; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    param: ParamOpt = None,
    git_branch: Annotated[
        str | None,
        typer.Option(
            "--git-branch",
            help="Deliver the fixes on this new branch of the target's git work tree, "
            "one commit per finding.",
        ),
    ] = None,
    pull_request: Annotated[
        str | None,
        typer.Option(
            "--pull-request",
            help="Push the --git-branch and open (or update) a pull/merge request on github, "
            "gitlab or gitea; token from JUPITER_<FORGE>_TOKEN, API from JUPITER_<FORGE>_URL.",
        ),
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option("--repo", help="OWNER/NAME of the repository on the forge (--pull-request)."),
    ] = None,
    group: Annotated[
        str,
        typer.Option(
            "--group",
            help="One pull request per finding, rule, directory, or the whole run (default).",
        ),
    ] = "run",
    remote: Annotated[
        str, typer.Option("--remote", help="The git remote to push to (--pull-request).")
    ] = "origin",
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="The branch the pull request merges into (default: the checked-out branch).",
        ),
    ] = None,
    lock_timeout: LockTimeoutOpt = 0.0,
    json: JsonOpt = False,
) -> None:
    out = state.console()
    pr_options = None
    if pull_request is not None or repo is not None:
        from jupiter.errors import InputError
        from jupiter.pull_requests import PullRequestOptions

        if pull_request is None or repo is None:
            raise InputError(
                "--pull-request and --repo go together: give both, e.g. "
                "--pull-request github --repo OWNER/NAME"
            )
        pr_options = PullRequestOptions(pull_request, repo, group, remote, base).check()

    def confirm(preview: list[dict[str, Any]]) -> bool:
        if any(s.get("replanned") for s in preview):
            state.console(stderr=True).print(
                "[bold yellow]the target changed while you were deciding; this is the new plan "
                "(nothing was applied yet):[/]"
            )
        if not json:
            _print_preview(preview)
        if not sys.stdin.isatty():
            from jupiter.errors import InputError

            raise InputError(
                "refusing to change the target without confirmation; review with --dry-run, "
                "then pass --yes"
            )
        return typer.confirm("Apply these changes?", default=False, err=True)

    def on_step(step: Any) -> None:
        if not json:
            style = _STATUS_STYLE.get(step.status, "")
            out.print(
                f"  [{style}]{step.status:<13}[/] #{step.finding_id} {step.rule_id}: {step.detail}"
            )

    result = state.engine().fix(
        target,
        asset=asset,
        only=only,
        dry_run=dry_run,
        confirm=None if yes else confirm,
        raw_params=param or [],
        on_step=on_step,
        git_branch=git_branch,
        lock_timeout=lock_timeout,
        pull_request=pr_options,
    )
    failed = [s for s in result["steps"] if s["status"] in ("failed", "rolled_back", "conflict")]
    if not json and result.get("unhandled"):
        out.print(
            f"[yellow]{len(result['unhandled'])} open finding(s) no remediator handles[/] "
            "(fix by hand, or `jupiter scripts add`): "
            + ", ".join(f"#{u['finding']} {u['rule_id']}" for u in result["unhandled"])
        )
    if json:
        state.emit_json(result)
        if result["status"] == "declined":
            raise typer.Exit(1)
    elif result["run"] is None:
        if dry_run:
            _print_preview(result["steps"])
            out.print("[cyan]dry run: nothing was changed[/]")
        elif result["status"] == "declined":
            out.print("declined: nothing was changed")
            raise typer.Exit(1)
        else:
            _print_preview(result["steps"])
            manual = sum(1 for s in result["steps"] if s["status"] == "needs_manual")
            out.print(
                "nothing to change automatically"
                + (f"; {manual} finding(s) need manual action" if manual else "")
            )
    else:
        out.print(f"run {result['run']}: {result['status']}")
        for gate in result.get("gates") or []:
            out.print(f"gate {gate['validator']}: {gate['status']} — {gate['detail']}")
        if result.get("rollback"):
            undo = result["rollback"]["rollback_run"]
            out.print(f"rolled back by the gate (rollback run {undo})")
        if result.get("git"):
            commits = sum(1 for s in result["steps"] if s.get("commit"))
            out.print(
                f"delivered on branch {result['git']['branch']}: {commits} commit(s) on top of "
                f"{result['git']['base'][:12]}"
            )
        if not failed and not result.get("rollback"):
            out.print(f"undo with: jupiter rollback {result['run']}")
    if not json:
        for pr in result.get("pull_requests") or []:
            out.print(f"pull request {pr['action']}: #{pr['number']} {pr['url']} ({pr['group']})")
    if failed:
        raise typer.Exit(1)


def rollback(
    run: Annotated[int, typer.Argument(help="Run id (see `jupiter runs list`).")],
    path: Annotated[
        list[str] | None,
        typer.Option("--path", help="Restore only this path (repeatable): a partial rollback."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Roll back even paths someone changed after the fix (discards that)."
        ),
    ] = False,
    lock_timeout: LockTimeoutOpt = 0.0,
    json: JsonOpt = False,
) -> None:
    """Exit 1 if a restored path does not match its snapshot."""

    def confirm(paths: list[str]) -> bool:
        if not json:
            state.console().print(f"will restore {len(paths)} path(s): " + ", ".join(paths))
        if not sys.stdin.isatty():
            from jupiter.errors import InputError

            raise InputError("refusing to roll back without confirmation; pass --yes")
        return typer.confirm("Roll back?", default=False, err=True)

    result = state.engine().rollback(
        run, path or [], confirm=None if yes else confirm, force=force, lock_timeout=lock_timeout
    )
    if json:
        state.emit_json(result)
    else:
        out = state.console()
        kind = "full" if result["full"] else "partial"
        out.print(f"{kind} rollback of run {run} (rollback run {result['rollback_run']}):")
        for p in result["restored"]:
            mark = "[red]MISMATCH[/]" if p in result["mismatches"] else "[green]verified[/]"
            out.print(f"  {mark} {p}")
    if not result["verified"]:
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(json: JsonOpt = False) -> None:
    """List runs, newest first."""
    rows = state.engine().list_runs()
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table("id", "kind", "status", "asset", "target", "actor", "started", "summary")
    for r in rows:
        kind = r["kind"] if not r["rollback_of"] else f"rollback of {r['rollback_of']}"
        summary = ", ".join(f"{k}={v}" for k, v in r["summary"].items() if not isinstance(v, list))
        table.add_row(
            str(r["id"]),
            kind,
            r["status"],
            str(r["asset"] or ""),
            r["target"],
            r["actor"],
            r["started_at"][:19],
            summary,
        )
    state.console().print(table)


@runs_app.command("recover")
def runs_recover(
    run: Annotated[int, typer.Argument(help="Id of a run whose process died.")],
    lock_timeout: LockTimeoutOpt = 0.0,
    json: JsonOpt = False,
) -> None:
    """Finish a run whose process died: restore what it left half-applied."""
    data = state.engine().recover(run, lock_timeout=lock_timeout)
    if json:
        state.emit_json(data)
        return
    out = state.console()
    out.print(f"run {run}: interrupted")
    for st in data["steps"]:
        out.print(f"  step {st['step']}: {st['status']}: {st['detail']}")


@runs_app.command("show")
def runs_show(
    run: Annotated[int, typer.Argument(help="Run id.")],
    json: JsonOpt = False,
) -> None:
    """Show a run and each of its steps."""
    data = state.engine().show_run(run)
    if json:
        state.emit_json(data)
        return
    out = state.console()
    out.print(f"run {data['id']} ({data['kind']}): {data['status']} on {data['target']}")
    for st in data["steps"]:
        style = _STATUS_STYLE.get(st["status"], "")
        out.print(
            f"  {st['seq']:>3} [{style}]{st['status']:<13}[/] #{st['finding']} "
            f"{st['remediator']} {st['rule_id']}: {st['detail']}"
        )


@remediators_app.command("list")
def remediators_list(json: JsonOpt = False) -> None:
    """List remediators, what they handle and their parameters."""
    registry = state.engine().registry
    rows = [
        {
            "name": p.name,
            "summary": p.summary,
            "source": registry.sources[p.name],
            "categories": sorted(str(c) for c in p.categories),
            "rule_ids": sorted(p.rule_ids),
            "parameters": p.params_model.model_json_schema().get("properties", {}),
        }
        for p in registry
    ]
    broken = [{"name": n, "error": e} for n, e in sorted(registry.errors.items())]
    if json:
        state.emit_json({"remediators": rows, "failed_to_load": broken})
        return
    from rich.table import Table

    table = Table("name", "handles", "source", "summary")
    for r in rows:
        table.add_row(r["name"], ", ".join(r["categories"]), r["source"], r["summary"])
    out = state.console()
    out.print(table)
    for b in broken:
        out.print(f"[red]failed to load[/] {b['name']}: {b['error']}")


def _print_preview(steps: list[dict[str, Any]]) -> None:
    out = state.console()
    for s in steps:
        style = _STATUS_STYLE.get(s["status"], "")
        out.print(f"[{style}]{s['status']:<13}[/] #{s['finding']} {s['rule_id']}: {s['title']}")
        if s["needs_manual"]:
            out.print(f"    needs manual action: {s['needs_manual']}")
        _print_risk(s["risk"], indent="    ")
        if s["diff"]:
            _print_diff(s["diff"])


def _print_risk(risk: dict[str, Any], indent: str = "") -> None:
    out = state.console()
    for w in risk.get("warnings", []):
        out.print(f"{indent}[yellow]risk:[/] {w}")
    for m in risk.get("manual_steps", []):
        out.print(f"{indent}[yellow]before applying:[/] {m}")
    if risk.get("services_to_reload"):
        out.print(f"{indent}reload after applying: {', '.join(risk['services_to_reload'])}")


def _print_diff(diff: str) -> None:
    from rich.syntax import Syntax

    state.console().print(Syntax(diff, "diff", theme="ansi_dark", background_color="default"))
