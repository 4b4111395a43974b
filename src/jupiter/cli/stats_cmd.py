"""``jupiter stats`` and ``jupiter metrics``."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state


def stats(
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this date (2026-11-01) or age (30d, 12h, 2w) on."),
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Only the assets of this group.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remediations performed, success rate, durations, rollbacks, fixes, SLA."""
    out = state.engine().statistics(since, group)
    if json:
        state.emit_json(out)
        return
    from rich.table import Table

    def show(value: object, unit: str = "") -> str:
        return "-" if value is None else f"{value}{unit}"

    table = Table(
        "statistic", "value", title="Jupiter statistics" + (f" since {since}" if since else "")
    )
    table.add_row("remediations performed", show(out["remediations_performed"]))
    table.add_row("success rate", show(out["remediation_success_rate"], " %"))
    table.add_row("avg remediation time", show(out["avg_remediation_time"], " min"))
    table.add_row("avg fix run duration", show(out["avg_run_duration_s"], " s"))
    rb = out["rollbacks"]
    table.add_row(
        "rollbacks",
        f"{out['rollbacks_performed']} ({rb['manual']} manual, {rb['automatic']} automatic)",
    )
    table.add_row("vulnerabilities fixed", show(out["vulnerabilities_fixed"]))
    table.add_row("open findings", show(out["open_findings"]))
    table.add_row("open by age", ", ".join(f"{k}: {v}" for k, v in out["open_by_age"].items()))
    breaches = out["sla_breaches"]
    table.add_row("SLA breaches", ", ".join(f"{k}: {v}" for k, v in breaches.items()) or "none")
    for sev, hours in out["mttr_hours_by_severity"].items():
        table.add_row(f"MTTR {sev}", f"{hours} h")
    state.console().print(table)


def metrics(
    serve: Annotated[
        int | None,
        typer.Option("--serve", help="Serve /metrics on this port instead of printing once."),
    ] = None,
    bind: Annotated[str, typer.Option("--bind", help="Address to serve on.")] = "127.0.0.1",
) -> None:
    """Prometheus metrics (text format), from the workspace's own totals."""
    engine = state.engine()
    if serve is None:
        typer.echo(engine.metrics_text(), nl=False)
        return
    import time

    from prometheus_client import start_http_server

    from jupiter.metrics import registry

    server, thread = start_http_server(serve, addr=bind, registry=registry(engine.db))
    state.console(stderr=True).print(f"serving Prometheus metrics on http://{bind}:{serve}/metrics")
    try:
        while thread.is_alive():
            time.sleep(1)
    except KeyboardInterrupt:
        server.shutdown()
