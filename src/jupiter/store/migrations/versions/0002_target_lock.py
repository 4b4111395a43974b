"""target leases: one exclusive lock row per target

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupiter.store.tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "target_leases",
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_target_leases_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_target_leases")),
    )


def downgrade() -> None:
    op.drop_table("target_leases")
