"""workspace id for signed audit checkpoints

Revision ID: 0003
Revises: 0002
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import jupiter.store.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "workspace_info",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_info")),
    )
    # Every workspace, new or upgraded, gets its id here, exactly once.
    op.bulk_insert(
        table, [{"id": 1, "workspace_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}]
    )


def downgrade() -> None:
    op.drop_table("workspace_info")
