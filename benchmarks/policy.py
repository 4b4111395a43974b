"""The policy engine: what one decision costs, and how fast findings are
prioritised by policy.

Compiles the built-in policy once, then times

* ``uncached``: ``--decisions`` remediation decisions on inputs that all
  differ (every call runs the Rego query): decisions/s, median and p99 µs,
* ``cached``: the same inputs again (the decision cache answers),
* ``prioritise``: ``--findings`` synthetic findings whose risk facts
  (severity, CVSS, KEV, internet-facing, criticality, environment) are drawn
  like a real inventory's; priority through the cache: findings/s.

Prints one JSON object on stdout.

    .venv/bin/python benchmarks/policy.py --decisions 2000 --findings 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

from jupiter import policy

SEVERITIES = ["critical", "high", "medium", "low", "info"]
ENVS = ["prod", "staging", "dev"]


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "per_second": round(len(samples) / (sum(samples) / 1e6)),
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1),
    }


def _time(ps: policy.PolicySet, name: str, inputs: list[dict[str, object]]) -> list[float]:
    out = []
    for data in inputs:
        start = time.perf_counter_ns()
        d = ps.evaluate(name, data)
        out.append((time.perf_counter_ns() - start) / 1000)
        assert d.ok, d.error
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=2000)
    ap.add_argument("--findings", type=int, default=100_000)
    args = ap.parse_args()
    rng = random.Random(7)
    start = time.perf_counter()
    ps = policy.load(None)
    compile_ms = (time.perf_counter() - start) * 1000
    inputs: list[dict[str, object]] = [
        {
            "asset": {"environment": rng.choice(ENVS), "criticality": rng.randint(1, 5)},
            "change": {"kind": rng.choice(["config", "dependency", "code"]), "bump": "patch"},
            "finding": {"severity": rng.choice(SEVERITIES), "id": i},
        }
        for i in range(args.decisions)
    ]
    uncached = _time(ps, "remediation", inputs)
    cached = _time(ps, "remediation", inputs)
    findings = [
        {
            "finding": {
                "severity": rng.choice(SEVERITIES),
                "cvss": rng.choice([None, 5.3, 7.5, 9.8]),
                "kev": rng.random() < 0.05,
            },
            "asset": {
                "environment": rng.choice(ENVS),
                "criticality": rng.randint(1, 5),
                "internet_facing": rng.random() < 0.2,
            },
        }
        for _ in range(args.findings)
    ]
    start = time.perf_counter()
    for data in findings:
        ps.evaluate("priority", data)
    took = time.perf_counter() - start
    print(
        json.dumps(
            {
                "benchmark": "policy",
                "engine": "regopy (Rego, in process)",
                "python": platform.python_version(),
                "compile_ms": round(compile_ms, 1),
                "uncached": _stats(uncached),
                "cached": _stats(cached),
                "prioritise": {
                    "findings": args.findings,
                    "seconds": round(took, 3),
                    "findings_per_second": round(args.findings / took),
                },
                "goal": {"median_us": 100, "findings_per_second": 10_000},
            }
        )
    )


if __name__ == "__main__":
    main()
