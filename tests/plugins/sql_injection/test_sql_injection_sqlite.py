"""Rewrite the sqlite3 and SQLAlchemy fixtures, then run old and new code on real data.

Every fixed function must return the same rows as the original for ordinary
input, and treat an injection payload as data; the original must return
extra rows for the same payload (so each assertion can fail).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from tests.plugins.sql_injection import harness

ROWS = [
    (1, "alice", "alice@example.com"),
    (2, "bob", "bob@example.com"),
    (3, "carol", "carol@corp.example"),
    (4, "o'brien", "ob@example.com"),
]
INJECT = "x' OR '1'='1"


@pytest.fixture(scope="module")
def sqlite_modules(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ModuleType, ModuleType]:
    run = harness.fixed_fixture(tmp_path_factory.mktemp, "sqlite_app.py")
    original = harness.import_file(harness.HERE / "sqlite_app.py")
    fixed = harness.import_file(run.fixed_path)
    return run, original, fixed


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
    conn.executemany("INSERT INTO users VALUES (?, ?, ?)", ROWS)
    yield conn
    conn.close()


CASES: list[tuple[str, tuple[Any, ...], list[Any], tuple[Any, ...], list[Any]]] = [
    # function, ordinary args, rows, payload args, rows the payload must yield as data
    ("by_name_percent", ("alice",), [(1, "alice")], (INJECT,), []),
    ("by_name_fstring", ("bob",), [(2, "bob")], (INJECT,), []),
    ("by_name_and_email_format", ("alice", "alice@example.com"), [(1,)], ("x' OR 1=1 --", "y"), []),
    ("search_like_percent", ("li",), [("alice",)], ("zz%' OR '1'='1' OR name LIKE '",), []),
    ("search_like_format", ("bob",), [("bob",)], ("x' OR '1'='1' --",), []),
    ("by_id_concat", (2,), [(2, "bob")], ("0 OR 1=1",), []),
    (
        "newer_than",
        (2, "carol", 10),
        [(2,), (4,)],
        (2, "x' UNION SELECT 99 --", 10),
        [(2,), (3,), (4,)],
    ),
    ("by_name_concat", ("carol",), [(3,)], (INJECT,), []),
    ("by_name_local_variable", ("alice",), [(1, "alice")], (INJECT,), []),
    ("by_name_mapping", ("bob", "nobody"), [(2,)], (INJECT, "y"), []),
]


@pytest.mark.parametrize(
    ("func", "args", "rows", "payload", "payload_rows"), CASES, ids=[c[0] for c in CASES]
)
def test_fixed_function_same_rows_and_no_injection(
    sqlite_modules: tuple[Any, ModuleType, ModuleType],
    db: sqlite3.Connection,
    func: str,
    args: tuple[Any, ...],
    rows: list[Any],
    payload: tuple[Any, ...],
    payload_rows: list[Any],
) -> None:
    _, original, fixed = sqlite_modules
    old: Callable[..., list[Any]] = getattr(original, func)
    new: Callable[..., list[Any]] = getattr(fixed, func)
    assert old(db, *args) == rows
    assert new(db, *args) == rows
    assert new(db, *payload) == payload_rows
    injected = old(db, *payload)
    assert len(injected) > len(payload_rows), "the original code must be injectable"


def test_quote_in_data_breaks_original_and_works_fixed(
    sqlite_modules: tuple[Any, ModuleType, ModuleType], db: sqlite3.Connection
) -> None:
    _, original, fixed = sqlite_modules
    with pytest.raises(sqlite3.OperationalError):
        original.by_name_percent(db, "o'brien")
    assert fixed.by_name_percent(db, "o'brien") == [(4, "o'brien")]


def test_insert_with_number_and_payload(
    sqlite_modules: tuple[Any, ModuleType, ModuleType], db: sqlite3.Connection
) -> None:
    _, original, fixed = sqlite_modules
    payload = "eve', 'e@x'), (7, 'mallory"
    fixed.insert_user(db, "5", "dave", "d@example.com")  # %d accepted "5" → int 5
    fixed.insert_user(db, 6, payload, "m@example.com")
    assert db.execute("SELECT id, name FROM users WHERE id >= 5 ORDER BY id").fetchall() == [
        (5, "dave"),
        (6, payload),
    ]
    with pytest.raises(TypeError):
        original.insert_user(db, "5", "dave", "d@example.com")  # %d needs a number
    original.insert_user(db, 8, payload, "m@example.com")
    assert db.execute("SELECT count(*) FROM users WHERE id IN (7, 8)").fetchone() == (2,)


def test_unfixable_sites_left_alone_with_reasons(
    sqlite_modules: tuple[Any, ModuleType, ModuleType], db: sqlite3.Connection
) -> None:
    run, original, fixed = sqlite_modules
    reasons = [p.needs_manual or "" for p in run.manual]
    assert len(reasons) == 3
    assert any("allow-list" in r and "{column}" in r for r in reasons)
    assert any("IN (...)" in r for r in reasons)
    assert any("executemany" in r for r in reasons)
    for text in (
        'f"SELECT name FROM users ORDER BY {column}"',
        '"SELECT name FROM users WHERE id IN (%s)" % ",".join(ids)',
        '"INSERT INTO %s (id, name, email) VALUES (?, ?, ?)" % table',
    ):
        assert text in run.fixed
    # Untouched functions behave exactly as before.
    assert fixed.ordered_by(db, "name") == original.ordered_by(db, "name")
    assert fixed.all_names(db) == [(r[1],) for r in ROWS]
    assert fixed.by_name_safe(db, "bob") == [(2,)]


def test_sqlalchemy_text_rewritten_and_executed(tmp_path: Path) -> None:
    target = harness.copy_fixture(tmp_path, "sqlalchemy_app.py")
    run = harness.fix_all(target, "sqlalchemy_app.py")
    assert len(run.applied) == 3 and len(run.manual) == 1
    assert ".bindparams(name=name)" in run.fixed
    original = harness.import_file(harness.HERE / "sqlalchemy_app.py")
    fixed = harness.import_file(tmp_path / "sqlalchemy_app.py")
    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
            )
            conn.execute(
                sa.text("INSERT INTO users VALUES (:i, :n, :e)"),
                [{"i": i, "n": n, "e": e} for i, n, e in ROWS],
            )
        with engine.connect() as conn:
            for mod in (original, fixed):
                assert mod.by_name(conn, "alice") == [(1, "alice")]
                assert mod.search(conn, "o", 2) == [("bob",), ("carol",)]
                assert mod.by_email_local(conn, SimpleNamespace(email="bob@example.com")) == [(2,)]
            assert fixed.by_name(conn, INJECT) == []
            assert len(original.by_name(conn, INJECT)) == 4
            assert fixed.search(conn, "zz%' OR '1'='1' OR name LIKE '", 9) == []
            assert len(original.search(conn, "zz%' OR '1'='1' OR name LIKE '", 9)) == 4
            assert fixed.by_email_local(conn, SimpleNamespace(email=INJECT)) == []
            assert len(original.by_email_local(conn, SimpleNamespace(email=INJECT))) == 4
            assert fixed.sorted_names(conn, "id") == original.sorted_names(conn, "id")
    finally:
        engine.dispose()
