"""Blue-green by hand on a local fleet: copy live to idle, fix the idle slot
with the engine, switch, watch health, switch back. (The remediation runner's
blue-green strategy drives the same calls.)"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from jupiter.engine import Engine
from jupiter.models import BlueGreenLayout
from jupiter.targets.bluegreen import Slots
from jupiter.targets.local import LocalTarget
from tests.fleet import running_fleet, tree_bytes


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_fix_idle_switch_unhealthy_switch_back(tmp_path: Path) -> None:
    engine = Engine.open(home=tmp_path / "home")
    with running_fleet(tmp_path / "fleet", 2, blue_green=True) as fleet:
        engine.import_assets(fleet.assets_file)
        sick, well = fleet.prod
        assert sick.server is not None and well.server is not None
        # The change makes one target's service fail once it is live.
        sick.server.when("current/etc/ssh/sshd_config", "PermitRootLogin no", status=500)
        blue_before = {t.asset: tree_bytes(t.root / "blue") for t in fleet.prod}

        previous: dict[str, str] = {}
        for t in fleet.prod:
            slots = Slots(LocalTarget(t.root), BlueGreenLayout(), asset=t.asset)
            idle = slots.idle()
            slots.prepare_idle()
            slot = slots.slot_target(idle)
            out = engine.fix(slot.describe(), asset=f"{t.asset}.{idle}", only=["SSHD-ROOT-LOGIN"])
            slot.close()
            assert out["status"] == "succeeded"
            # Fixed and verified in the idle slot; the live one is untouched.
            assert b"PermitRootLogin no" in (t.root / idle / "etc/ssh/sshd_config").read_bytes()
            assert tree_bytes(t.root / "blue") == blue_before[t.asset]
            assert status_of(t.server.health_url) == 200  # type: ignore[union-attr]
            previous[t.asset] = slots.switch(idle)

        assert {os.readlink(t.root / "current") for t in fleet.prod} == {"green"}
        assert status_of(sick.server.health_url) == 500
        assert status_of(well.server.health_url) == 200

        # Roll back the sick one: the old slot is live again, byte for byte.
        slots = Slots(LocalTarget(sick.root), BlueGreenLayout(), asset=sick.asset)
        assert slots.switch(previous[sick.asset]) == "green"
        assert status_of(sick.server.health_url) == 200
        assert tree_bytes(sick.root / "current") == blue_before[sick.asset]
        assert os.readlink(well.root / "current") == "green"
    engine.close()
