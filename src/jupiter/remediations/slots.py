"""Where an asset's files are: its root, or — for an asset that declares
``blue_green`` — the live slot below it (see :mod:`jupiter.targets.bluegreen`).
Plans, snapshots, verification and in-place deploys all read the same
place; a blue-green deploy fixes the idle slot and switches the link."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from jupiter.models import BlueGreenLayout
from jupiter.remediations import bridges
from jupiter.targets.base import Target
from jupiter.targets.factory import open_target

if TYPE_CHECKING:
    from jupiter.engine import Engine


def layout_of(engine: Engine, asset: str) -> BlueGreenLayout | None:
    from jupiter.store.tables import AssetRow

    with engine.db.reading() as s:
        row = s.get(AssetRow, asset)
        data = (row.settings or {}).get("blue_green") if row is not None else None
    return BlueGreenLayout.model_validate(data) if data else None


@contextmanager
def files(engine: Engine, asset: str, connection: str) -> Iterator[Target]:
    """A target on the asset's files (the live slot of a blue-green asset)."""
    layout = layout_of(engine, asset)
    with closing(open_target(connection)) as root:
        if layout is None:
            yield root
            return
        slots = bridges.slots(root, layout)
        with closing(slots.slot_target(slots.live())) as live:
            yield live


def deploy_idle(
    engine: Engine,
    asset: str,
    connection: str,
    apply: Callable[[Target], Any],
    before_switch: Callable[[dict[str, str]], None],
) -> tuple[Any, dict[str, str]]:
    """Blue-green: copy the live slot to the idle one, ``apply(idle_target)``
    (a fix run with the reviewed plans; returns an outcome with ``ok``), and
    switch the link to the idle slot when it succeeded. Returns the outcome
    and ``{from, to}`` (empty when nothing was switched)."""
    layout = layout_of(engine, asset)
    assert layout is not None
    root = open_target(connection)
    # The slots and the link belong to the asset's root: hold its lock while
    # the idle slot is copied, fixed (the fix run locks the slot itself) and
    # switched to, so two deploys of one asset cannot interleave.
    with closing(root), _root_lock(engine, root):
        slots = bridges.slots(root, layout)
        slots.prepare_idle()
        idle = slots.idle()
        target = slots.slot_target(idle)
        with closing(target):
            outcome = apply(target)
        if not outcome.ok:
            return outcome, {}
        info = {"from": slots.live(), "to": idle}
        before_switch(info)
        slots.switch(idle)
        return outcome, info


def switch_back(engine: Engine, asset: str, connection: str, switch: dict[str, str]) -> bool:
    """Point the link back at the slot that was live before; True if it moved."""
    layout = layout_of(engine, asset)
    if layout is None or not switch:
        return False
    root = open_target(connection)
    with closing(root), _root_lock(engine, root):
        slots = bridges.slots(root, layout)
        if slots.live() != switch["to"]:
            return False
        slots.switch(switch["from"])
        return True


def _root_lock(engine: Engine, root: Target) -> Any:
    from jupiter.locks import Holder, TargetLock

    return TargetLock(engine.db, root, Holder.current("deploy", engine.actor))
