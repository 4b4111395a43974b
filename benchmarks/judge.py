"""Health judge benchmark (issue 20): synthetic sample streams, no network.

A fleet of 200 simulated targets is deployed canary-first (10%), then in
two rolling batches; the last batch has no untouched control left, so it is
judged against its baseline alone. Each phase is baked: a look every
interval, at least ``BAKE_LOOKS`` looks, extended while the verdict is
inconclusive up to ``max_bake`` (10 looks), then the run stops for a person
(``waiting_manual``). Every stream carries realistic noise: long-tailed
latency (log-normal plus a 1% heavy tail), per-target differences, a diurnal
shift and a random drift shared by the whole fleet, warm-up spikes on
freshly changed targets, and single blips (one target, one interval, 3x
latency and 20% errors) in a third of the runs.

The same streams (same seeds) are judged by the statistical judge and by the
plain rule "p95 > 1.2 x baseline p95" (looked at every interval, no
inconclusive). Prints ONE JSON object: per scenario and overall, the
false-rollback rate with its 95% upper bound (fault-free runs), detection
rate, detection time in intervals since the first change (median, p95), and
targets changed at detection, for both judges.

Usage: python benchmarks/judge.py [--runs-clean N] [--runs-fault N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sstats

from jupiter.health.model import HealthConfig
from jupiter.health.statistical import Batch, StatisticalJudge

TARGETS = 200
PHASES = (20, 90, 90)  # canary 10%, then two rolling batches
BAKE_LOOKS = 3
REQUESTS = 100  # per target per interval
BASELINE_LOOKS = 5
CONFIG = HealthConfig(interval=60, max_bake=600, min_samples=5, consecutive=2, confidence=0.98)
MAX_LOOKS = math.ceil(CONFIG.max_bake / CONFIG.interval)

FAULTS: dict[str, dict[str, float]] = {
    "errors +0.5pt": {"errors": 0.005},
    "errors +1pt": {"errors": 0.01},
    "errors +2pt": {"errors": 0.02},
    "errors +5pt": {"errors": 0.05},
    "latency +10%": {"latency": 0.10},
    "latency +20%": {"latency": 0.20},
    "latency +30%": {"latency": 0.30},
    "latency +50%": {"latency": 0.50},
    "variance x2": {"variance": 2.0},
    "crash": {"crash": 1},
    "probe timeouts": {"timeouts": 0.5},
    "metric source down": {"source_down": 1},
    "zero traffic": {"zero_traffic": 1},
}
#: Scenarios where the right outcome is to hold for a person, not to roll back.
NO_DATA = {"probe timeouts", "metric source down", "zero traffic"}
#: At or above the brief's thresholds: must be caught in >= 99% of runs.
MUST_CATCH = {"errors +1pt", "errors +2pt", "errors +5pt", "latency +20%", "latency +30%"}
MUST_CATCH |= {"latency +50%", "crash"}


@dataclass
class Fleet:
    mu: np.ndarray  # per-target log median latency
    err: np.ndarray  # per-target base error rate
    phase0: float  # diurnal phase
    drift: float  # shared log-latency drift per interval
    blip: tuple[int, int] | None  # (interval, target)


def make_fleet(rng: np.random.Generator) -> Fleet:
    blip = None
    if rng.random() < 1 / 3:
        blip = (int(rng.integers(1, 20)), int(rng.integers(0, TARGETS)))
    return Fleet(
        mu=math.log(0.05) + rng.normal(0, 0.1, TARGETS),
        err=0.004 * rng.lognormal(0, 0.3, TARGETS),
        phase0=float(rng.uniform(0, 2 * math.pi)),
        drift=float(rng.normal(0, 0.003)),
        blip=blip,
    )


def shared_shift(fleet: Fleet, t: int) -> float:
    """Diurnal (period 480 intervals, +-10%) plus drift, shared by all targets."""
    return 0.1 * math.sin(fleet.phase0 + 2 * math.pi * t / 480) + fleet.drift * t


def readings(
    rng: np.random.Generator,
    fleet: Fleet,
    targets: np.ndarray,
    t: int,
    fault: dict[str, float] | None,
    *,
    warm: np.ndarray | None = None,
) -> tuple[Batch, Batch]:
    """One interval of the http metric and the Prometheus metric for ``targets``
    (``fault`` set means these targets run the faulty change)."""
    fault = fault or {}
    counts = rng.poisson(REQUESTS, targets.size)
    if fault.get("zero_traffic"):
        counts[:] = 0
    sigma = np.full(targets.size, 0.5)
    if fault.get("variance"):
        sigma *= math.sqrt(fault["variance"])
    err = fleet.err[targets] + fault.get("errors", 0.0)
    lat_shift = math.log1p(fault.get("latency", 0.0))
    mu = fleet.mu[targets] + shared_shift(fleet, t) + lat_shift
    blip = np.zeros(targets.size, dtype=bool)
    if fleet.blip and fleet.blip[0] == t:
        blip = targets == fleet.blip[1]
    err = np.where(blip, err + 0.2, err)
    mu = np.where(blip, mu + math.log(3), mu)
    crashed = np.zeros(targets.size, dtype=bool)
    if fault.get("crash") and targets.size:
        crashed[0] = True
    errors = rng.binomial(np.where(crashed, 0, counts), np.clip(err, 0, 1))
    oks = np.where(crashed, 0, counts) - errors
    timeouts = np.zeros(targets.size, dtype=np.int64)
    if fault.get("timeouts"):
        timeouts = rng.binomial(oks, fault["timeouts"])
        oks = oks - timeouts
    idx = np.repeat(np.arange(targets.size), oks)
    z = rng.standard_normal(idx.size)
    lat = np.exp(mu[idx] + sigma[idx] * z)
    heavy = rng.random(idx.size) < 0.01
    lat[heavy] *= rng.uniform(3, 10, int(heavy.sum()))
    if warm is not None:
        cold = warm[idx] & (rng.random(idx.size) < 0.04)
        lat[cold] *= rng.uniform(2, 4, int(cold.sum()))
    web = Batch(
        latencies=lat,
        ok=int(oks.sum()),
        errors=int(errors.sum()),
        no_data=int(timeouts.sum()),
        down=int(counts[crashed].sum()),
        broken={f"t{int(targets[i])}": "connection refused" for i in np.flatnonzero(crashed)},
        first=float(t),
        last=float(t),
    )
    # The Prometheus metric: one reading per target, out of range 0.2% of the time.
    if fault.get("source_down"):
        queue = Batch(down=int(targets.size), first=float(t), last=float(t))
    else:
        bad = int(rng.binomial(targets.size, 0.002))
        queue = Batch(ok=int(targets.size) - bad, errors=bad, first=float(t), last=float(t))
    return web, queue


@dataclass
class Baseline:
    """Pre-deploy readings of every target, split per phase by target."""

    lat: np.ndarray
    lat_target: np.ndarray
    ok: np.ndarray
    errors: np.ndarray
    queue_errors: np.ndarray

    def of(self, targets: np.ndarray) -> tuple[Batch, Batch]:
        if targets.size == 0:
            return Batch(), Batch()
        mask = np.zeros(TARGETS, dtype=bool)
        mask[targets] = True
        first, last = float(-BASELINE_LOOKS), -1.0
        web = Batch(
            latencies=self.lat[mask[self.lat_target]],
            ok=int(self.ok[mask].sum()),
            errors=int(self.errors[mask].sum()),
            first=first,
            last=last,
        )
        bad = int(self.queue_errors[mask].sum())
        queue = Batch(
            ok=BASELINE_LOOKS * int(targets.size) - bad, errors=bad, first=first, last=last
        )
        return web, queue


def baseline(rng: np.random.Generator, fleet: Fleet) -> Baseline:
    everyone = np.arange(TARGETS)
    lats, idxs = [], []
    ok = np.zeros(TARGETS, dtype=np.int64)
    errors = np.zeros(TARGETS, dtype=np.int64)
    for t in range(-BASELINE_LOOKS, 0):
        counts = rng.poisson(REQUESTS, TARGETS)
        err = rng.binomial(counts, fleet.err)
        ok += counts - err
        errors += err
        idx = np.repeat(everyone, counts - err)
        z = rng.standard_normal(idx.size)
        lat = np.exp(fleet.mu[idx] + shared_shift(fleet, t) + 0.5 * z)
        heavy = rng.random(idx.size) < 0.01
        lat[heavy] *= rng.uniform(3, 10, int(heavy.sum()))
        lats.append(lat)
        idxs.append(idx)
    queue_errors = rng.binomial(BASELINE_LOOKS, 0.002, TARGETS)
    return Baseline(np.concatenate(lats), np.concatenate(idxs), ok, errors, queue_errors)


class PlainRule:
    """p95 > 1.2 x baseline p95, on every look; never inconclusive."""

    def __init__(self, base: Batch) -> None:
        self.base_p95 = (
            float(np.quantile(base.latencies, 0.95)) if base.latencies.size else math.nan
        )

    def look(self, web: Batch) -> str:
        if web.latencies.size == 0 or math.isnan(self.base_p95):
            return "pass"
        return "fail" if np.quantile(web.latencies, 0.95) > 1.2 * self.base_p95 else "pass"


def run_once(
    seed: int, run: int, fault: dict[str, float] | None, judge_kind: str
) -> dict[str, Any]:
    """One deploy; returns outcome (rolled_back|completed|waiting_manual),
    detection interval and targets changed at that point."""
    rng = np.random.default_rng([seed, run])
    fleet = make_fleet(rng)
    order = rng.permutation(TARGETS)
    base = baseline(rng, fleet)
    changed_n = 0
    t = 0
    for phase, size in enumerate(PHASES):
        batch = order[changed_n : changed_n + size]
        changed = order[: changed_n + size]
        total_changed = int(changed.size)
        control = order[changed_n + size :]
        if control.size == 0:
            # No untouched target left: the targets changed in earlier
            # batches (which passed their bake) serve as the same-window
            # control, so a fleet-wide drift cannot pass for a fault.
            control = order[:changed_n]
            changed = batch
        base_changed, base_control = base.of(changed), base.of(control)
        warm = np.isin(changed, batch)
        if judge_kind == "statistical":
            judge = StatisticalJudge(CONFIG)
        else:
            plain = PlainRule(base_changed[0])
        verdict = "inconclusive"
        for look in range(1, MAX_LOOKS + 1):
            t += 1
            lrng = np.random.default_rng([seed, run, phase, look])
            web_c, queue_c = readings(
                lrng, fleet, changed, t, fault, warm=warm if look == 1 else None
            )
            web_k, queue_k = (
                readings(lrng, fleet, control, t, None) if control.size else (None, None)
            )
            if judge_kind == "statistical":
                judge.observe(
                    "web", "http", changed=web_c, control=web_k,
                    baseline_changed=base_changed[0], baseline_control=base_control[0],
                )  # fmt: skip
                judge.observe(
                    "queue", "metric", changed=queue_c, control=queue_k,
                    baseline_changed=base_changed[1], baseline_control=base_control[1],
                )  # fmt: skip
                verdict = judge.decide().status
            else:
                verdict = plain.look(web_c)
            if verdict == "fail":
                return {"outcome": "rolled_back", "at": t, "changed": total_changed}
            if verdict == "pass" and look >= BAKE_LOOKS:
                break
        if verdict != "pass":
            return {"outcome": "waiting_manual", "at": t, "changed": total_changed}
        changed_n += size
    return {"outcome": "completed", "at": t, "changed": TARGETS}


def upper_bound(k: int, n: int, level: float = 0.95) -> float:
    """Clopper-Pearson one-sided upper bound of a rate k/n."""
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    return float(sstats.beta.ppf(level, k + 1, n - k))


def summarize(results: list[dict[str, Any]], *, faulted: bool) -> dict[str, Any]:
    n = len(results)
    rolled = [r for r in results if r["outcome"] == "rolled_back"]
    held = sum(r["outcome"] == "waiting_manual" for r in results)
    out: dict[str, Any] = {"runs": n}
    if not faulted:
        out["false_rollback_rate"] = round(len(rolled) / n, 4)
        out["false_rollback_upper95"] = round(upper_bound(len(rolled), n), 4)
        out["waiting_manual_rate"] = round(held / n, 4)
        return out
    out["detection_rate"] = round(len(rolled) / n, 4)
    out["waiting_manual_rate"] = round(held / n, 4)
    out["completed_rate"] = round(sum(r["outcome"] == "completed" for r in results) / n, 4)
    if rolled:
        at = np.array([r["at"] for r in rolled])
        out["detection_intervals_median"] = float(np.median(at))
        out["detection_intervals_p95"] = float(np.quantile(at, 0.95))
        out["changed_at_detection_max"] = max(r["changed"] for r in rolled)
        out["caught_within_canary_rate"] = round(
            sum(r["changed"] <= PHASES[0] for r in rolled) / n, 4
        )
    return out


def _scenario(job: tuple[int, str, str, int, int]) -> tuple[str, str, list[dict[str, Any]]]:
    seed, kind, label, first, count = job
    fault = FAULTS.get(label)
    return kind, label, [run_once(seed, first + i, fault, kind) for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-clean", type=int, default=600)
    parser.add_argument("--runs-fault", type=int, default=80, help="runs per fault scenario")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "judge",
        "targets": TARGETS,
        "phases": list(PHASES),
        "requests_per_target_interval": REQUESTS,
        "config": CONFIG.model_dump(exclude={"probes", "metrics"}),
        "runs_fault_free": args.runs_clean,
        "runs_per_fault": args.runs_fault,
    }
    kinds = ("statistical", "p95>1.2x")
    jobs: list[tuple[int, str, str, int, int]] = []
    for kind in kinds:
        chunk = 50
        for first in range(0, args.runs_clean, chunk):
            jobs.append((args.seed, kind, "fault-free", first, min(chunk, args.runs_clean - first)))
        for index, label in enumerate(FAULTS):
            jobs.append((args.seed, kind, label, 100_000 * (index + 1), args.runs_fault))
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with multiprocessing.Pool(max(1, args.jobs)) as pool:
        for kind, label, runs in pool.imap_unordered(_scenario, jobs):
            results.setdefault((kind, label), []).extend(runs)
    for kind in kinds:
        name = "statistical" if kind == "statistical" else "plain_p95_rule"
        clean = results[(kind, "fault-free")]
        section: dict[str, Any] = {"fault_free": summarize(clean, faulted=False), "faults": {}}
        all_fault: list[dict[str, Any]] = []
        must: list[dict[str, Any]] = []
        for label in FAULTS:
            runs = results[(kind, label)]
            section["faults"][label] = summarize(runs, faulted=True)
            if label in NO_DATA:
                continue
            all_fault += runs
            if label in MUST_CATCH:
                must += runs
        section["overall_faulted"] = summarize(all_fault, faulted=True)
        section["must_catch"] = summarize(must, faulted=True)
        no_data = [r for label in NO_DATA for r in results[(kind, label)]]
        section["no_data_rollbacks"] = sum(r["outcome"] == "rolled_back" for r in no_data)
        section["no_data_passed"] = sum(r["outcome"] == "completed" for r in no_data)
        report[name] = section
    report["goals"] = goals(report["statistical"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


def goals(section: dict[str, Any]) -> dict[str, bool]:
    """The issue's goals, checked on the statistical judge's numbers."""
    faults = section["faults"]
    must = section["must_catch"]
    return {
        "false_rollbacks<=1%": section["fault_free"]["false_rollback_rate"] <= 0.01,
        "false_rollbacks_upper95<=2%": section["fault_free"]["false_rollback_upper95"] <= 0.02,
        ">=20%_latency_or_>=1pt_errors_caught>=99%": must["detection_rate"] >= 0.99,
        "+10%_latency_triggers<=5%": faults["latency +10%"]["detection_rate"] <= 0.05,
        "median_detection<=2": all(
            faults[k].get("detection_intervals_median", 0) <= 2 for k in MUST_CATCH
        ),
        "p95_detection<=5": all(
            faults[k].get("detection_intervals_p95", 0) <= 5 for k in MUST_CATCH
        ),
        "outage_or_zero_traffic_never_rolls_back": section["no_data_rollbacks"] == 0,
        "only_the_canary_changed_at_detection>=99%": must.get("caught_within_canary_rate", 0)
        >= 0.99,
    }


if __name__ == "__main__":
    raise SystemExit(main())
