"""The statistical judge on a local fleet with real loopback health servers
(tests/fleet.py): the "change" is a line written into a canary's
sshd_config, which the server's rule turns into slowness or errors — the
same path a deploy takes. The deploy runner's end-to-end tests (rollback
restored byte for byte, waiting_manual) build on these."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.health.judge import make_judge
from jupiter.health.model import HealthConfig, HttpProbe, MetricProbe, Sample, Verdict
from jupiter.health.probes import sample
from tests.fleet import Fleet, FleetTarget, running_fleet

CHANGE = "etc/ssh/sshd_config"
LINE = "PermitRootLogin no"
PER_LOOK = 8


def probe_of(target: FleetTarget, kind: str = "http") -> HttpProbe | MetricProbe:
    assert target.server is not None
    if kind == "http":
        return HttpProbe(name="health", url=target.server.health_url, timeout=2)
    return MetricProbe(
        name="errors", url=target.server.metrics_url, metric="app_error_ratio", max=0.05
    )


def read(
    targets: list[FleetTarget], kind: str = "http", n: int = PER_LOOK
) -> dict[str, list[Sample]]:
    """Round-robin readings, so machine load hits every target alike."""
    out: dict[str, list[Sample]] = {t.asset: [] for t in targets}
    for _ in range(n):
        for t in targets:
            out[t.asset].append(sample(probe_of(t, kind), asset=t.asset, root=str(t.root)))
    return out


def change(targets: list[FleetTarget]) -> None:
    for t in targets:
        path = t.file(CHANGE)
        path.write_text(path.read_text() + f"\n{LINE}\n")


def setup(fleet: Fleet, delay: float = 0.2) -> tuple[list[FleetTarget], list[FleetTarget]]:
    # The servers' delay dominates the measured latency, so the client's own
    # overhead on a loaded machine cannot hide a 30% slowdown.
    for t in fleet.prod:
        assert t.server is not None
        t.server.delay = delay
        t.server.jitter = delay / 4
    return fleet.prod[:2], fleet.prod[2:]


CFG = HealthConfig(interval=5, max_bake=50, min_samples=5, consecutive=2)


def bake(
    cfg: HealthConfig,
    canary: list[FleetTarget],
    control: list[FleetTarget],
    looks: int,
    kind: str = "http",
    before_look: dict[int, object] | None = None,
) -> list[Verdict]:
    judge = make_judge(cfg)
    baseline = read(canary + control, kind)
    change(canary)
    verdicts: list[Verdict] = []
    for look in range(looks):
        hook = (before_look or {}).get(look)
        if callable(hook):
            hook()
        readings = read(canary + control, kind)
        verdict = judge.look(
            baseline,
            {t.asset: readings[t.asset] for t in canary},
            {t.asset: readings[t.asset] for t in control},
        )
        verdicts.append(verdict)
        if verdict.status == "fail":
            break
    return verdicts


@pytest.mark.soak  # the runner-level variant (tests/remediations) runs by default
def test_canaries_thirty_percent_slower_fail(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 6) as fleet:
        canary, control = setup(fleet)
        for t in canary:
            assert t.server is not None
            t.server.when(CHANGE, LINE, slow=1.3)
        verdicts = bake(CFG, canary, control, 4)
    last = verdicts[-1]
    assert last.status == "fail", [v.measured for v in verdicts]
    assert last.target in {t.asset for t in canary}
    assert "latency" in last.reason
    web = next(m for m in last.measured["metrics"] if m["metric"] == "health")
    assert web["mode"] == "control and baseline"


@pytest.mark.soak  # the runner-level variant (tests/remediations) runs by default
def test_healthy_noisy_change_with_one_blip_passes(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 6) as fleet:
        canary, control = setup(fleet)
        assert canary[0].server is not None
        server = canary[0].server

        def blip() -> None:
            server.delay = 0.8

        def recover() -> None:
            server.delay = 0.2

        verdicts = bake(CFG, canary, control, 4, before_look={1: blip, 2: recover})
    statuses = [v.status for v in verdicts]
    assert "fail" not in statuses, [v.reason for v in verdicts]
    assert statuses[-1] == "pass"


def test_metric_endpoint_stopped_during_the_bake_is_inconclusive(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 6, probe_kinds=("metric",)) as fleet:
        canary, control = setup(fleet, delay=0.0)

        def stop_all() -> None:
            for t in canary + control:
                assert t.server is not None
                t.server.stop()

        verdicts = bake(CFG, canary, control, 3, kind="metric", before_look={1: stop_all})
    assert verdicts[0].status == "pass", verdicts[0].reason
    assert [v.status for v in verdicts[1:]] == ["inconclusive", "inconclusive"]
    assert "source down" in verdicts[-1].reason


def test_5xx_burst_on_one_canary_fails_within_the_interval_limit(tmp_path: Path) -> None:
    with running_fleet(tmp_path, 6) as fleet:
        canary, control = setup(fleet, delay=0.0)
        assert canary[1].server is not None
        canary[1].server.when(CHANGE, LINE, status=500)
        verdicts = bake(CFG, canary, control, CFG.consecutive + 1)
    assert verdicts[-1].status == "fail", [v.reason for v in verdicts]
    assert len(verdicts) <= CFG.consecutive
    assert verdicts[-1].target == canary[1].asset
    assert "answered badly" in verdicts[-1].reason
