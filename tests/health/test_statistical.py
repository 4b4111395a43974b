"""The statistical judge through its Sample interface: synthetic readings
with a fixed seed, one look per interval, as a deploy's bake calls it."""

from __future__ import annotations

import itertools
import math

import numpy as np

from jupiter.health.judge import make_judge
from jupiter.health.model import CommandProbe, HealthConfig, HttpProbe, MetricProbe, Sample
from jupiter.health.statistical import StatisticalJudge
from tests.health.servers import Behaviour, Route, http_server

WEB = HttpProbe(name="web", url="http://127.0.0.1:1/health")
CFG = HealthConfig(probes=[WEB], interval=10, max_bake=100, min_samples=5, consecutive=2)
_clock = itertools.count()


def web(
    rng: np.random.Generator,
    n: int,
    *,
    scale: float = 1.0,
    errors: float = 0.0,
    base: float = 0.05,
) -> list[Sample]:
    out = []
    for latency in rng.lognormal(math.log(base * scale), 0.3, n):
        at = float(next(_clock))
        if rng.random() < errors:
            out.append(
                Sample("web", ok=False, at=at, latency=float(latency), status=500, cause="status")
            )
        else:
            out.append(Sample("web", ok=True, at=at, latency=float(latency), status=200))
    return out


def fleet(
    rng: np.random.Generator, names: list[str], n: int, **kw: float
) -> dict[str, list[Sample]]:
    return {name: web(rng, n, **kw) for name in names}


CANARY = ["c1", "c2"]
REST = [f"r{i}" for i in range(8)]


def bake(
    judge: StatisticalJudge,
    rng: np.random.Generator,
    looks: int,
    **fault: float,
) -> list[str]:
    base = fleet(rng, CANARY + REST, 40)
    statuses = []
    for _ in range(looks):
        verdict = judge.look(base, fleet(rng, CANARY, 40, **fault), fleet(rng, REST, 40))
        statuses.append(verdict.status)
        if verdict.status == "fail":
            break
    return statuses


def test_default_judge_is_statistical() -> None:
    assert isinstance(make_judge(CFG), StatisticalJudge)


def test_healthy_change_passes_every_look() -> None:
    rng = np.random.default_rng(1)
    assert bake(StatisticalJudge(CFG), rng, 6) == ["pass"] * 6


def test_thirty_percent_slower_fails_after_consecutive_looks_with_numbers() -> None:
    rng = np.random.default_rng(2)
    judge = StatisticalJudge(CFG)
    base = fleet(rng, CANARY + REST, 40)
    first = judge.look(base, fleet(rng, CANARY, 40, scale=1.3), fleet(rng, REST, 40))
    assert first.status == "inconclusive" and "look 1 of 2" in first.reason
    verdict = judge.look(base, fleet(rng, CANARY, 40, scale=1.3), fleet(rng, REST, 40))
    assert verdict.status == "fail", verdict.reason
    assert verdict.target in CANARY
    web_row = next(m for m in verdict.measured["metrics"] if m["metric"] == "web")
    shift = next(c for c in web_row["comparisons"] if c["check"] == "latency shift")
    primary = shift["primary"]
    assert primary["test"] == "mann-whitney-u" and primary["against"] == "control"
    assert 1.15 < primary["estimate"] < 1.5
    low, high = primary["interval"]
    assert low < primary["estimate"] < high
    assert primary["n_changed"] == 80 and primary["n_reference"] == 320
    assert primary["p_value"] < primary["alpha"]
    assert shift["confirm"]["against"].startswith("baseline")
    assert web_row["mode"] == "control and baseline"
    assert verdict.measured["rule"].startswith("significant and over the gate in 2")
    assert web_row["windows"]["changed"][0] is not None


def test_ten_percent_slower_is_under_the_gate() -> None:
    rng = np.random.default_rng(3)
    assert "fail" not in bake(StatisticalJudge(CFG), rng, 6, scale=1.1)


def test_a_single_blip_does_not_roll_back() -> None:
    rng = np.random.default_rng(4)
    judge = StatisticalJudge(CFG)
    base = fleet(rng, CANARY + REST, 40)
    statuses = []
    for look in range(5):
        changed = fleet(rng, CANARY, 40, scale=3.0 if look == 1 else 1.0)
        statuses.append(judge.look(base, changed, fleet(rng, REST, 40)).status)
    assert statuses[1] == "inconclusive" and "fail" not in statuses
    assert statuses[-1] == "pass"


def test_error_burst_fails_against_a_zero_error_baseline() -> None:
    rng = np.random.default_rng(5)
    statuses = bake(StatisticalJudge(CFG), rng, 4, errors=0.3)
    assert statuses[-1] == "fail" and len(statuses) <= 3


def test_crash_fails_at_once() -> None:
    rng = np.random.default_rng(6)
    judge = StatisticalJudge(CFG)
    base = fleet(rng, CANARY + REST, 20)
    changed = fleet(rng, CANARY, 20)
    changed["c2"] = [
        Sample("web", ok=False, at=float(next(_clock)), cause="unreachable", error="refused")
        for _ in range(5)
    ]
    verdict = judge.look(base, changed, fleet(rng, REST, 20))
    assert verdict.status == "fail" and verdict.target == "c2"
    assert verdict.measured["rule"] == "critical: probe failure or crash"


def test_command_probe_failure_fails_at_once_unless_it_failed_before() -> None:
    probe = CommandProbe(name="check", argv=["true"])
    cfg = HealthConfig(probes=[probe], min_samples=3)
    ok = [Sample("check", ok=True, at=float(i), status=0) for i in range(3)]
    bad = [Sample("check", ok=False, at=10.0, status=1, cause="exit", error="check exited 1")]
    verdict = make_judge(cfg).look({"a": ok}, {"a": bad}, {})
    assert verdict.status == "fail" and verdict.target == "a"
    pre = [Sample("check", ok=False, at=float(i), status=1, cause="exit") for i in range(3)]
    assert make_judge(cfg).look({"a": pre}, {"a": bad}, {}).status != "fail"


def test_no_data_is_inconclusive_never_fail() -> None:
    rng = np.random.default_rng(7)
    judge = StatisticalJudge(CFG)
    base = fleet(rng, CANARY + REST, 20)
    zero = judge.look(base, {}, fleet(rng, REST, 20))
    assert zero.status == "inconclusive" and "zero traffic" in zero.reason
    timeouts = {
        a: [Sample("web", ok=False, at=float(next(_clock)), cause="timeout") for _ in range(10)]
        for a in CANARY
    }
    slow = judge.look(base, timeouts, fleet(rng, REST, 20))
    assert slow.status == "inconclusive" and "timeouts" in slow.reason
    few = StatisticalJudge(CFG).look(base, {"c1": web(rng, 2)}, fleet(rng, REST, 20))
    assert few.status == "inconclusive" and "too few samples" in few.reason


def test_metric_source_down_is_inconclusive() -> None:
    probe = MetricProbe(name="queue", url="http://127.0.0.1:1/metrics", metric="q", max=10)
    cfg = HealthConfig(probes=[probe], min_samples=3)
    judge = make_judge(cfg)
    base = {a: [Sample("queue", ok=True, at=float(i), value=1.0) for i in range(5)] for a in "ab"}
    down = [
        Sample("queue", ok=False, at=50.0 + i, cause="unreachable", error="down") for i in range(3)
    ]
    verdict = judge.look(base, {"a": down}, {"b": down})
    assert verdict.status == "inconclusive" and "source down" in verdict.reason


def test_without_control_the_baseline_decides_and_says_so() -> None:
    rng = np.random.default_rng(8)
    judge = StatisticalJudge(CFG)
    base = {"only": web(rng, 60)}
    for _ in range(2):
        verdict = judge.look(base, {"only": web(rng, 40, scale=1.6)}, {})
    assert verdict.status == "fail", verdict.reason
    assert "baseline only (no control targets)" in verdict.reason
    healthy = StatisticalJudge(CFG).look(base, {"only": web(rng, 40)}, {})
    assert healthy.status == "pass" and "the baseline" in healthy.reason


def test_shared_slowdown_of_the_whole_fleet_is_not_the_change() -> None:
    rng = np.random.default_rng(9)
    judge = StatisticalJudge(CFG)
    base = fleet(rng, CANARY + REST, 40)
    for _ in range(4):
        verdict = judge.look(
            base, fleet(rng, CANARY, 40, scale=1.5), fleet(rng, REST, 40, scale=1.5)
        )
        assert verdict.status == "pass", verdict.reason


def test_judge_reads_real_probe_samples_from_a_server() -> None:
    from jupiter.health.probes import sample

    behaviour = Behaviour({"*": Route(delay=0.01)})
    with http_server(behaviour) as srv:
        probe = HttpProbe(name="web", url=srv.url + "/")
        cfg = HealthConfig(probes=[probe], min_samples=5, interval=1, max_bake=10)
        judge = make_judge(cfg)

        def read(n: int) -> list[Sample]:
            return [sample(probe, asset="x", root="/") for _ in range(n)]

        base = {"c": read(8), "r": read(8)}
        assert judge.look(base, {"c": read(8)}, {"r": read(8)}).status == "pass"
        behaviour.routes["*"] = Route(status=503)
        failing = [judge.look(base, {"c": read(8)}, {"r": read(0)}) for _ in range(2)]
    assert failing[-1].status == "fail" and "error rate" in failing[-1].reason
