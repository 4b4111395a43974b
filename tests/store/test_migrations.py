"""Migrations and models agree, and the schema is created on first use."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jupiter.engine import Engine
from jupiter.errors import StoreError, WorkspaceError
from jupiter.store.db import HEAD_REVISION, Database
from jupiter.store.tables import Base


def test_models_match_migrations(engine: Engine) -> None:
    engine.init()
    with engine.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree; add a migration: {diff}"


def test_migrate_is_idempotent_and_at_head(engine: Engine) -> None:
    engine.init()
    engine.db.migrate()
    with engine.db.engine.connect() as conn:
        assert Database._current_revision(conn) == HEAD_REVISION


def test_unreachable_database_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match=r"cannot reach the database at .*127\.0\.0\.1:1"):
        db.migrate()
    with pytest.raises(WorkspaceError, match="cannot be parsed"):
        Database("not a url")
