"""The staging test's ``health`` check: the staging asset's probes sampled
before the change (baseline) and after it, judged by the workflow's health
judge (:mod:`jupiter.health.judge`)."""

from __future__ import annotations

import importlib
import time
from typing import Any

from jupiter.health.model import HealthConfig, Probe, Sample
from jupiter.workflows.staging_checks import CheckResult, Outcome

UNAVAILABLE = "probes module unavailable"


def _modules() -> tuple[Any, Any] | None:
    """``(sample_all, make_judge)`` from the health package, when installed."""
    try:
        probes = importlib.import_module("jupiter.health.probes")
        judge = importlib.import_module("jupiter.health.judge")
    except ImportError:
        return None
    return probes.sample_all, judge.make_judge


class HealthWatch:
    """Baseline first (:meth:`baseline`), then :meth:`check` after the change."""

    def __init__(
        self, label: str, asset: str, root: str, probes: list[Probe], config: HealthConfig
    ) -> None:
        """``probes`` are the asset's own; the workflow's (``config.probes``) join them."""
        self.label, self.asset, self.root = label, asset, root
        self.own, self.config = list(probes), config
        self.probes: list[Probe] = [*probes, *config.probes]
        self.before: list[Sample] = []
        self.problem: str | None = None

    def _sample(self, rounds: int) -> list[Sample]:
        mods = _modules()
        assert mods is not None
        sample_all = mods[0]
        out: list[Sample] = []
        for i in range(rounds):
            if i:
                time.sleep(self.config.interval)
            out.extend(sample_all(self.probes, asset=self.asset, root=self.root))
        return out

    def baseline(self) -> None:
        if not self.probes or _modules() is None:
            return
        self.before = self._sample(self.config.baseline_samples)

    def check(self, skip_reason: str | None = None) -> CheckResult:
        if skip_reason is not None:
            return CheckResult("health", self.label, "skipped", skip_reason)
        if not self.probes:
            return CheckResult(
                "health", self.label, "skipped", f"no health probes declared for {self.asset}"
            )
        mods = _modules()
        if mods is None:
            return CheckResult("health", self.label, "skipped", UNAVAILABLE)
        after = self._sample(self.config.samples)
        judge = mods[1](self.config, self.own)
        verdict = judge.look({self.asset: self.before}, {self.asset: after}, {})
        details = {
            "verdict": verdict.to_json(),
            "baseline": [s.to_json() for s in self.before],
            "after": [s.to_json() for s in after],
        }
        outcome: Outcome = "passed" if verdict.status == "pass" else "failed"
        prefix = "" if verdict.status != "inconclusive" else "inconclusive: "
        return CheckResult("health", self.label, outcome, prefix + verdict.reason, details)
