"""Blue-green through the remediation runner on a local fleet (tests/fleet.py):
plan on the live slot, fix a copy in the idle slot, switch the link; when a
target turns unhealthy after the switch, every switched target switches
back and the old slots are live again, byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

from jupiter.engine import Engine
from tests.fleet import Fleet, running_fleet, tree_bytes
from tests.remediations.fleetlib import use_app_plugin, workflow


def app_fleet(fleet: Fleet) -> None:
    """etc/app.conf in every live slot, for the quick AppFix remediator."""
    for t in fleet.targets:
        (t.root / "blue/etc/app.conf").write_text("mode=insecure\n")


def test_blue_green_deploy_switches_to_the_fixed_slot(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    engine = sqlite_engine
    with running_fleet(tmp_path / "fleet", 2, blue_green=True, servers=False) as fleet:
        app_fleet(fleet)
        blue = {t.asset: tree_bytes(t.root / "blue") for t in fleet.targets}
        engine.import_assets(fleet.assets_file)
        use_app_plugin(engine)
        workflow(
            engine.workspace.home,
            "bg",
            [
                {"kind": "snapshot"},
                {"kind": "deploy", "strategy": {"type": "blue-green"}},
                {"kind": "verify"},
            ],
        )
        made = engine.remediations.create(group="web-fleet", workflow="bg")
        assert made.remediation is not None
        assert made.remediation.targets[0].steps, made.to_json()  # planned on the live slot
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "completed", info.to_json()
        for t in fleet.targets:
            assert os.readlink(t.root / "current") == "green"
            assert (t.root / "current/etc/app.conf").read_text() == "mode=secure\n"
            assert tree_bytes(t.root / "blue") == blue[t.asset]  # kept for switching back
        assert all("switched from blue to green" in t.detail for t in info.targets)
        assert engine.audit_verify().ok


def test_unhealthy_after_the_switch_switches_every_target_back(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    engine = sqlite_engine
    with running_fleet(tmp_path / "fleet", 2, blue_green=True) as fleet:
        app_fleet(fleet)
        sick = fleet.prod[1].server
        assert sick is not None
        sick.when("current/etc/app.conf", "mode=secure", status=500)
        blue = {t.asset: tree_bytes(t.root / "blue") for t in fleet.targets}
        engine.import_assets(fleet.assets_file)
        use_app_plugin(engine)
        workflow(
            engine.workspace.home,
            "bg",
            [
                {"kind": "snapshot"},
                {"kind": "deploy", "strategy": {"type": "blue-green", "bake": 1}},
                {"kind": "verify"},
            ],
            health={
                "judge": "threshold",
                "interval": 0.1,
                "baseline_samples": 2,
                "samples": 2,
            },
        )
        made = engine.remediations.create(group="web-fleet", workflow="bg")
        assert made.remediation is not None
        info = engine.remediations.run(made.remediation.id)
        assert info.status == "rolled_back", info.to_json()
        assert "health error rate on web-fleet-02" in str(info.to_json()["reason"])
        assert sick.requests > 0
        for t in fleet.targets:
            assert os.readlink(t.root / "current") == "blue", t.asset
            assert tree_bytes(t.root / "current") == blue[t.asset]
        assert {t.status for t in info.targets} == {"rolled_back"}
        assert engine.audit_verify().ok
