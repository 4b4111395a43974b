"""The one place the remediation runner calls into the workflow pieces
built beside it: workflow files (:mod:`jupiter.workflows.loading`),
maintenance windows, health probes and judge, staging tests, blue-green
slots and the worker. Each call goes through one function here, so a piece
can change its shape without the stages noticing."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupiter.errors import InputError
from jupiter.workflows.definitions import Workflow

if TYPE_CHECKING:
    from jupiter.health.model import HealthConfig, Sample, Verdict


def workflow_named(name: str, home: Path | None) -> Workflow:
    from jupiter.workflows import loading

    return loading.workflow_named(name, home)


def workflow_for_category(category: str, home: Path | None) -> Workflow:
    from jupiter.workflows import loading

    return loading.workflow_for_category(category, home)


def next_open(window: str, now: datetime) -> datetime | None:
    """None while ``window`` is open at ``now``; else when it next opens."""
    from jupiter.workflows.windows import Window

    parsed = Window.parse(window)
    return None if parsed.is_open(now) else parsed.next_open(now)


def sample_all(probes: list[Any], *, asset: str, root: str) -> list[Sample]:
    from jupiter.health.probes import sample_all as sample

    return sample(probes, asset=asset, root=root)


class Judging:
    """A health judge for one look-out (it keeps state across looks)."""

    def __init__(self, config: HealthConfig, probes: Iterable[Any] = ()) -> None:
        from jupiter.health.judge import make_judge

        self._judge = make_judge(config, probes)

    def look(
        self,
        baseline: dict[str, list[Sample]],
        changed: dict[str, list[Sample]],
        control: dict[str, list[Sample]],
    ) -> Verdict:
        return self._judge.look(baseline, changed, control)


def run_staging_test(**kwargs: Any) -> Any:
    try:
        staging = importlib.import_module("jupiter.workflows.staging")
    except ImportError:
        raise InputError(
            "this workflow has a 'test' stage, but the staging test "
            "(jupiter.workflows.staging) is not installed; use a workflow without one"
        ) from None
    return staging.run_staging_test(**kwargs)


def slots(target: Any, layout: Any) -> Any:
    from jupiter.targets.bluegreen import Slots

    return Slots(target, layout)


def register_due(name: str, fn: Callable[[Any, datetime], list[dict[str, Any]]]) -> None:
    from jupiter import worker

    worker.register_due(name, fn)
