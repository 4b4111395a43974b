"""End to end on a local fleet of examples/host copies, each with its own
loopback health server (tests/fleet.py): a canary whose probe turns
unhealthy after the change, a latency regression, a maintenance window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jupiter.engine import Engine
from tests.fleet import running_fleet
from tests.remediations.fleetlib import applies, workflow

RULE = "SSHD-ROOT-LOGIN"
HEALTH = {
    "judge": "threshold",
    "interval": 0.05,
    "baseline_samples": 4,
    "samples": 4,
    "max_bake": 3,
    # These tests are not about latency: only a large regression counts (a
    # loaded test machine makes millisecond latencies noisy).
    "latency_ratio": 10,
}


def _hardened(path: Path) -> bool:
    return "PermitRootLogin no" in path.read_text()


def _canary(engine: Engine, **strategy: Any) -> None:
    workflow(
        engine.workspace.home,
        "canary",
        [
            {"kind": "snapshot"},
            {
                "kind": "deploy",
                "strategy": {"type": "canary", "percent": 20, "bake": 0.3, **strategy},
                "concurrency": 2,
            },
            {"kind": "verify"},
            {"kind": "health"},
        ],
        health=HEALTH,
    )


def test_unhealthy_canary_rolls_back_the_canaries_and_never_touches_the_rest(
    engine: Engine, tmp_path: Path
) -> None:
    with running_fleet(tmp_path / "fleet", 6, group="web") as fleet:
        engine.import_assets(fleet.assets_file)
        _canary(engine)
        # The second canary answers 500 once root login is disabled.
        fleet.prod[1].server.when("etc/ssh/sshd_config", "PermitRootLogin no", status=500)  # type: ignore[union-attr]
        before = fleet.snapshot()
        made = engine.remediations.create(group="web", only=[RULE], workflow="canary")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "rolled_back", info.to_json()
        result = info.result
        assert result is not None
        assert result["target"] == "web-02"
        assert "web-02" in result["reason"]
        assert result["system_status"] == "restored to pre-remediation state"
        assert fleet.snapshot() == before, "every changed target restored byte for byte"
        assert set(applies(engine)) == {"web-01", "web-02"}, "the rest was never touched"
        bake = [e for e in info.timeline or [] if e.name == "bake"]
        assert bake and bake[0].status == "fail"
        assert engine.audit_verify().ok


def test_latency_regression_after_the_deploy_rolls_everything_back(
    engine: Engine, tmp_path: Path
) -> None:
    with running_fleet(tmp_path / "fleet", 3, group="web", delay=0.05) as fleet:
        engine.import_assets(fleet.assets_file)
        workflow(
            engine.workspace.home,
            "roll",
            [
                {"kind": "snapshot"},
                {"kind": "deploy", "strategy": {"type": "rolling", "batch": 3}, "concurrency": 3},
                {"kind": "health"},
            ],
            health={**HEALTH, "latency_ratio": 1.2},
        )
        # Every target gets three times slower once the change lands (> +20%).
        fleet.when("etc/ssh/sshd_config", "PermitRootLogin no", slow=4.0)
        before = fleet.snapshot()
        made = engine.remediations.create(group="web", only=[RULE], workflow="roll")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "rolled_back", info.to_json()
        assert info.result is not None and "latency" in info.result["reason"]
        assert info.result["measured"]["metrics"], "the numbers the judge saw are kept"
        assert fleet.snapshot() == before


def test_healthy_canary_then_rolling_rest_completes(engine: Engine, tmp_path: Path) -> None:
    with running_fleet(tmp_path / "fleet", 5, group="web") as fleet:
        engine.import_assets(fleet.assets_file)
        _canary(engine, batch=2)
        made = engine.remediations.create(group="web", only=[RULE], workflow="canary")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "completed", info.result
        assert [t.batch for t in info.targets] == [1, 2, 2, 3, 3]
        assert all(
            "PermitRootLogin no" in t.file("etc/ssh/sshd_config").read_text() for t in fleet.prod
        )
        assert "baseline" not in info.to_json()["facts"]


def test_window_delays_the_deploy_until_the_worker_finds_it_open(
    engine: Engine, tmp_path: Path
) -> None:
    from jupiter import worker

    now = datetime.now(UTC)
    # A window of one hour starting two hours from now (UTC).
    start = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    day = start.strftime("%a")
    window = f"{day} {start:%H:%M}-{start + timedelta(hours=1):%H:%M} UTC"
    with running_fleet(tmp_path / "fleet", 2, group="web", servers=False) as fleet:
        engine.import_assets(fleet.assets_file)
        workflow(
            engine.workspace.home,
            "win",
            [{"kind": "snapshot"}, {"kind": "deploy", "window": window}],
        )
        before = fleet.snapshot()
        made = engine.remediations.create(group="web", only=[RULE], workflow="win")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "approved"
        assert info.due_at is not None and datetime.fromisoformat(info.due_at) == start
        assert fleet.snapshot() == before
        # A worker round before the window changes nothing ...
        assert worker.run_once(engine, now)["remediations"] == []
        assert engine.remediations.show(info.id).status == "approved"
        # ... one inside it deploys.
        done = worker.run_once(engine, start + timedelta(minutes=5))["remediations"]
        assert done == [{"remediation": info.id, "status": "completed"}]
        assert all(
            "PermitRootLogin no" in t.file("etc/ssh/sshd_config").read_text() for t in fleet.prod
        )


def test_blue_green_switches_and_a_failure_switches_back(engine: Engine, tmp_path: Path) -> None:
    with running_fleet(tmp_path / "fleet", 2, group="web", blue_green=True) as fleet:
        engine.import_assets(fleet.assets_file)
        workflow(
            engine.workspace.home,
            "bg",
            [
                {"kind": "snapshot"},
                {"kind": "deploy", "strategy": {"type": "blue-green"}},
                {"kind": "verify"},
            ],
        )
        made = engine.remediations.create(group="web", only=[RULE], workflow="bg")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "completed", info.to_json()
        for t in fleet.prod:
            assert (t.root / "current").readlink().name == "green"
            assert _hardened(t.root / "green/etc/ssh/sshd_config")
            assert not _hardened(t.root / "blue/etc/ssh/sshd_config"), "the old slot is kept"
        info = engine.remediations.rollback(info.id)
        assert info.status == "rolled_back"
        for t in fleet.prod:
            assert (t.root / "current").readlink().name == "blue"
            assert not _hardened(t.file("etc/ssh/sshd_config"))
        assert engine.audit_verify().ok


def test_blue_green_needs_the_layout(engine: Engine, tmp_path: Path) -> None:
    import pytest

    from jupiter.errors import InputError

    with running_fleet(tmp_path / "fleet", 1, group="web", servers=False) as fleet:
        engine.import_assets(fleet.assets_file)
        with pytest.raises(InputError, match="declares no blue_green layout"):
            engine.remediations.create(group="web", only=[RULE], strategy="blue-green")


def test_inconclusive_bake_waits_for_a_person_then_goes_on(engine: Engine, tmp_path: Path) -> None:
    import yaml

    with running_fleet(tmp_path / "fleet", 2, group="web") as fleet:
        # A metric the servers never export: every look is "no data".
        assets = [
            {
                "id": t.asset,
                "group": "web",
                "environment": "prod",
                "connection": t.connection,
                "probes": [
                    {
                        "kind": "metric",
                        "name": "queue",
                        "url": t.server.metrics_url,  # type: ignore[union-attr]
                        "metric": "app_queue_depth",
                        "max": 10,
                    }
                ],
            }
            for t in fleet.prod
        ]
        (tmp_path / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
        engine.import_assets(tmp_path / "assets.yaml")
        _canary(engine)
        made = engine.remediations.create(group="web", only=[RULE], workflow="canary")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "waiting_manual", info.to_json()
        assert info.facts["verdict"]["status"] == "inconclusive"
        assert info.facts["waiting"]["fields"] == {"continue": "bool"}
        assert [t.status for t in info.targets] == ["deployed", "pending"]
        info = engine.remediations.answer(info.id, {"continue": "true"})
        # The health stage after the deploy is inconclusive the same way.
        assert info.status == "waiting_manual"
        info = engine.remediations.answer(info.id, {"continue": "false"})
        assert info.status == "rolled_back"
        assert all(not _hardened(t.file("etc/ssh/sshd_config")) for t in fleet.prod)
