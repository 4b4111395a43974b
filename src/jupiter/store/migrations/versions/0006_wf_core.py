"""remediation workflows: remediations, their targets and timeline; asset settings

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupiter.store.tables

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = jupiter.store.tables.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=True))
    op.create_table(
        "remediations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("workflow", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("group_name", sa.String(length=200), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lease_holder", sa.String(length=300), nullable=True),
        sa.Column("heartbeat_at", _TS(timezone=True), nullable=True),
        sa.Column("expires_at", _TS(timezone=True), nullable=True),
        sa.Column("due_at", _TS(timezone=True), nullable=True),
        sa.Column("created_at", _TS(timezone=True), nullable=False),
        sa.Column("updated_at", _TS(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediations")),
    )
    op.create_index(op.f("ix_remediations_status"), "remediations", ["status"])
    op.create_index(op.f("ix_remediations_due_at"), "remediations", ["due_at"])
    op.create_table(
        "remediation_targets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("remediation_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(length=1000), nullable=False),
        sa.Column("fix_run_id", sa.Integer(), nullable=True),
        sa.Column("rollback_run_id", sa.Integer(), nullable=True),
        sa.Column("run_ids", sa.JSON(), nullable=False),
        sa.Column("plan_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("started_at", _TS(timezone=True), nullable=True),
        sa.Column("finished_at", _TS(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_remediation_targets_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["fix_run_id"], ["runs.id"], name=op.f("fk_remediation_targets_fix_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["remediation_id"],
            ["remediations.id"],
            name=op.f("fk_remediation_targets_remediation_id_remediations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rollback_run_id"],
            ["runs.id"],
            name=op.f("fk_remediation_targets_rollback_run_id_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediation_targets")),
        sa.UniqueConstraint(
            "remediation_id", "asset_id", name=op.f("uq_remediation_targets_remediation_id")
        ),
    )
    op.create_index(
        op.f("ix_remediation_targets_remediation_id"), "remediation_targets", ["remediation_id"]
    )
    op.create_table(
        "remediation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("remediation_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("started_at", _TS(timezone=True), nullable=False),
        sa.Column("finished_at", _TS(timezone=True), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["remediation_id"],
            ["remediations.id"],
            name=op.f("fk_remediation_events_remediation_id_remediations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediation_events")),
    )
    op.create_index(
        op.f("ix_remediation_events_remediation_id"), "remediation_events", ["remediation_id"]
    )


def downgrade() -> None:
    op.drop_table("remediation_events")
    op.drop_table("remediation_targets")
    op.drop_table("remediations")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("settings")
