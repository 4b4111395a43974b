"""copilot: asset rollback points and copilot session context

Revision ID: 0011
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupiter.store.tables

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollback_points",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("asset_id", sa.String(length=200), nullable=False),
        sa.Column("connection", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("taken_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("restored_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("restored_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_rollback_points_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollback_points")),
    )
    op.create_index(
        op.f("ix_rollback_points_asset_id"), "rollback_points", ["asset_id"], unique=False
    )
    op.create_table(
        "copilot_sessions",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("updated_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "user_id", name=op.f("pk_copilot_sessions")),
    )


def downgrade() -> None:
    op.drop_table("copilot_sessions")
    op.drop_index(op.f("ix_rollback_points_asset_id"), table_name="rollback_points")
    op.drop_table("rollback_points")
