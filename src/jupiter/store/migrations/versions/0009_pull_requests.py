"""pull_requests: pull/merge requests Jupiter delivered and keeps current

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupiter.store.tables

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pull_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("forge", sa.String(length=16), nullable=False),
        sa.Column("repo", sa.String(length=300), nullable=False),
        sa.Column("group_key", sa.String(length=500), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("base_branch", sa.String(length=255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fingerprints", sa.JSON(), nullable=False),
        sa.Column("finding_ids", sa.JSON(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=200), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("remediation_id", sa.Integer(), nullable=True),
        sa.Column("ci_status", sa.String(length=16), nullable=True),
        sa.Column("ci_detail", sa.JSON(), nullable=False),
        sa.Column("created_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", jupiter.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_pull_requests_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pull_requests")),
        sa.UniqueConstraint("forge", "repo", "group_key", name=op.f("uq_pull_requests_forge")),
    )
    op.create_index(op.f("ix_pull_requests_state"), "pull_requests", ["state"], unique=False)
    op.create_index(
        op.f("ix_pull_requests_remediation_id"), "pull_requests", ["remediation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pull_requests_remediation_id"), table_name="pull_requests")
    op.drop_index(op.f("ix_pull_requests_state"), table_name="pull_requests")
    op.drop_table("pull_requests")
