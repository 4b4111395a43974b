"""'%s' style fixes (psycopg 3, Django) executed against the PostgreSQL server.

Each test seeds its own schema on 127.0.0.1:5432 (database ``test``, user
``postgres``). Without the server the tests skip, unless
JUPITER_REQUIRE_SERVICES=1, when they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.plugins.sql_injection import harness

pytestmark = pytest.mark.postgres

CONNINFO = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
ROWS = [
    (1, "alice", "alice@example.com"),
    (2, "bob", "bob@example.com"),
    (3, "carol", "carol@corp.example"),
    (4, "xavier", "x@example.com"),
]
INJECT = "x' OR '1'='1"


@pytest.fixture
def schema() -> Iterator[str]:
    try:
        admin = psycopg.connect(CONNINFO, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("JUPITER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required but does not answer: {exc}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer: {exc}")
    name = f"sqli_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("CREATE TABLE {}.users (id integer PRIMARY KEY, name text, email text)").format(
                sql.Identifier(name)
            )
        )
        with admin.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {}.users VALUES (%s, %s, %s)").format(sql.Identifier(name)),
                ROWS,
            )
        try:
            yield name
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def test_psycopg_fixes_keep_rows_and_stop_injection(tmp_path: Path, schema: str) -> None:
    target = harness.copy_fixture(tmp_path, "psycopg_app.py")
    run = harness.fix_all(target, "psycopg_app.py")
    assert len(run.applied) == 3 and not run.manual
    assert "NOT LIKE 'x%%'" in run.fixed  # literal % doubled once parameters are passed
    original = harness.import_file(harness.HERE / "psycopg_app.py")
    fixed = harness.import_file(tmp_path / "psycopg_app.py")
    with psycopg.connect(CONNINFO, options=f"-c search_path={schema}") as conn:
        for mod in (original, fixed):
            assert mod.by_name(conn, "alice") == [(1, "alice")]
            assert mod.search(conn, "o") == [("bob",), ("carol",)]
            assert mod.by_id(conn, 2) == [(2, "bob")]
        assert fixed.by_name(conn, INJECT) == []
        assert len(original.by_name(conn, INJECT)) == 4
        assert fixed.search(conn, "zz%' OR '1'='1' OR name LIKE '") == []
        assert len(original.search(conn, "zz%' OR '1'='1' OR name LIKE '")) == 4
        assert len(original.by_id(conn, "0 OR 1=1")) == 3  # every row but xavier
        conn.rollback()
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            fixed.by_id(conn, "0 OR 1=1")  # now a value that is not an integer


def _django(schema: str) -> Any:
    django = pytest.importorskip("django", reason="Django is not installed in this venv")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "test",
                    "USER": "postgres",
                    "HOST": "127.0.0.1",
                    "PORT": "5432",
                }
            },
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    from django.apps import apps
    from django.db import connection

    # Both the original and the fixed module define the same model.
    apps.all_models["sqli_fixture"].clear()
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(f'SET search_path TO "{schema}"')
    return connection


def test_django_cursor_raw_and_extra_fixed(tmp_path: Path, schema: str) -> None:
    connection = _django(schema)
    target = harness.copy_fixture(tmp_path, "django_app.py")
    run = harness.fix_all(target, "django_app.py")
    assert len(run.applied) == 4 and not run.manual
    assert 'extra(where=["email = %s"], params=[email])' in run.fixed
    assert (
        '.raw("SELECT id, name FROM users WHERE name LIKE %s ORDER BY id", [f"%{term}%"])'
        in run.fixed
    )
    try:
        original = harness.import_file(harness.HERE / "django_app.py")
        _django(schema)
        fixed = harness.import_file(tmp_path / "django_app.py")
        for mod in (original, fixed):
            assert mod.by_name_cursor("bob") == [(2, "bob")]
            assert mod.search_raw("o") == ["bob", "carol"]
            assert mod.by_email_extra("carol@corp.example") == ["carol"]
            assert mod.by_name_local("alice") == [(1, "alice")]
        assert fixed.by_name_cursor(INJECT) == []
        assert len(original.by_name_cursor(INJECT)) == 4
        # A % in the payload would break the original's own %-substitution.
        assert fixed.search_raw("zz' OR '1'='1' OR name LIKE '") == []
        assert len(original.search_raw("zz' OR '1'='1' OR name LIKE '")) == 4
        assert fixed.by_email_extra(INJECT) == []
        assert len(original.by_email_extra(INJECT)) == 4
        assert fixed.by_name_local(INJECT) == []
        assert len(original.by_name_local(INJECT)) == 4
    finally:
        connection.close()
