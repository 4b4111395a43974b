"""a run's holder (host, pid) in columns instead of inside its summary

Revision ID: 0004
Revises: 0003
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("holder_host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("holder_pid", sa.Integer(), nullable=True))
    # A run still running kept its holder inside the summary: move it over.
    conn = op.get_bind()
    runs = sa.table(
        "runs",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("summary", sa.JSON),
        sa.column("holder_host", sa.String),
        sa.column("holder_pid", sa.Integer),
    )
    for run_id, summary in conn.execute(
        sa.select(runs.c.id, runs.c.summary).where(runs.c.status == "running")
    ):
        data = json.loads(summary) if isinstance(summary, str) else (summary or {})
        host, pid = data.pop("host", None), data.pop("pid", None)
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(
                holder_host=host if isinstance(host, str) else None,
                holder_pid=pid if isinstance(pid, int) else None,
                summary=data,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("holder_pid")
        batch.drop_column("holder_host")
