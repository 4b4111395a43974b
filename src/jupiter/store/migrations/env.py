"""Alembic environment: Jupiter passes its own connection (see store/db.py)."""

from alembic import context

from jupiter.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Jupiter always passes one
    raise RuntimeError("run migrations through jupiter.store.db.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
