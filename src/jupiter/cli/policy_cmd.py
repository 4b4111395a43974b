"""``jupiter policy``: evaluate, test and simulate the policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("eval")
def eval_(
    input_file: Annotated[
        Path, typer.Option("--input", help="JSON/YAML: {decision: NAME, input: {...}}.")
    ],
    decision: Annotated[
        str | None,
        typer.Option("--decision", help="priority, remediation or exception (if not in file)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Evaluate one decision on an input (logged in the decision log)."""
    result = state.engine().policy_eval(input_file, decision)
    if json:
        state.emit_json(result)
    else:
        state.emit_json(result["result"])
    if result["error"]:
        state.console(stderr=True).print(result["error"])
        raise typer.Exit(1)


@app.command("test")
def test(json: JsonOpt = False) -> None:
    """Run the policies' own tests (*.tests.yaml beside them); exit 1 on a failure."""
    report = state.engine().policy_test()
    if json:
        state.emit_json(report)
    else:
        for case in report["cases"]:
            mark = "pass" if case["passed"] else "FAIL"
            detail = f": {case['detail']}" if case["detail"] else ""
            state.console().print(f"{mark}  {case['name']}{detail}")
        state.console().print(f"{report['passed']} passed, {report['failed']} failed")
    if report["failed"]:
        raise typer.Exit(1)


@app.command("simulate")
def simulate(json: JsonOpt = False) -> None:
    """What the current policy would decide on the logged decisions."""
    report = state.engine().policy_simulate()
    if json:
        state.emit_json(report)
        return
    state.console().print(
        f"policy {report['policy_hash'][:12]}: {report['changed']} of {report['replayed']} "
        "logged decisions would now differ"
    )
    for d in report["decisions"][:50]:
        state.console().print(
            f"  #{d['id']} {d['decision']} {d['subject']}: {d['before']} -> {d['now']}"
        )
