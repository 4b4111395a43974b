"""Workspaces with an integrations.yaml, and events raised the way the
engine raises them (an audited state change in one transaction)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from jupiter import audit
from jupiter.engine import Engine
from jupiter.store.tables import AssetRow, OutboxRow, RunRow, utcnow
from jupiter.workspace import Workspace


def engine_with(tmp_path: Path, config: str | None, db_url: str | None = None) -> Engine:
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (home / "integrations.yaml").write_text(config)
    return Engine(Workspace(home, db_url or f"sqlite:///{home / 'jupiter.db'}"), actor="tester")


def raise_event(
    engine: Engine,
    action: str = "run.failed",
    data: dict[str, Any] | None = None,
    asset: dict[str, Any] | None = None,
) -> int:
    """A fix run (on ``asset`` when given) whose end is audited as ``action``."""
    now = utcnow()
    with engine.db.transaction() as s:
        if asset is not None and s.get(AssetRow, asset["id"]) is None:
            s.add(
                AssetRow(
                    name=asset["id"],
                    kind="host",
                    criticality=3,
                    owner=None,
                    tags=[],
                    connection=None,
                    created_at=now,
                    updated_at=now,
                    **{"environment": "prod", "group_name": None, **asset},
                )
            )
        run = RunRow(
            kind="fix",
            status=action.split(".", 1)[1] if action.startswith("run.") else "failed",
            asset_id=asset["id"] if asset else None,
            target="/srv/web",
            actor="tester",
            params={},
            summary={},
            rollback_of=None,
            started_at=now,
            finished_at=now,
        )
        s.add(run)
        s.flush()
        audit.record(s, "tester", action, f"run:{run.id}", data or {"steps": {"failed": 1}})
        return run.id


def outbox_rows(engine: Engine) -> list[OutboxRow]:
    with engine.db.reading() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))
