"""Database connection, migrations on first use, and the unit of work.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL is used
when ``JUPITER_DATABASE_URL`` says so. Repositories never commit: the caller
opens one :meth:`Database.transaction` per user action, so an action either
lands whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from jupiter.errors import StoreError, WorkspaceError

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0002"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    # A bigger page cache keeps index B-trees in memory during bulk ingest.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


class Database:
    """One database: engine, migrations and transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise WorkspaceError(
                f"database URL {url!r} cannot be parsed; use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST:PORT/DB"
            ) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        if self.dialect == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 5}
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise WorkspaceError(
                f"database URL {redact_url(url)} cannot be used ({exc}); "
                "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
            ) from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (cheap when it already is)."""
        try:
            with self.engine.connect() as conn:
                if self._current_revision(conn) == HEAD_REVISION:
                    return
        except OperationalError as exc:
            raise StoreError(
                f"cannot reach the database at {redact_url(self.url)} ({_reason(exc)}); "
                "check JUPITER_DATABASE_URL and that the server is running"
            ) from None
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(
                f"could not migrate the database at {redact_url(self.url)} ({_reason(exc)}); "
                "check that the database user may create tables"
            ) from None

    @staticmethod
    def _current_revision(conn: Any) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        session = self._session()
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            raise StoreError(
                f"the database refused the change ({_reason(exc)}); nothing was written"
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        session = self._session()
        try:
            yield session
        finally:
            # close() ends the transaction without expiring loaded objects,
            # so rows read here stay usable (detached) by the caller.
            session.close()

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return redact_url(self.url)

    def dispose(self) -> None:
        self.engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__
