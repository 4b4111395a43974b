"""New SQLite workspaces copied from a migrated template (the test suite's
speed-up, jupiter.store.db.TEMPLATE_ENV) are still workspaces of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from jupiter.store.db import HEAD_REVISION, TEMPLATE_ENV, Database


def _facts(file: Path) -> tuple[str, str]:
    db = Database(f"sqlite:///{file}")
    try:
        db.migrate()
        with db.reading() as s:
            version = s.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            ident = s.execute(text("SELECT workspace_id FROM workspace_info")).scalar_one()
        return str(version), str(ident)
    finally:
        db.dispose()


def test_copies_are_at_head_with_their_own_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "templates"))
    first = _facts(tmp_path / "a" / "jupiter.db")
    second = _facts(tmp_path / "b" / "jupiter.db")
    assert (tmp_path / "templates" / f"schema-{HEAD_REVISION}.db").exists()
    assert first[0] == second[0] == HEAD_REVISION
    # Audit checkpoints name the workspace id: two workspaces never share one.
    assert first[1] != second[1]
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_an_existing_file_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEMPLATE_ENV, str(tmp_path / "templates"))
    file = tmp_path / "jupiter.db"
    _, ident = _facts(file)
    assert _facts(file)[1] == ident
