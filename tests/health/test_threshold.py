"""The threshold judge (issue 9's rules) on samples read from real servers."""

from __future__ import annotations

import pytest

from jupiter.errors import InputError
from jupiter.health.judge import ThresholdJudge, make_judge, validate_config
from jupiter.health.model import HealthConfig, HttpProbe, Sample
from jupiter.health.probes import sample
from tests.health.servers import Behaviour, Route, http_server


def read(url: str, n: int, asset: str) -> list[Sample]:
    return [sample(HttpProbe(name="web", url=url), asset=asset, root="/") for _ in range(n)]


def test_threshold_passes_a_healthy_target_and_fails_a_slow_one() -> None:
    # Wide margins: a loaded machine adds tens of ms to any single reading.
    behaviour = Behaviour({"*": Route(delay=0.1)})
    cfg = HealthConfig(judge="threshold", latency_ratio=3)
    with http_server(behaviour) as srv:
        base = {"web-1": read(srv.url, 8, "web-1")}
        judge = make_judge(cfg)
        assert isinstance(judge, ThresholdJudge)
        ok = judge.look(base, {"web-1": read(srv.url, 8, "web-1")}, {})
        assert ok.status == "pass", ok.reason
        behaviour.routes["*"] = Route(delay=0.8)
        slow = judge.look(base, {"web-1": read(srv.url, 8, "web-1")}, {})
    assert slow.status == "fail" and slow.target == "web-1"
    assert "p95 latency" in slow.reason
    row = slow.measured["metrics"][-1]
    assert row["p95"] > 3 * row["baseline_p95"]


def test_threshold_error_rate_and_crash() -> None:
    behaviour = Behaviour()
    # Latency is not what this test is about: a loaded machine must not decide it.
    cfg = HealthConfig(judge="threshold", error_rate=0.2, latency_ratio=100)
    with http_server(behaviour) as srv:
        base = {"web-1": read(srv.url, 10, "web-1")}
        judge = make_judge(cfg)
        behaviour.routes["*"] = Route(status=500)
        few = read(srv.url, 1, "web-1")
        behaviour.routes["*"] = Route()
        fine = read(srv.url, 9, "web-1")
        assert judge.look(base, {"web-1": few + fine}, {}).status == "pass"  # 10% < 0+20%
        behaviour.routes["*"] = Route(status=500)
        bad = read(srv.url, 5, "web-1")
        verdict = judge.look(base, {"web-1": bad}, {})  # 6/15 = 40%
        assert verdict.status == "fail" and "error rate" in verdict.reason
        url = srv.url
    crashed = make_judge(cfg).look(base, {"web-1": read(url, 1, "web-1")}, {})
    assert crashed.status == "fail" and "unreachable" in crashed.reason


def test_threshold_inconclusive_without_readings() -> None:
    judge = make_judge(HealthConfig(judge="threshold"))
    assert judge.look({}, {}, {}).status == "inconclusive"
    timeout = Sample("web", ok=False, at=1.0, cause="timeout", error="no answer")
    assert judge.look({}, {"a": [timeout]}, {}).status == "inconclusive"


def test_samples_passed_twice_are_counted_once() -> None:
    judge = make_judge(HealthConfig(judge="threshold", error_rate=0.3))
    base = {"a": [Sample("web", ok=True, at=float(i), latency=0.01) for i in range(4)]}
    bad = [Sample("web", ok=False, at=10.0, status=500, cause="status")]
    good = [Sample("web", ok=True, at=11.0 + i, latency=0.01) for i in range(3)]
    assert judge.look(base, {"a": bad + good}, {}).status == "pass"  # 1/4 errors
    assert judge.look(base, {"a": bad + good}, {}).status == "pass"  # same samples again


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latency_ratio": 1.0}, "greater than 1"),
        ({"latency_ratio": 0.8}, "greater than 1"),
        ({"confidence": 0.5}, "between 0.5 and 1"),
        ({"confidence": 1.0}, "between 0.5 and 1"),
        ({"min_samples": 2}, "too small"),
        ({"metrics": ["latency"]}, "names no probe"),
    ],
)
def test_bad_config_is_one_sentence(change: dict[str, object], message: str) -> None:
    cfg = HealthConfig(probes=[HttpProbe(name="web", url="http://127.0.0.1:1/")]).model_copy(
        update=change
    )
    with pytest.raises(InputError, match=message) as caught:
        make_judge(cfg)
    text = str(caught.value)
    assert text.count(". ") == 0 and text.endswith(".")


def test_metric_may_name_an_asset_probe() -> None:
    cfg = HealthConfig(metrics=["api"])
    validate_config(cfg, [HttpProbe(name="api", url="http://127.0.0.1:1/")])
