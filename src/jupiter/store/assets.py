"""Asset repository. Never commits: the caller's transaction does."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from jupiter.errors import NotFoundError
from jupiter.models import AssetKind, AssetSpec, Environment, Severity
from jupiter.priority import priority_score
from jupiter.store.tables import AssetRow, FindingRow, utcnow


def asset_to_json(row: AssetRow) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "environment": row.environment,
        "criticality": row.criticality,
        "owner": row.owner,
        "tags": list(row.tags),
        "group": row.group_name,
        "connection": row.connection,
        "registered": row.registered,
    }


_SETTINGS = ("probes", "tests", "blue_green", "window")


def spec_settings(spec: AssetSpec) -> dict[str, object] | None:
    """The workflow fields of a spec (probes, tests, blue_green, window) as
    stored in ``assets.settings``; None when none is set."""
    dumped = spec.model_dump(mode="json", include=set(_SETTINGS))
    data = {k: v for k, v in dumped.items() if v not in (None, [])}
    return data or None


def asset_spec(row: AssetRow) -> AssetSpec:
    """The spec an asset row stands for, workflow settings included."""
    return AssetSpec.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "kind": row.kind,
            "environment": row.environment,
            "criticality": row.criticality,
            "owner": row.owner,
            "tags": list(row.tags),
            "group": row.group_name,
            "connection": row.connection,
            **(row.settings or {}),
        }
    )


def upsert_asset(session: Session, spec: AssetSpec) -> tuple[AssetRow, bool]:
    """Create or update an asset from its spec; returns (row, created)."""
    now = utcnow()
    row = session.get(AssetRow, spec.id)
    created = row is None
    if row is None:
        row = AssetRow(id=spec.id, created_at=now)
        session.add(row)
    row.name = spec.name or spec.id
    row.kind = spec.kind.value
    row.environment = spec.environment.value
    row.criticality = spec.criticality
    row.owner = spec.owner
    row.tags = list(spec.tags)
    row.group_name = spec.group
    row.connection = spec.connection
    row.registered = True
    row.settings = spec_settings(spec)
    row.updated_at = now
    session.flush()
    if not created:
        rescore_findings(session, row)
    return row, created


def create_unregistered(session: Session, asset_id: str) -> AssetRow:
    """The asset ``asset_id``, created as unregistered when it does not exist.

    ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent ingest naming the
    same asset may create it first; then its row is used."""
    now = utcnow()
    values = {
        "id": asset_id,
        "name": asset_id,
        "kind": AssetKind.HOST.value,
        "environment": Environment.DEV.value,
        "criticality": 3,
        "owner": None,
        "tags": [],
        "group_name": None,
        "connection": None,
        "registered": False,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(AssetRow).values(values).on_conflict_do_nothing(index_elements=["id"]))
    row = session.get(AssetRow, asset_id, populate_existing=True)
    if row is None:  # pragma: no cover - inserted or already there, in this transaction
        raise NotFoundError(f"asset {asset_id!r} vanished while it was being created; try again")
    return row


def rescore_findings(session: Session, asset: AssetRow) -> None:
    """Recompute priorities after an asset's criticality or environment changed."""
    rows = session.execute(
        select(FindingRow.id, FindingRow.severity, FindingRow.cvss_score).where(
            FindingRow.asset_id == asset.id
        )
    ).all()
    env = Environment(asset.environment)
    updates = [
        {
            "id": r.id,
            "priority": priority_score(Severity(r.severity), r.cvss_score, asset.criticality, env),
        }
        for r in rows
    ]
    if updates:
        session.execute(update(FindingRow), updates)


def get_asset(session: Session, asset_id: str) -> AssetRow:
    row = session.get(AssetRow, asset_id)
    if row is None:
        raise NotFoundError(
            f"no asset with id {asset_id!r}; see `jupiter assets list` or import it with "
            "`jupiter assets import`"
        )
    return row


def list_assets(session: Session) -> list[AssetRow]:
    return list(session.scalars(select(AssetRow).order_by(AssetRow.id)))
