"""PostgreSQL's bulk path for :mod:`jupiter.store.finding_writer`: a batch
of rows goes into a temporary staging table with ``COPY`` (psycopg's
``cursor.copy``, one round trip for thousands of rows), then into its table
with one ``INSERT … SELECT … ON CONFLICT`` (so a concurrent ingest's rows are
merged, never duplicated, exactly as with the multi-row INSERT SQLite takes).

The staging tables live as long as the transaction (``ON COMMIT DROP``);
they have the target table's columns and none of its indexes or
constraints, so ``COPY`` into them costs no B-tree maintenance."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from jupiter.store.finding_rows import NEW_FINDING_COLUMNS, SOURCE_COLUMNS

# Table and column names are this module's constants, never input.
_FINDINGS_IN = "jupiter_findings_in"
_SOURCES_IN = "jupiter_sources_in"
_F_COLS = ", ".join(NEW_FINDING_COLUMNS)
_S_COLS = ", ".join(SOURCE_COLUMNS)


def _cursor(session: Session) -> Any:
    """A psycopg cursor on the session's own connection (same transaction)."""
    raw = session.connection().connection.driver_connection
    return raw.cursor()  # type: ignore[union-attr]


def _stage(cur: Any, table: str, source: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {table} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {columns} FROM {source} WITH NO DATA"
    )
    cur.execute(f"TRUNCATE {table}")
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def copy_findings(session: Session, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Insert new finding rows (in ``NEW_FINDING_COLUMNS`` order); the ids of
    those inserted by fingerprint (one a concurrent writer stored first is
    left out, as ``ON CONFLICT DO NOTHING`` does)."""
    with _cursor(session) as cur:
        _stage(cur, _FINDINGS_IN, "findings", _F_COLS, rows)
        cur.execute(
            f"INSERT INTO findings ({_F_COLS}) SELECT {_F_COLS} FROM {_FINDINGS_IN} "  # noqa: S608
            "ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint, id"
        )
        return {fp: fid for fp, fid in cur.fetchall()}


def copy_sources(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert source rows (``SOURCE_COLUMNS`` order); one a concurrent ingest
    added meanwhile is seen again (``last_seen`` moves)."""
    with _cursor(session) as cur:
        _stage(cur, _SOURCES_IN, "finding_sources", _S_COLS, rows)
        cur.execute(
            f"INSERT INTO finding_sources ({_S_COLS}) "  # noqa: S608
            f"SELECT {_S_COLS} FROM {_SOURCES_IN} "
            "ON CONFLICT (finding_id, scanner, rule_id) "
            "DO UPDATE SET last_seen = excluded.last_seen"
        )
