"""The staging test's ``health`` check: the staging asset's probes sampled
before the change (baseline) and after it, judged by the workflow's health
judge (:mod:`jupiter.health.judge`)."""

from __future__ import annotations

import time

from jupiter.health.judge import make_judge, validate_config
from jupiter.health.model import HealthConfig, Probe, Sample
from jupiter.health.probes import check_probe, sample_all
from jupiter.workflows.staging_checks import CheckResult, Outcome


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

    def _sample(self, rounds: int) -> list[Sample]:
        out: list[Sample] = []
        for i in range(rounds):
            if i:
                time.sleep(self.config.interval)
            out.extend(sample_all(self.probes, asset=self.asset, root=self.root))
        return out

    def baseline(self) -> None:
        """Refuse a configuration or probe that cannot work (InputError,
        before anything changed), then sample the baseline."""
        if not self.probes:
            return
        validate_config(self.config, self.own)
        for probe in self.probes:
            check_probe(probe, asset=self.asset, root=self.root)
        self.before = self._sample(self.config.baseline_samples)

    def check(self, skip_reason: str | None = None) -> CheckResult:
        if skip_reason is not None:
            return CheckResult("health", self.label, "skipped", skip_reason)
        if not self.probes:
            return CheckResult(
                "health", self.label, "skipped", f"no health probes declared for {self.asset}"
            )
        after = self._sample(self.config.samples)
        judge = make_judge(self.config, self.own)
        verdict = judge.look({self.asset: self.before}, {self.asset: after}, {})
        details = {
            "verdict": verdict.to_json(),
            "baseline": [s.to_json() for s in self.before],
            "after": [s.to_json() for s in after],
        }
        outcome: Outcome = "passed" if verdict.status == "pass" else "failed"
        prefix = "" if verdict.status != "inconclusive" else "inconclusive: "
        return CheckResult("health", self.label, outcome, prefix + verdict.reason, details)
