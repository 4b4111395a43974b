"""Blue-green assets in a remediation (docs/bluegreen.md).

An asset that declares ``blue_green`` is planned on its live slot, deployed
by copying the live slot to the idle one, fixing the idle slot through the
runs' one path and switching the link to it, and rolled back by switching
the link back (then the idle slot's files are restored from the run's
snapshot like any run). Which slots a run used is kept in the run's own
parameters (``blue_green: {live, idle}``), so a resumed or crashed
remediation knows what to switch back without any other state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from jupiter.models import BlueGreenLayout
from jupiter.targets.base import Target
from jupiter.targets.factory import open_target

if TYPE_CHECKING:
    from jupiter.engine import Engine
    from jupiter.targets.bluegreen import Slots


def layout_of(engine: Engine, asset: str) -> BlueGreenLayout | None:
    """The asset's blue-green layout, or None for an ordinary asset."""
    from jupiter.store.assets import asset_spec
    from jupiter.store.tables import AssetRow

    with engine.db.reading() as s:
        row = s.get(AssetRow, asset)
        return asset_spec(row).blue_green if row is not None else None


def slots_on(target: Target, layout: BlueGreenLayout, asset: str) -> Slots:
    from jupiter.remediations import bridges

    slots: Slots = bridges.slots(target, layout, asset=asset)
    return slots


@contextmanager
def live_target(engine: Engine, asset: str, connection: str) -> Iterator[Target]:
    """The live files a remediation scans, plans and verifies: the asset's
    root, or for a blue-green asset its live slot (plans are relative to a
    slot)."""
    layout = layout_of(engine, asset)
    root = open_target(connection)
    with closing(root):
        if layout is None:
            yield root
            return
        slots = slots_on(root, layout, asset)
        live = slots.slot_target(slots.live())
        with closing(live):
            yield live


class Deploying:
    """One blue-green deploy of one target: ``begin`` copies live to idle
    and opens the idle slot; ``finish`` switches the link to it."""

    def __init__(self, root: Target, layout: BlueGreenLayout, asset: str) -> None:
        self.slots = slots_on(root, layout, asset)
        self.live = self.slots.live()
        self.idle = self.slots.idle()

    def params(self) -> dict[str, Any]:
        return {"blue_green": {"live": self.live, "idle": self.idle}}

    def begin(self) -> Target:
        self.slots.prepare_idle()
        return self.slots.slot_target(self.idle)

    def finish(self) -> str:
        return self.slots.switch(self.idle)


def switch_back(engine: Engine, asset: str, connection: str, runs: list[Any]) -> list[str]:
    """Undo the switches of ``runs`` (newest first): where the link names a
    run's idle slot, point it back at that run's live slot. Returns what was
    done, for the rollback's proof."""
    layout = layout_of(engine, asset)
    used = [r.params["blue_green"] for r in runs if (r.params or {}).get("blue_green")]
    if layout is None or not used:
        return []
    done: list[str] = []
    root = open_target(connection)
    with closing(root):
        slots = slots_on(root, layout, asset)
        for step in reversed(used):
            if slots.live() == step["idle"]:
                slots.switch(step["live"])
                done.append(f"{slots.link} -> {step['live']} (was {step['idle']})")
    return done
