"""``jupiter workflows``: the remediation workflows (built-in and the
workspace's own) and a check for a workflow file before it is used."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jupiter.cli import state

if TYPE_CHECKING:
    from jupiter.workflows.definitions import Workflow
    from jupiter.workflows.loading import Source

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _summary(wf: Workflow) -> str:
    return " → ".join(s.label for s in wf.stages)


def _stage_detail(stage: Any) -> str:
    from jupiter.workflows.definitions import DeployStage, ManualStage, MitigateStage, TestStage

    if isinstance(stage, DeployStage | MitigateStage):
        st = stage.strategy
        parts: list[str] = [st.type]
        for key in ("percent", "bake", "batch", "max_fail", "pause"):
            if hasattr(st, key):
                parts.append(f"{key}={getattr(st, key)}")
        parts.append(f"concurrency={stage.concurrency}")
        if isinstance(stage, MitigateStage) and stage.only:
            parts.append(f"only={','.join(stage.only)}")
        if isinstance(stage, DeployStage) and stage.window:
            parts.append(f"window={stage.window}")
        return " ".join(parts)
    if isinstance(stage, TestStage):
        return "checks: " + ", ".join(stage.checks)
    if isinstance(stage, ManualStage):
        fields = ", ".join(f"{k}: {v}" for k, v in stage.fields.items())
        return f"{stage.question.strip()} ({fields})"
    return ""


def _json(wf: Workflow, source: Source | None) -> dict[str, Any]:
    data = wf.model_dump(mode="json")
    if source is not None:
        data["source"] = source.origin
        data["path"] = str(source.path)
    return data


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """List the workflows: built-in, and the workspace's own (which replace
    a built-in of the same name)."""
    from jupiter.workflows.loading import workflow_sources

    found = workflow_sources(state.home())
    if json:
        state.emit_json([_json(wf, src) for wf, src in found.values()])
        return
    from jupiter.workflows.loading import FALLBACK

    out = state.console()
    for name, (wf, src) in found.items():
        cats = ", ".join(wf.categories) or ("any other" if name == FALLBACK else "-")
        where = "built-in" if src.origin == "builtin" else str(src.path)
        extra = (" · auto start" if wf.auto_start else "") + (
            f" · window {wf.window}" if wf.window else ""
        )
        out.print(f"[bold]{name}[/bold]  ({where}; categories: {cats}){extra}")
        out.print(f"    {_summary(wf)}", markup=False)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Workflow name (see `jupiter workflows list`).")],
    json: JsonOpt = False,
) -> None:
    """Show one workflow's stages, in order, with their settings."""
    from jupiter.workflows.loading import workflow_named, workflow_sources

    wf = workflow_named(name, state.home())
    _, src = workflow_sources(state.home())[name]
    if json:
        state.emit_json(_json(wf, src))
        return
    _print(wf, src.origin if src.origin == "builtin" else str(src.path))


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="A workflow YAML file.")],
    json: JsonOpt = False,
) -> None:
    """Check a workflow file; errors name the file, line, stage and field."""
    from jupiter.workflows.loading import load_workflow_file, workflow_sources

    wf = load_workflow_file(file)
    replaces = wf.name in workflow_sources(None)
    if json:
        state.emit_json(
            {"valid": True, "file": str(file), "replaces_builtin": replaces} | _json(wf, None)
        )
        return
    note = f" (it replaces the built-in {wf.name!r} when placed in JUPITER_HOME/workflows/)"
    state.console().print(
        f"{file}: workflow {wf.name!r} is valid: {_summary(wf)}" + (note if replaces else "")
    )


def _print(wf: Workflow, origin: str) -> None:
    out = state.console()
    out.print(f"[bold]{wf.name}[/bold] ({origin})")
    if wf.description:
        out.print(wf.description)
    out.print(f"categories: {', '.join(wf.categories) or '-'}")
    out.print(f"auto start: {'yes' if wf.auto_start else 'no'}")
    if wf.window:
        out.print(f"window: {wf.window}")
    if wf.health.probes:
        out.print("probes: " + ", ".join(p.label for p in wf.health.probes))
    for i, stage in enumerate(wf.stages, 1):
        label = stage.label if stage.label == stage.kind else f"{stage.label} ({stage.kind})"
        detail = _stage_detail(stage)
        out.print(f"  {i}. {label}" + (f": {detail}" if detail else ""), markup=False)
