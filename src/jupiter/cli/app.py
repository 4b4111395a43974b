"""The ``jupiter`` command line.

Exit codes: 0 success; 1 a check ran and failed (audit chain broken, a fix
failed verification); 2 bad input or usage. Errors are one sentence on
stderr; ``--debug`` adds the traceback. Heavy modules are imported inside
commands so that ``jupiter --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(
    name="jupiter",
    help="Jupiter: from scanner findings to verified, reversible, audited fixes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="JUPITER_HOME",
            help="Workspace folder (database, snapshots). Default: ./.jupiter",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            envvar="JUPITER_ACTOR",
            help="Who is acting (a workspace user; default: the OS user). JUPITER_TOKEN, "
            "when set, authenticates instead.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    state.configure(home=home, actor=actor, debug=debug)


def _register() -> None:
    from jupiter.cli import (
        advisories,
        approvals_cmd,
        assets,
        audit_cmd,
        catalog_cmd,
        compliance_cmd,
        exceptions_cmd,
        findings,
        generate_cmd,
        outbox_cmd,
        policy_cmd,
        pull_requests_cmd,
        remediate,
        remediations_cmd,
        schedules_cmd,
        scripts,
        serve_cmd,
        snapshots_cmd,
        stats_cmd,
        users,
        worker_cmd,
        workflows_cmd,
    )

    app.command("init", help="Create the workspace (idempotent).")(findings.init)
    app.command("ingest", help="Ingest scanner reports (SARIF, Bandit, Checkov, Trivy, ...).")(
        findings.ingest
    )
    app.add_typer(assets.app, name="assets", help="Import and list assets.")
    app.add_typer(findings.app, name="findings", help="List, show and export findings.")
    app.add_typer(audit_cmd.app, name="audit", help="Verify and export the audit trail.")
    app.add_typer(
        advisories.app, name="advisories", help="Offline OSV advisory database for `scan`."
    )
    app.add_typer(scripts.app, name="scripts", help="Register your own remediation scripts.")
    app.add_typer(users.app, name="users", help="Users, roles and API tokens.")
    app.add_typer(approvals_cmd.app, name="approvals", help="Approve or reject remediations.")
    app.add_typer(exceptions_cmd.app, name="exceptions", help="Exceptions (waivers) with expiry.")
    app.add_typer(compliance_cmd.app, name="compliance", help="Compliance per control.")
    app.add_typer(policy_cmd.app, name="policy", help="Evaluate, test and simulate policies.")
    app.add_typer(
        workflows_cmd.app, name="workflows", help="List, show and validate remediation workflows."
    )
    app.add_typer(
        schedules_cmd.app, name="schedules", help="Scan assets on a timer (continuous detection)."
    )
    app.command(
        "worker",
        help="Run due work (schedules, waiting deploys, bakes, outbox) until stopped; "
        "--executor celery: a Celery worker for deploys (docs/scale-out.md).",
    )(worker_cmd.worker)
    app.add_typer(
        pull_requests_cmd.app,
        name="pull-requests",
        help="Pull/merge requests delivered by `fix --pull-request`, kept current.",
    )
    remediate.register(app)
    remediations_cmd.register(app)
    app.command("generate", help="Render a secure ssh, firewall or postgresql configuration.")(
        generate_cmd.generate
    )
    app.command("script", help="Export a fix as a bash, python or ansible script.")(
        generate_cmd.script
    )
    app.command("catalog", help="List what Jupiter can fix (the fix catalog).")(catalog_cmd.catalog)
    app.add_typer(
        outbox_cmd.app, name="outbox", help="Integration events waiting, delivered or dead."
    )
    app.command("stats", help="Remediation statistics (success rate, durations, SLA).")(
        stats_cmd.stats
    )
    app.command("metrics", help="Prometheus metrics: print them, or --serve them.")(
        stats_cmd.metrics
    )
    app.add_typer(snapshots_cmd.app, name="snapshots", help="Rollback points of whole assets.")
    app.command("ask", help="Ask the copilot, in words (see docs/copilot.md).")(snapshots_cmd.ask)
    app.command("serve", help="Serve the REST API and web console (uvicorn).")(serve_cmd.serve)


_register()


def main() -> None:
    try:
        app()  # usage errors exit 2 with Typer's own message
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place errors become exit codes
        sys.exit(state.report_error(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
