"""Database connection, migrations on first use, and the unit of work.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL is used
when ``JUPITER_DATABASE_URL`` says so. Repositories never commit: the caller
opens one :meth:`Database.transaction` per user action, so an action either
lands whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from jupiter.errors import DatabaseDamaged, StoreBusy, StoreConflict, StoreError, WorkspaceError

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0011"
#: A folder of migrated empty SQLite files to copy new workspaces from (tests).
TEMPLATE_ENV = "JUPITER_SQLITE_TEMPLATE_DIR"
T = TypeVar("T")

#: How long a writer waits for another one's lock before giving up (ms):
#: SQLite's busy timeout, PostgreSQL's lock_timeout for ingests.
BUSY_TIMEOUT_MS = 10_000
#: Attempts of a whole action in :meth:`Database.retrying` (first one included).
RETRY_ATTEMPTS = 6
#: PostgreSQL advisory lock key held while a schema is migrated ("JUPI").
_MIGRATE_LOCK = 0x4A555049


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
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
        self.file: Path | None = None
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            self.file = Path(parsed.database)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        #: Given to every session (``session.info``): the outbox routing lives here.
        self.info: dict[str, Any] = {}
        self._session = sessionmaker(self.engine, expire_on_commit=False, info=self.info)
        # SQLite has one writer at a time: threads of this process (a fleet
        # deploy's pool) queue here instead of failing to upgrade a read
        # lock. PostgreSQL serialises on row locks; there this is a no-op.
        self._writers: threading.RLock | contextlib.nullcontext[None] = (
            threading.RLock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    @property
    def where(self) -> str:
        """The database for messages: its file, or its URL without password."""
        return str(self.file) if self.file is not None else redact_url(self.url)

    def damaged(self, reason: str) -> DatabaseDamaged:
        return DatabaseDamaged(
            f"the workspace database at {self.where} is damaged: {reason}; restore it from a backup"
        )

    def _check_file(self) -> None:
        """Refuse a SQLite file that is visibly not a whole database (no
        SQLite header, or shorter than its header says) before it is used."""
        if self.file is None or not self.file.exists():
            return
        problem = sqlite_file_problem(self.file)
        if problem:
            raise self.damaged(problem)

    def migrate(self, template: bool = True) -> None:
        """Bring the schema to the newest revision (cheap when it already is)."""
        self._check_file()
        if template:
            self._from_template()
        try:
            with self.engine.connect() as conn:
                if self._current_revision(conn) == HEAD_REVISION:
                    return
        except DBAPIError as exc:
            if (reason := damage_reason(exc)) is not None:
                raise self.damaged(reason) from None
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
                # Processes opening a new workspace at once migrate one at a
                # time; the ones that waited find the schema already there.
                if self.dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
                if self._current_revision(conn) == HEAD_REVISION:
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            if isinstance(exc, DBAPIError) and (reason := damage_reason(exc)) is not None:
                raise self.damaged(reason) from None
            raise StoreError(
                f"could not migrate the database at {redact_url(self.url)} ({_reason(exc)}); "
                "check that the database user may create tables"
            ) from None

    def _from_template(self) -> None:
        """Start a new SQLite file as a copy of a migrated empty one.

        Only when ``JUPITER_SQLITE_TEMPLATE_DIR`` names a folder (the test
        suite sets it: thousands of fresh workspaces would otherwise replay
        every migration). The template is built here, by the migrations
        themselves, once per head revision; a file that already exists is
        never replaced.
        """
        folder = os.environ.get(TEMPLATE_ENV)
        if not folder or self.file is None or self.file.exists():
            return
        template = Path(folder) / f"schema-{HEAD_REVISION}.db"
        if not template.exists():
            template.parent.mkdir(parents=True, exist_ok=True)
            building = template.with_name(
                f"{template.name}.{os.getpid()}.{threading.get_ident()}.tmp"
            )
            fresh = Database(f"sqlite:///{building}")
            try:
                fresh.migrate(template=False)
            finally:
                fresh.dispose()  # the last connection checkpoints the WAL into the file
            os.replace(building, template)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        copy = self.file.with_name(f"{self.file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        shutil.copyfile(template, copy)
        _new_identity(copy)
        try:
            # A link never replaces: a process that got there first keeps its file.
            os.link(copy, self.file)
        except FileExistsError:
            pass
        finally:
            copy.unlink()

    @staticmethod
    def _current_revision(conn: Any) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error.

        ``immediate`` takes SQLite's write lock before the first read (waiting
        up to the busy timeout for another writer), so what the transaction
        reads cannot change before it writes. PostgreSQL writers use row locks
        and ``ON CONFLICT`` instead; there ``immediate`` bounds each lock wait
        by the same timeout (``lock_timeout``), so a stuck writer ends in
        :class:`StoreBusy` rather than an endless wait."""
        with self._writers:
            yield from self._transaction(immediate)

    def _transaction(self, immediate: bool) -> Iterator[Session]:
        session = self._session()
        try:
            if immediate and self.dialect == "sqlite":
                # pysqlite opens no transaction of its own before a SELECT,
                # so this BEGIN is the transaction's first statement.
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            elif immediate and self.dialect == "postgresql":
                session.execute(text(f"SET LOCAL lock_timeout = {int(BUSY_TIMEOUT_MS)}"))
            yield session
            try:
                session.commit()
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    # The server may have committed before the line dropped.
                    raise StoreError(
                        f"the connection to the database was lost while committing "
                        f"({_reason(exc)}); whether the change was written is unknown — "
                        "look (e.g. `jupiter audit verify`) before running it again"
                    ) from exc
                raise
        except DBAPIError as exc:
            session.rollback()
            raise self._translate(exc) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _translate(self, exc: DBAPIError) -> StoreError | DatabaseDamaged:
        if (reason := damage_reason(exc)) is not None:
            return self.damaged(reason)
        if exc.connection_invalidated:
            # Terminated backend, failover, network cut: the server rolled the
            # open transaction back; the pool drops the dead connection.
            return StoreError(
                f"the connection to the database was lost ({_reason(exc)}); nothing was "
                "written, try again"
            )
        if is_transient(exc):
            return StoreBusy(
                f"the database was busy with another writer ({_reason(exc)}); "
                "nothing was written, try again"
            )
        message = f"the database refused the change ({_reason(exc)}); nothing was written"
        if is_unique_violation(exc):
            return StoreConflict(message)
        return StoreError(message)

    def retrying(self, action: Callable[[], T], attempts: int | None = None) -> T:
        """Run ``action`` (which opens its own transaction) again after a
        :class:`StoreBusy` or :class:`StoreConflict`, with jittered exponential
        backoff, at most ``attempts`` times in all; the last error is raised.
        Only for actions that read what exists before they write, so a run
        after a conflict takes the other writer's rows into account."""
        attempts = attempts or RETRY_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                return action()
            except (StoreBusy, StoreConflict):
                if attempt == attempts:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def reading(self) -> Iterator[Session]:
        session = self._session()
        try:
            yield session
        except DBAPIError as exc:
            if (reason := damage_reason(exc)) is not None:
                raise self.damaged(reason) from exc
            if exc.connection_invalidated or is_transient(exc):
                raise self._translate(exc) from exc
            raise
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


def _new_identity(file: Path) -> None:
    """A copied template becomes a workspace of its own: the id migration 0003
    drew belongs to the template, and checkpoints are bound to the id."""
    import uuid

    from jupiter.store.tables import WorkspaceInfoRow, utcnow

    copy = Database(f"sqlite:///{file}")
    try:
        with copy.transaction() as s:
            row = s.get(WorkspaceInfoRow, 1)
            assert row is not None
            row.workspace_id = str(uuid.uuid4())
            row.created_at = utcnow()
    finally:
        copy.dispose()


#: SQLite's words for a file that is not (or no longer) a whole database.
_SQLITE_DAMAGE = (
    "file is not a database",
    "database disk image is malformed",
    "file is encrypted or is not a database",
)
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
#: PostgreSQL SQLSTATEs of a transaction aborted to resolve a concurrent
#: conflict (serialization failure, deadlock, lock not available).
_PG_TRANSIENT = frozenset({"40001", "40P01", "55P03"})
_SQLITE_HEADER = b"SQLite format 3\x00"


def damage_reason(exc: DBAPIError) -> str | None:
    """Why the database is damaged, or None when ``exc`` means something else."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith("XX0"):
        return _reason(exc)
    message = str(orig if orig is not None else exc).lower()
    for words in _SQLITE_DAMAGE:
        if words in message:
            return words
    return None


def is_transient(exc: DBAPIError) -> bool:
    """Whether running the same action again may succeed: a busy SQLite,
    or PostgreSQL aborting one side of a deadlock or serialization conflict."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_TRANSIENT
    message = str(orig if orig is not None else exc).lower()
    return any(words in message for words in _SQLITE_BUSY)


def is_unique_violation(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    return str(orig if orig is not None else exc).lower().startswith("unique constraint failed")


def sqlite_file_problem(path: Path) -> str | None:
    """What is visibly wrong with a SQLite file's header, or None.

    Checks that the file starts with SQLite's magic string and is at least as
    long as the page count its header records (a truncated copy is shorter).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if size == 0:
        # SQLite's own rule: an empty file is a new database (another
        # process may be creating this workspace right now).
        return None
    if not header.startswith(_SQLITE_HEADER):
        if not header.strip(b"\x00"):
            return "the file starts with zero bytes instead of a SQLite header"
        return "the file does not start with a SQLite header"
    if len(header) < 100:
        return f"the file is truncated ({size} bytes, shorter than its header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its "version valid for" number
    # matches the change counter (SQLite >= 3.7.0 keeps both). While another
    # process checkpoints its write-ahead log, page 1 can be written before
    # the pages that extend the file: with a non-empty WAL, leave it to
    # SQLite, which reports missing pages as a malformed image.
    if header[24:28] == header[92:96] and page_size and size < pages * page_size:
        wal = path.with_name(path.name + "-wal")
        if not (wal.exists() and wal.stat().st_size > 0):
            return f"the file is truncated ({size} of {pages * page_size} bytes)"
    return None


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__
