"""The one place the remediation runner calls into the workflow pieces
built beside it: workflow files (:mod:`jupiter.workflows.loading`),
maintenance windows, health probes and judge, staging tests, blue-green
slots and the worker. Each call goes through one function here, so a piece
can change its shape without the runner noticing."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupiter.errors import InputError, NotFoundError
from jupiter.workflows.definitions import Workflow

if TYPE_CHECKING:
    from jupiter.health.model import HealthConfig, Sample, Verdict

DEFAULT = {
    "name": "default",
    "description": "Snapshot, deploy in rolling batches, verify by re-detection, notify.",
    "stages": [
        {"kind": "snapshot"},
        {"kind": "deploy", "strategy": {"type": "rolling", "batch": 1, "max_fail": 0}},
        {"kind": "verify"},
        {"kind": "notify", "event": "remediation.completed"},
    ],
}


def _module(name: str) -> Any:
    """A workflow piece's module (built beside this one; imported by name so
    the runner works, and says what is missing, while a piece is absent)."""
    return importlib.import_module(name)


def _home_workflows(home: Path | None) -> dict[str, Workflow]:
    from jupiter.yamlfile import read_yaml

    out = {"default": Workflow.model_validate(DEFAULT)}
    if home is not None and (home / "workflows").is_dir():
        for path in sorted((home / "workflows").glob("*.yaml")):
            wf = Workflow.model_validate(read_yaml(path, "", "fix the workflow file"))
            out[wf.name] = wf
    return out


def workflow_named(name: str, home: Path | None) -> Workflow:
    try:
        loading = _module("jupiter.workflows.loading")
    except ImportError:
        known = _home_workflows(home)
        if name not in known:
            raise NotFoundError(
                f"no workflow named {name!r}; known workflows: {', '.join(sorted(known))}"
            ) from None
        return known[name]
    wf: Workflow = loading.workflow_named(name, home)
    return wf


def workflow_for_category(category: str, home: Path | None) -> Workflow:
    try:
        loading = _module("jupiter.workflows.loading")
    except ImportError:
        return _home_workflows(home)["default"]
    wf: Workflow = loading.workflow_for_category(category, home)
    return wf


def next_open(window: str, now: datetime) -> datetime | None:
    """None while ``window`` is open at ``now``; else when it next opens."""
    try:
        windows = _module("jupiter.workflows.windows")
    except ImportError:
        if window.strip() == "always":
            return None
        raise InputError(
            f"maintenance window {window!r} needs jupiter.workflows.windows, which is not "
            "installed; remove the window or install it"
        ) from None
    parsed = windows.Window.parse(window)
    if parsed.is_open(now):
        return None
    when: datetime = parsed.next_open(now)
    return when


def sample_all(probes: list[Any], *, asset: str, root: str) -> list[Sample]:
    taken: list[Sample] = _module("jupiter.health.probes").sample_all(
        probes, asset=asset, root=root
    )
    return taken


class Judging:
    """A health judge for one deploy (keeps state across looks)."""

    def __init__(self, config: HealthConfig) -> None:
        self._judge = _module("jupiter.health.judge").make_judge(config)

    def look(
        self,
        baseline: dict[str, list[Sample]],
        changed: dict[str, list[Sample]],
        control: dict[str, list[Sample]],
    ) -> Verdict:
        verdict: Verdict = self._judge.look(baseline, changed, control)
        return verdict


def run_staging_test(**kwargs: Any) -> Any:
    try:
        run = _module("jupiter.workflows.staging").run_staging_test
    except ImportError:
        raise InputError(
            "this workflow has a 'test' stage, but the staging test "
            "(jupiter.workflows.staging) is not installed; use a workflow without one"
        ) from None
    return run(**kwargs)


def slots(target: Any, layout: Any) -> Any:
    return _module("jupiter.targets.bluegreen").Slots(target, layout)


def register_due(name: str, fn: Callable[[Any, datetime], list[dict[str, Any]]]) -> bool:
    try:
        worker = _module("jupiter.worker")
    except ImportError:
        return False
    worker.register_due(name, fn)
    return True
