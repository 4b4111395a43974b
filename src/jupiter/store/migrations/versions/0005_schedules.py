"""schedules: continuous detection (scan or ingest an asset or group on a timer)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupiter.store.tables

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.String(length=200), nullable=True),
        sa.Column("group_name", sa.String(length=200), nullable=True),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("scan", sa.Boolean(), nullable=False),
        sa.Column("ingest_argv", sa.JSON(), nullable=True),
        sa.Column("ingest_format", sa.String(length=32), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_run_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_schedules_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(op.f("ix_schedules_next_run_at"), "schedules", ["next_run_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_schedules_next_run_at"), table_name="schedules")
    op.drop_table("schedules")
