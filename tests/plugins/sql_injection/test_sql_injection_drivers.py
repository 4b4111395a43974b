"""Drivers beyond sqlite3/psycopg: the placeholder style comes from the
driver, or, when no import settles it, from the module's own parameterised
calls; the rewritten code runs against real databases."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_service
from tests.plugins.sql_injection import harness

DSN = "postgresql://postgres@127.0.0.1:5432/test"
CONNINFO = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
ROWS = [(1, "alice", "alice@example.com"), (2, "bob", "bob@corp.example"), (3, "al", "al@x.io")]
INJECT = "x' OR '1'='1"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(CONNINFO, autocommit=True)
    except psycopg.OperationalError as exc:
        need_service(False, f"PostgreSQL at 127.0.0.1:5432 does not answer: {exc}")
        raise
    name = f"drv_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {name}")
        admin.execute(f"CREATE TABLE {name}.users (id integer PRIMARY KEY, name text, email text)")
        with admin.cursor() as cur:
            cur.executemany(f"INSERT INTO {name}.users VALUES (%s, %s, %s)", ROWS)
        try:
            yield name
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def _fixed(tmp_path: Path, name: str) -> harness.FixRun:
    return harness.fix_all(harness.copy_fixture(tmp_path, name), name)


@pytest.mark.postgres
def test_aiopg_module_keeps_its_own_named_style(tmp_path: Path, pg_schema: str) -> None:
    import psycopg

    run = _fixed(tmp_path, "aiopg_dao.py")
    assert len(run.applied) == 1 and not run.manual
    assert 'WHERE name = %(name)s ORDER BY id", {"name": name})' in run.fixed
    sys.modules.setdefault("aiopg", types.ModuleType("aiopg"))  # the wrapper, not under test
    original = harness.import_file(harness.HERE / "aiopg_dao.py")
    fixed = harness.import_file(tmp_path / "aiopg_dao.py")

    class Pool:  # aiopg's pool interface over psycopg 3's async connection
        @asynccontextmanager
        async def acquire(self) -> AsyncIterator[Any]:
            conn = await psycopg.AsyncConnection.connect(
                CONNINFO, options=f"-c search_path={pg_schema}"
            )
            async with conn:
                yield conn

    async def check() -> None:
        pool = Pool()
        for mod in (original, fixed):
            assert await mod.find_by_name(pool, "bob") == [(2, "bob")]
        assert await fixed.find_by_name(pool, INJECT) == []
        assert len(await original.find_by_name(pool, INJECT)) == 3

    asyncio.run(check())


@pytest.mark.postgres
def test_asyncpg_values_become_arguments(tmp_path: Path, pg_schema: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    run = _fixed(tmp_path, "asyncpg_repo.py")
    assert len(run.applied) == 3 and not run.manual
    assert 'await conn.fetchrow("SELECT id, name FROM users WHERE id = $1", user_id)' in run.fixed
    original = harness.import_file(harness.HERE / "asyncpg_repo.py")
    fixed = harness.import_file(tmp_path / "asyncpg_repo.py")

    async def check() -> None:
        conn = await asyncpg.connect(DSN, server_settings={"search_path": pg_schema})
        try:
            for mod in (original, fixed):
                assert await mod.names_like(conn, "al") == ["alice", "al"]
                assert await mod.count_domain(conn, "example.com") == 1
            assert tuple(await fixed.by_id(conn, 2)) == (2, "bob")
            assert await fixed.names_like(conn, INJECT) == []
            assert len(await original.names_like(conn, "x' OR 1=1 OR name LIKE '")) == 3
            assert tuple(await original.by_id(conn, "0 OR id = 3")) == (3, "al")
            with pytest.raises(asyncpg.DataError):
                await fixed.by_id(conn, "0 OR id = 3")  # a value, not SQL, now
        finally:
            await conn.close()

    asyncio.run(check())


def _sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id integer PRIMARY KEY, name text, email text)")
    conn.executemany("INSERT INTO users VALUES (?, ?, ?)", ROWS)
    conn.execute("CREATE TABLE post (id integer PRIMARY KEY, title text, author text)")
    conn.executemany(
        "INSERT INTO post VALUES (?, ?, ?)", [(1, "hello", "alice"), (2, "again", "bob")]
    )
    conn.commit()
    return conn


def test_style_inferred_from_the_modules_own_queries(tmp_path: Path) -> None:
    run = _fixed(tmp_path, "blog_views.py")
    assert len(run.applied) == 1 and not run.manual
    conn = _sqlite(tmp_path / "blog.db")
    db = types.ModuleType("blog_db")
    db.get_db = lambda: conn  # type: ignore[attr-defined]
    sys.modules["blog_db"] = db
    fixed = harness.import_file(tmp_path / "blog_views.py")
    original = harness.import_file(harness.HERE / "blog_views.py")
    assert fixed.posts_by("bob") == original.posts_by("bob") == [(2, "again")]
    assert fixed.posts_by(INJECT) == [] and len(original.posts_by(INJECT)) == 2


def test_oracledb_named_style_runs(tmp_path: Path) -> None:
    run = _fixed(tmp_path, "oracle_repo.py")
    assert 'WHERE email = :email", {"email": email})' in run.fixed
    # sqlite3 takes the same ':name' + dict form; oracledb itself is not here
    sys.modules.setdefault("oracledb", types.ModuleType("oracledb"))
    conn = _sqlite(tmp_path / "o.db")
    fixed = harness.import_file(tmp_path / "oracle_repo.py")
    assert fixed.by_email(conn, "bob@corp.example") == [(2, "bob")]
    assert fixed.by_email(conn, INJECT) == []


def test_unknown_driver_names_the_evidence_looked_at(tmp_path: Path) -> None:
    run = _fixed(tmp_path, "unknown_driver.py")
    assert not run.applied
    (plan,) = run.manual
    assert plan.needs_manual is not None
    assert "imports no known database driver" in plan.needs_manual
    assert "no parameterised call in the module shows the placeholder style" in plan.needs_manual


def test_flask_sqlalchemy_raw_sql_becomes_text_with_binds(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    run = _fixed(tmp_path, "flask_sqla_views.py")
    assert len(run.applied) == 2 and not run.manual
    assert "from sqlalchemy import text\n" in run.fixed
    _sqlite(tmp_path / "sqla.db").close()
    engine = create_engine(f"sqlite:///{tmp_path / 'sqla.db'}")

    class SQLAlchemy:  # Flask-SQLAlchemy's db object, reduced to its session
        def __init__(self) -> None:
            self.session = Session(engine)

    stub = types.ModuleType("flask_sqlalchemy")
    stub.SQLAlchemy = SQLAlchemy  # type: ignore[attr-defined]
    sys.modules["flask_sqlalchemy"] = stub
    fixed = harness.import_file(tmp_path / "flask_sqla_views.py")
    assert fixed.users_in("corp.example") == ["bob"]
    assert [tuple(r) for r in fixed.user_named("alice")] == [(1,)]
    assert fixed.user_named(INJECT) == []
    assert fixed.users_in("x' OR '1'='1") == []
    fixed.db.session.close()
    engine.dispose()


def test_pandas_read_sql_gets_params(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    run = _fixed(tmp_path, "pandas_report.py")
    assert len(run.applied) == 1 and not run.manual
    assert 'LIKE ? ORDER BY id", conn,\n        params=(f"%@{domain}",)\n' in run.fixed
    conn = _sqlite(tmp_path / "p.db")
    fixed = harness.import_file(tmp_path / "pandas_report.py")
    assert fixed.users_from(conn, "example.com")["name"].tolist() == ["alice"]
    assert fixed.users_from(conn, "x' OR '1'='1").empty


def test_style_from_the_projects_declared_driver(tmp_path: Path) -> None:
    """No import, no parameterised call: the requirements file decides."""
    (tmp_path / "requirements.txt").write_text("flask>=3\nPyMySQL==1.1.1\n")
    run = _fixed(tmp_path, "declared_dao.py")
    assert len(run.applied) == 1, [p.needs_manual for p in run.manual]
    assert 'cur.execute("SELECT id FROM users WHERE name = %s", (name,))' in run.fixed
    other = tmp_path / "again"
    other.mkdir()
    (other / "requirements.txt").write_text("psycopg2-binary\naiosqlite\n")
    run = _fixed(other, "declared_dao.py")
    (plan,) = run.manual
    assert "declares drivers of different styles" in (plan.needs_manual or "")
