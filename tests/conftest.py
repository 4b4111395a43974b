"""Shared fixtures: workspaces on SQLite and on the real PostgreSQL server.

A test that needs a service skips with a clear reason when the service is
absent, except when ``JUPITER_REQUIRE_SERVICES=1`` (as in CI): then the skip
becomes a failure, so a service test can never be silently skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """New SQLite workspaces start as a copy of one migrated file instead of
    replaying every migration (jupiter.store.db.TEMPLATE_ENV); CLI
    subprocesses inherit it. Tests of migrations themselves start from files
    they make, which a template never replaces."""
    import tempfile

    from jupiter.store.db import TEMPLATE_ENV

    if TEMPLATE_ENV not in os.environ:
        os.environ[TEMPLATE_ENV] = folder = tempfile.mkdtemp(prefix="jupiter-schema-")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


PG_URL = os.environ.get("JUPITER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def services_required() -> bool:
    return os.environ.get("JUPITER_REQUIRE_SERVICES") == "1"


def need_service(available: bool, reason: str) -> None:
    """Skip (or, with JUPITER_REQUIRE_SERVICES=1, fail) when a service is missing."""
    if available:
        return
    if services_required():
        pytest.fail(f"{reason} (JUPITER_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


_pg_state: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when the test server answers, else why not (cached per session)."""
    if "problem" not in _pg_state:
        import psycopg

        dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        try:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["problem"] = None
        except psycopg.Error as exc:
            _pg_state["problem"] = f"PostgreSQL at {PG_URL} is not reachable: {exc}".strip()
    return _pg_state["problem"]


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    yield from pg_schema()


def pg_schema() -> Iterator[str]:
    """The generator behind ``pg_schema_url``, for fixtures of wider scope."""
    problem = postgres_problem()
    need_service(problem is None, problem or "")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jupiter.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def engine(db_url: str, tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(Workspace(tmp_path / "home", db_url), actor="tester")
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(
        Workspace(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'jupiter.db'}"),
        actor="tester",
    )
    try:
        yield eng
    finally:
        eng.close()


def run_cli(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``jupiter`` command in a subprocess."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("JUPITER_HOME", "JUPITER_DATABASE_URL")
    }
    full_env.update({"JUPITER_HOME": str(home), "JUPITER_ACTOR": "cli-tester", "COLUMNS": "200"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jupiter.cli.app", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=120,
        cwd=ROOT,
    )


# --- the reliability suite's counts (tests/reliability/counts.py) ------------
# Tests count in whichever pytest-xdist worker runs them; each worker hands its
# counts to the controller, which prints the sum once.


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.reliability.counts import COUNTS

    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["reliability_counts"] = dict(COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    from tests.reliability.counts import COUNTS

    COUNTS.update(getattr(node, "workeroutput", {}).get("reliability_counts", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.reliability.counts import COUNTS

    if COUNTS:
        terminalreporter.section("reliability counts")
        for key in sorted(COUNTS):
            terminalreporter.write_line(f"{key}: {COUNTS[key]}")
