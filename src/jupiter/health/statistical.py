"""The statistical health judge (issue 20): two comparisons per metric,
corrected for looking many times, three verdicts, every number shown.

Per metric and look:

* **Critical** — a changed target that crashed (every reading of its HTTP
  endpoint refused) or whose command probe failed, where its baseline was
  fine: ``fail`` at once.
* **No data** — no reading (zero traffic), mostly timeouts, the metric
  source down, or fewer than ``min_samples`` readings: ``inconclusive``,
  never ``pass`` and never ``fail``.
* **Tests** — the changed targets' readings of this look against the
  control targets' readings of the same look (the same window, so a shift
  shared by the whole fleet cancels), confirmed against the changed
  targets' own pre-deploy baseline corrected by how far the control drifted
  from its baseline. With no control group, the baseline decides alone.
  Latency: Mann-Whitney U with the Hodges-Lehmann ratio, plus a test of the
  p95 tail; errors (HTTP answers other than the expected status, metric
  readings out of range): Fisher's exact test on the counts. A test fails
  when it is significant *and* its estimate reaches the gate.
* **Repeated looks** — the error budget ``1 - confidence`` is spent evenly
  over the bake's planned looks (``max_bake / interval``) and the tests of
  a look (Bonferroni), and each look reads fresh readings, so a metric
  fails only after ``consecutive`` failing looks in a row: a blip never
  rolls back.

The latency tests ask whether the change is slower than ``ratio ** 0.5``
(1.095 for the default 1.2) — a smaller slowdown is tolerated however many
readings there are — and fail only when the estimate also reaches the gate
``ratio ** 0.75`` (1.147): a change of exactly the configured ratio has an
estimate below the ratio half of the time, so a gate at the ratio itself
would miss half of the changes it is configured to catch. The p95 tail test
is gated at the ratio itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from jupiter.health import stats
from jupiter.health.judge import AnyProbe, Collected, Samples, judged_probes
from jupiter.health.model import HealthConfig, Sample, Verdict

Kind = Literal["http", "command", "metric"]
GATE_POWER = 0.75
#: The latency tests' null hypothesis: a slowdown of up to ``ratio ** 0.5``
#: (1.095 for 1.2) is tolerated, so a small real slowdown cannot become
#: significant just because there are many readings.
TOLERATED_POWER = 0.5
#: Share of a look's readings that may time out before the look is
#: inconclusive (a timeout hides the latency it would have shown).
MAX_NO_DATA_SHARE = 0.2


@dataclass
class Batch:
    """One group's readings of one metric in one look (or a window of looks)."""

    latencies: stats.FloatArray = field(default_factory=lambda: np.empty(0))
    ok: int = 0
    errors: int = 0
    no_data: int = 0
    down: int = 0
    broken: dict[str, str] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None

    @property
    def total(self) -> int:
        return self.ok + self.errors

    @property
    def readings(self) -> int:
        return self.total + self.no_data + self.down

    @staticmethod
    def merge(batches: Iterable[Batch]) -> Batch:
        items = list(batches)
        out = Batch(
            latencies=np.concatenate([b.latencies for b in items]) if items else np.empty(0),
            ok=sum(b.ok for b in items),
            errors=sum(b.errors for b in items),
            no_data=sum(b.no_data for b in items),
            down=sum(b.down for b in items),
        )
        for b in items:
            out.broken.update(b.broken)
        firsts = [b.first for b in items if b.first is not None]
        lasts = [b.last for b in items if b.last is not None]
        out.first = min(firsts) if firsts else None
        out.last = max(lasts) if lasts else None
        return out

    def window(self) -> list[float | None]:
        return [self.first, self.last]


def batch_of(kind: Kind, by_asset: dict[str, list[Sample]], *, critical: bool) -> Batch:
    """Sort one group's samples of one probe into a Batch. With ``critical``,
    a target whose every HTTP reading was refused, or whose command probe
    failed, is listed in ``broken``."""
    out = Batch()
    latencies: list[float] = []
    times: list[float] = []
    for asset, items in by_asset.items():
        refused = 0
        for s in items:
            times.append(s.at)
            if s.ok:
                out.ok += 1
                if kind == "http" and s.latency is not None:
                    latencies.append(s.latency)
            elif s.cause in ("status", "range") or (kind == "command" and s.cause == "exit"):
                out.errors += 1
                if kind == "command" and critical:
                    out.broken[asset] = s.error or "the command probe failed"
            elif s.cause == "unreachable":
                out.down += 1
                refused += 1
            else:
                out.no_data += 1
        if kind == "http" and critical and items and refused == len(items):
            out.broken[asset] = items[-1].error or "the endpoint refused every reading"
    out.latencies = np.asarray(latencies, dtype=np.float64)
    out.first = min(times) if times else None
    out.last = max(times) if times else None
    return out


@dataclass
class _MetricState:
    kind: Kind
    changed: list[Batch] = field(default_factory=list)
    control: list[Batch] = field(default_factory=list)
    baseline_changed: Batch = field(default_factory=Batch)
    baseline_control: Batch = field(default_factory=Batch)
    failing_looks: int = 0


@dataclass
class MetricResult:
    metric: str
    status: Literal["pass", "failing", "fail", "inconclusive"]
    reason: str
    detail: dict[str, Any]
    target: str | None = None


class StatisticalJudge:
    """See the module docstring. One judge per bake: it keeps each metric's
    looks and its run of failing looks."""

    def __init__(self, config: HealthConfig, probes: Sequence[AnyProbe] = ()) -> None:
        self.config = config
        self.kinds: dict[str, Kind] = {p.label: p.kind for p in [*config.probes, *probes]}
        self.looks = 0
        self.planned_looks = max(1, math.ceil(config.max_bake / config.interval))
        self.metrics: dict[str, _MetricState] = {}
        self._baseline = Collected()
        self._changed = Collected()
        self._control = Collected()
        self._changed_assets: set[str] = set()
        self._control_assets: set[str] = set()

    # -- the Sample interface (Judge protocol) ------------------------------

    def look(self, baseline: Samples, changed: Samples, control: Samples) -> Verdict:
        self._baseline.add(baseline)
        new_changed = self._changed.add(changed)
        new_control = self._control.add(control)
        self._changed_assets |= set(changed)
        self._control_assets |= set(control)
        names = judged_probes(
            self.config, self._changed.probes() | self._baseline.probes() | self._control.probes()
        )
        for name in names:
            kind = self.kinds.get(name) or _infer_kind(name, self._changed, self._baseline)
            base = self._baseline.by_probe.get(name, {})
            base_changed = {a: v for a, v in base.items() if a in self._changed_assets}
            base_control = {a: v for a, v in base.items() if a not in self._changed_assets}
            self.observe(
                name,
                kind,
                changed=batch_of(kind, _group(new_changed, name), critical=True),
                control=batch_of(kind, _group(new_control, name), critical=False)
                if self._control_assets
                else None,
                baseline_changed=batch_of(kind, base_changed or base, critical=True),
                baseline_control=batch_of(kind, base_control, critical=False),
            )
        verdict = self.decide()
        if verdict.status == "fail" and verdict.target is None:
            verdict.target = self._worst_target(verdict.measured.get("decided_by_metric"))
        return verdict

    def _worst_target(self, metric: object) -> str | None:
        if not isinstance(metric, str):
            return None
        by_asset = self._changed.by_probe.get(metric, {})
        worst: tuple[float, str] | None = None
        for asset, items in by_asset.items():
            recent = items[-50:]
            bad = sum(not s.ok for s in recent) / len(recent) if recent else 0.0
            lat = [s.latency for s in recent if s.ok and s.latency is not None]
            score = bad * 1000 + (float(np.median(lat)) if lat else 0.0)
            if worst is None or score > worst[0]:
                worst = (score, asset)
        return worst[1] if worst else None

    # -- the numeric interface (also what the benchmark drives) -------------

    def observe(
        self,
        metric: str,
        kind: Kind,
        *,
        changed: Batch,
        control: Batch | None,
        baseline_changed: Batch | None = None,
        baseline_control: Batch | None = None,
    ) -> None:
        """Record one look's readings of ``metric`` (call :meth:`decide` after
        every metric of the look); a baseline given replaces the one held."""
        state = self.metrics.setdefault(metric, _MetricState(kind))
        state.changed.append(changed)
        state.control.append(control if control is not None else Batch())
        if baseline_changed is not None:
            state.baseline_changed = baseline_changed
        if baseline_control is not None:
            state.baseline_control = baseline_control

    def decide(self) -> Verdict:
        """The verdict of this look, from everything observed."""
        self.looks += 1
        results = [self._judge_metric(name, state) for name, state in sorted(self.metrics.items())]
        measured: dict[str, Any] = {
            "judge": "statistical",
            "look": self.looks,
            "planned_looks": self.planned_looks,
            "confidence": self.config.confidence,
            "consecutive": self.config.consecutive,
            "metrics": [{"metric": r.metric, "status": r.status, **r.detail} for r in results],
        }
        if not results:
            measured["rule"] = "no data"
            return Verdict("inconclusive", "no health readings yet", measured=measured)
        for r in results:
            if r.status == "fail":
                measured["rule"] = r.detail.get("rule")
                measured["decided_by_metric"] = r.metric
                return Verdict("fail", r.reason, target=r.target, measured=measured)
        waiting = [r for r in results if r.status in ("inconclusive", "failing")]
        if waiting:
            measured["rule"] = "; ".join(str(r.detail.get("rule")) for r in waiting)
            return Verdict("inconclusive", "; ".join(r.reason for r in waiting), measured=measured)
        measured["rule"] = "every test passed"
        return Verdict(
            "pass",
            "no metric of the changed targets is worse than "
            + ("the control group and the baseline" if self._has_control() else "the baseline"),
            measured=measured,
        )

    def _has_control(self) -> bool:
        return any(s.control and s.control[-1].readings for s in self.metrics.values())

    def _alpha(self, tests: int) -> float:
        return (1 - self.config.confidence) / self.planned_looks / tests

    def _window(self, looks: list[Batch]) -> tuple[Batch, int]:
        """The latest look, widened back until it holds ``min_samples``
        answered readings (low traffic) — fresh readings whenever there are
        enough, so consecutive looks are independent."""
        taken: list[Batch] = []
        for batch in reversed(looks):
            taken.append(batch)
            if sum(b.total for b in taken) >= self.config.min_samples:
                break
        return Batch.merge(taken), len(taken)

    def _judge_metric(self, name: str, st: _MetricState) -> MetricResult:
        cfg = self.config
        latest = st.changed[-1]
        pre_broken = st.baseline_changed.broken
        broken = {a: why for a, why in latest.broken.items() if a not in pre_broken}
        if broken:
            asset, why = sorted(broken.items())[0]
            what = "crashed" if st.kind == "http" else "failed its probe"
            info: dict[str, Any] = {
                "rule": "critical: probe failure or crash",
                "kind": st.kind,
                "broken": broken,
            }
            return MetricResult(name, "fail", f"{asset} {what}: {why}", info, target=asset)
        changed, span = self._window(st.changed)
        control, _ = self._window(st.control)
        base_c, base_ctl = st.baseline_changed, st.baseline_control
        detail: dict[str, Any] = {
            "kind": st.kind,
            "looks_in_window": span,
            "windows": {
                "changed": changed.window(),
                "control": control.window(),
                "baseline": base_c.window(),
            },
            "n": {
                "changed": changed.total,
                "control": control.total,
                "baseline": base_c.total,
                "no_data_changed": changed.no_data + changed.down,
            },
            "failing_looks": st.failing_looks,
        }
        waiting = self._no_data(name, changed, control, base_c)
        if waiting:
            detail["rule"] = waiting
            return MetricResult(name, "inconclusive", f"{name}: {waiting}", detail)
        has_control = control.total >= cfg.min_samples
        has_baseline = base_c.total >= cfg.min_samples
        detail["mode"] = (
            "control and baseline"
            if has_control and has_baseline
            else "control only (no baseline)"
            if has_control
            else "baseline only (no control targets)"
        )
        tests = 3 if st.kind == "http" and changed.latencies.size >= cfg.min_samples else 1
        alpha = self._alpha(tests)
        detail["alpha_rule"] = "(1 - confidence) / planned looks / tests"
        if has_control and span == 1 and cfg.consecutive > 1:
            # Changed and control readings are fresh every look, so the
            # consecutive looks a failure needs are independent: requiring c
            # of them at level a' bounds the false alarms over the bake by
            # looks * a'^c, so a' = a^(1/c) keeps the same budget.
            alpha = alpha ** (1 / cfg.consecutive)
            detail["alpha_rule"] += f", to the power 1/{cfg.consecutive} (fresh windows)"
        detail["alpha"] = alpha
        comparisons: list[dict[str, Any]] = []
        detail["comparisons"] = comparisons
        failing: list[str] = []
        for label, primary, confirm in self._tests(
            st.kind, changed, control, base_c, base_ctl, alpha
        ):
            if primary is None:
                continue
            row: dict[str, Any] = {"check": label, "primary": primary.to_json()}
            decided = primary.failing
            if confirm is not None:
                row["confirm"] = confirm.to_json()
                decided = decided and confirm.over_gate
            row["failing"] = decided
            comparisons.append(row)
            if decided:
                failing.append(_describe(label, primary))
        if not failing:
            st.failing_looks = 0
            detail["failing_looks"] = 0
            detail["rule"] = "within gates"
            return MetricResult(name, "pass", f"{name}: within gates", detail)
        st.failing_looks += 1
        detail["failing_looks"] = st.failing_looks
        summary = f"{name}: " + "; ".join(failing) + f" ({detail['mode']})"
        if st.failing_looks >= cfg.consecutive:
            detail["rule"] = (
                f"significant and over the gate in {st.failing_looks} consecutive looks"
            )
            return MetricResult(name, "fail", summary, detail)
        detail["rule"] = f"failing look {st.failing_looks} of {cfg.consecutive} needed"
        return MetricResult(
            name,
            "failing",
            f"{summary}, look {st.failing_looks} of {cfg.consecutive} needed to roll back",
            detail,
        )

    def _no_data(self, name: str, changed: Batch, control: Batch, base: Batch) -> str | None:
        cfg = self.config
        if changed.total == 0:
            if changed.down:
                return "source down: every reading of the changed targets was unreachable"
            if changed.no_data:
                return "probe timeouts: no reading of the changed targets answered"
            return "zero traffic: no readings from the changed targets"
        share = (changed.no_data + changed.down) / changed.readings
        if share > MAX_NO_DATA_SHARE:
            return f"probe timeouts or source down on {share:.0%} of the changed targets' readings"
        if changed.total < cfg.min_samples:
            return f"too few samples: {changed.total} of min_samples {cfg.min_samples}"
        if control.total < cfg.min_samples and base.total < cfg.min_samples:
            if control.down or base.down:
                return "source down: too few readings from the control group and the baseline"
            return (
                f"too few samples to compare with: control {control.total}, "
                f"baseline {base.total}, min_samples {cfg.min_samples}"
            )
        return None

    def _tests(
        self,
        kind: Kind,
        changed: Batch,
        control: Batch,
        base_c: Batch,
        base_ctl: Batch,
        alpha: float,
    ) -> Iterable[tuple[str, stats.Comparison | None, stats.Comparison | None]]:
        cfg = self.config
        m = cfg.min_samples
        has_control = control.total >= m
        has_base = base_c.total >= m
        gate = cfg.latency_ratio**GATE_POWER
        tolerated = cfg.latency_ratio**TOLERATED_POWER
        lat = stats.cap(changed.latencies, 1)
        control_lat = stats.cap(control.latencies, 2)
        base_lat = stats.cap(base_c.latencies, 3)
        base_ctl_lat = stats.cap(base_ctl.latencies, 4)
        if kind == "http" and lat.size >= m:
            ref_ok = has_control and control_lat.size >= m
            base_ok = has_base and base_lat.size >= m
            drift = 1.0
            if ref_ok and base_ctl_lat.size >= m:
                drift = float(np.median(control_lat) / np.median(base_ctl_lat))
            corrected = base_lat * drift if base_ok else None
            against_b = "baseline x control drift" if drift != 1.0 else "baseline"
            for label, test, g in (
                ("latency shift", stats.latency_shift, gate),
                ("latency p95", stats.latency_tail, cfg.latency_ratio),
            ):
                if ref_ok:
                    primary = test(
                        lat,
                        control_lat,
                        against="control",
                        alpha=alpha,
                        gate=g,
                        tolerated=tolerated,
                    )
                    confirm = (
                        test(
                            lat,
                            corrected,
                            against=against_b,
                            alpha=alpha,
                            gate=g,
                            tolerated=tolerated,
                        )
                        if corrected is not None
                        else None
                    )
                    yield label, primary, confirm
                elif corrected is not None:
                    yield (
                        label,
                        test(
                            lat,
                            corrected,
                            against="baseline",
                            alpha=alpha,
                            gate=g,
                            tolerated=tolerated,
                        ),
                        None,
                    )
        margin = cfg.error_margin
        if has_control:
            primary = stats.error_rate(
                changed.errors,
                changed.total,
                control.errors,
                control.total,
                against="control",
                alpha=alpha,
                gate=margin,
            )
            confirm = None
            if has_base:
                drift_e = (
                    control.errors / control.total - base_ctl.errors / base_ctl.total
                    if base_ctl.total >= m
                    else 0.0
                )
                ref_errors = max(0, round(base_c.errors + drift_e * base_c.total))
                confirm = stats.error_rate(
                    changed.errors,
                    changed.total,
                    ref_errors,
                    base_c.total,
                    against="baseline + control drift",
                    alpha=alpha,
                    gate=margin,
                )
            yield "error rate", primary, confirm
        elif has_base:
            yield (
                "error rate",
                stats.error_rate(
                    changed.errors,
                    changed.total,
                    base_c.errors,
                    base_c.total,
                    against="baseline",
                    alpha=alpha,
                    gate=margin,
                ),
                None,
            )


def _describe(label: str, c: stats.Comparison) -> str:
    low, high = c.interval
    if label == "error rate":
        return (
            f"error rate +{c.estimate * 100:.2f} points vs {c.against} "
            f"(interval {low * 100:+.2f}..{high * 100:+.2f}, p={c.p_value:.2g}, "
            f"gate +{c.gate * 100:.2f})"
        )
    return (
        f"{label} {c.estimate:.2f}x {c.against} (interval {low:.2f}..{high:.2f}, "
        f"p={c.p_value:.2g}, gate {c.gate:.3g}x)"
    )


def _group(new: list[tuple[str, Sample]], probe: str) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for asset, s in new:
        if s.probe == probe:
            out.setdefault(asset, []).append(s)
    return out


def _infer_kind(name: str, *groups: Collected) -> Kind:
    for group in groups:
        for items in group.by_probe.get(name, {}).values():
            for s in items:
                if s.value is not None or s.cause in ("range", "missing", "invalid"):
                    return "metric"
                if s.cause == "exit" or (s.status is not None and s.status < 100):
                    return "command"
                if s.status is not None or s.cause == "status":
                    return "http"
    return "http"
