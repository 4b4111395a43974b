"""The health judge: given probe samples from before the change (baseline),
from the changed targets and from untouched control targets, say ``pass``,
``fail`` (roll back) or ``inconclusive`` (wait, then ask a person).

Two judges share one interface (:class:`Judge`): ``threshold`` applies the
plain rules of the workflow issue (a probe fails; the error rate rises more
than ``error_rate`` over the baseline; p95 latency exceeds ``latency_ratio``
times the baseline's), and ``statistical`` (the default, see
:mod:`jupiter.health.statistical`) tests every metric against control and
baseline and corrects for looking many times. A judge keeps state across
looks, so one judge serves one bake.

Samples come as ``{asset id: [Sample, ...]}``. A look may pass either the
samples gathered since the previous look or everything so far: a sample
seen before is recognised (samples are values) and counted once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from jupiter.errors import InputError
from jupiter.health.model import CommandProbe, HealthConfig, HttpProbe, MetricProbe, Sample, Verdict

Samples = Mapping[str, Sequence[Sample]]
AnyProbe = HttpProbe | CommandProbe | MetricProbe

#: Causes that mean "no usable reading", not "the target is unhealthy".
NO_DATA = frozenset({"timeout", "invalid", "missing"})
#: Causes that mean the target itself is broken (a failed check, a crash).
BROKEN = frozenset({"exit", "range", "unreachable"})


class Judge(Protocol):
    config: HealthConfig

    def look(self, baseline: Samples, changed: Samples, control: Samples) -> Verdict:
        """Judge everything seen so far; call once per interval during a bake."""
        ...


def validate_config(config: HealthConfig, probes: Iterable[AnyProbe] = ()) -> None:
    """Refuse a health configuration the judge cannot use, in one sentence.

    ``probes`` are the asset-level probes that join the workflow's own; a
    metric must name one of them (by name or label)."""
    if not config.latency_ratio > 1:
        raise InputError(
            f"health ratio {config.latency_ratio} must be greater than 1 (1.2 means 20% slower)."
        )
    if not 0.5 < config.confidence < 1:
        raise InputError(
            f"health confidence {config.confidence} must be between 0.5 and 1 exclusive, "
            "such as 0.98."
        )
    if config.min_samples < 3:
        raise InputError(
            f"health min_samples {config.min_samples} is too small; "
            "no test can decide on fewer than 3."
        )
    if config.consecutive < 1:
        raise InputError(f"health consecutive {config.consecutive} must be at least 1.")
    if config.judge not in ("threshold", "statistical"):
        raise InputError(
            f"health judge {config.judge!r} is unknown; use 'statistical' or 'threshold'."
        )
    known = {p.label for p in [*config.probes, *probes]}
    for metric in config.metrics:
        if metric not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InputError(
                f"health metric {metric!r} names no probe; declared probes are: {names}."
            )


def make_judge(config: HealthConfig, probes: Iterable[AnyProbe] = ()) -> Judge:
    """A fresh judge for one bake (``config.judge`` picks which)."""
    extra = list(probes)
    validate_config(config, extra)
    if config.judge == "threshold":
        return ThresholdJudge(config, extra)
    from jupiter.health.statistical import StatisticalJudge

    return StatisticalJudge(config, extra)


class Collected:
    """Every distinct sample seen so far, per asset and probe, in arrival order."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, Sample]] = set()
        self.by_probe: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))

    def add(self, samples: Samples) -> list[tuple[str, Sample]]:
        """Record ``samples``; return the ones not seen before."""
        new: list[tuple[str, Sample]] = []
        for asset, items in samples.items():
            for s in items:
                key = (asset, s)
                if key in self._seen:
                    continue
                self._seen.add(key)
                self.by_probe[s.probe][asset].append(s)
                new.append(key)
        return new

    def probes(self) -> set[str]:
        return set(self.by_probe)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def judged_probes(config: HealthConfig, seen: Iterable[str]) -> list[str]:
    return sorted(config.metrics) if config.metrics else sorted(set(seen))


class ThresholdJudge:
    """The workflow issue's plain rules, per changed target against its own
    baseline (or the pooled baseline when it has none): any failed command or
    metric probe, or an unreachable endpoint, fails at once; the error rate
    may exceed the baseline's by at most ``error_rate``; p95 latency may be
    at most ``latency_ratio`` times the baseline's. Control targets are not
    read. No reading yet, or only timeouts, is inconclusive."""

    def __init__(self, config: HealthConfig, probes: Sequence[AnyProbe] = ()) -> None:
        self.config = config
        self.probes = list(probes)
        self.baseline = Collected()
        self.changed = Collected()
        self.looks = 0

    def look(self, baseline: Samples, changed: Samples, control: Samples) -> Verdict:
        del control  # the threshold rule only compares with the baseline
        self.looks += 1
        self.baseline.add(baseline)
        self.changed.add(changed)
        cfg = self.config
        measured: dict[str, object] = {"judge": "threshold", "look": self.looks, "metrics": []}
        metrics: list[dict[str, object]] = []
        measured["metrics"] = metrics
        waiting: list[str] = []
        names = judged_probes(cfg, self.changed.probes() | self.baseline.probes())
        if not names:
            return Verdict("inconclusive", "no health samples yet", measured=measured)
        for name in names:
            base_by_asset = self.baseline.by_probe.get(name, {})
            pooled = [s for items in base_by_asset.values() for s in items]
            for asset, items in sorted(self.changed.by_probe.get(name, {}).items()):
                base = base_by_asset.get(asset) or pooled
                broken = [s for s in items if not s.ok and s.cause in BROKEN]
                if broken:
                    failed: dict[str, object] = {
                        "metric": name,
                        "target": asset,
                        "rule": "probe failed",
                        "error": broken[-1].error,
                    }
                    metrics.append(failed)
                    return Verdict(
                        "fail",
                        f"probe {name} failed on {asset}: {broken[-1].error}",
                        target=asset,
                        measured=measured,
                    )
                usable = [s for s in items if s.cause not in NO_DATA]
                if not usable:
                    waiting.append(f"{name} on {asset}")
                    continue
                usable_base = [s for s in base if s.cause not in NO_DATA]
                rate = sum(not s.ok for s in usable) / len(usable)
                base_rate = (
                    sum(not s.ok for s in usable_base) / len(usable_base) if usable_base else 0.0
                )
                info: dict[str, object] = {
                    "metric": name,
                    "target": asset,
                    "n_changed": len(usable),
                    "n_baseline": len(usable_base),
                    "error_rate": rate,
                    "baseline_error_rate": base_rate,
                }
                metrics.append(info)
                if rate > base_rate + cfg.error_rate:
                    info["rule"] = "error rate above baseline + error_rate"
                    return Verdict(
                        "fail",
                        f"{name} error rate on {asset} is {rate:.1%}, baseline {base_rate:.1%} "
                        f"(allowed +{cfg.error_rate:.1%})",
                        target=asset,
                        measured=measured,
                    )
                lat = [s.latency for s in usable if s.ok and s.latency is not None]
                base_lat = [s.latency for s in usable_base if s.ok and s.latency is not None]
                if lat and base_lat:
                    p95, base_p95 = percentile(lat, 0.95), percentile(base_lat, 0.95)
                    info.update({"p95": p95, "baseline_p95": base_p95})
                    if base_p95 > 0 and p95 > cfg.latency_ratio * base_p95:
                        info["rule"] = "p95 latency above latency_ratio x baseline"
                        return Verdict(
                            "fail",
                            f"{name} p95 latency on {asset} is {p95 * 1000:.1f} ms, "
                            f"{p95 / base_p95:.2f}x the baseline's {base_p95 * 1000:.1f} ms "
                            f"(allowed {cfg.latency_ratio:g}x)",
                            target=asset,
                            measured=measured,
                        )
        if waiting:
            return Verdict(
                "inconclusive",
                "no usable reading yet from " + ", ".join(waiting),
                measured=measured,
            )
        if not metrics:
            return Verdict(
                "inconclusive", "no samples from the changed targets yet", measured=measured
            )
        return Verdict("pass", "every changed target is within the thresholds", measured=measured)
