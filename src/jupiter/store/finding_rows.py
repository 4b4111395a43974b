"""SQL statements and row helpers of :mod:`jupiter.store.finding_writer`:
the bulk INSERT ... ON CONFLICT statements, how stored JSON lists are merged,
and how one report's records of the same finding are merged before writing."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import Table

from jupiter.models import FindingRecord
from jupiter.redact import redact_text
from jupiter.store.tables import FindingRow, FindingSourceRow

FINDINGS = cast(Table, FindingRow.__table__)  # Core statements for bulk speed
SOURCES = cast(Table, FindingSourceRow.__table__)
NEW_FINDING_COLUMNS = (
    "fingerprint",
    "asset_id",
    "rule_id",
    "category",
    "title",
    "severity",
    "cvss_score",
    "cvss_vector",
    "aliases",
    "cwe",
    "fixed_versions",
    "path",
    "start_line",
    "end_line",
    "package",
    "version",
    "evidence",
    "extra",
    "identity",
    "first_seen",
    "last_seen",
    "status",
    "priority",
)
SOURCE_COLUMNS = ("finding_id", "scanner", "rule_id", "first_seen", "last_seen")


# 23 columns x 1000 rows stays below SQLite's 32,766 bound parameters.
ROWS_PER_STATEMENT = 1000


@lru_cache(maxsize=4)
def insert_findings_sql(rows: int, mark: str) -> str:
    # Column names are the module's own constants, never input.
    one = "(" + ", ".join([mark] * len(NEW_FINDING_COLUMNS)) + ")"
    values = ", ".join([one] * rows)
    columns = ", ".join(NEW_FINDING_COLUMNS)
    # ON CONFLICT: a concurrent ingest may have stored the same finding since
    # our read; the caller merges into those rows instead of failing.
    return (
        f"INSERT INTO findings ({columns}) VALUES {values} "  # noqa: S608
        "ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint, id"
    )


@lru_cache(maxsize=4)
def insert_sources_sql(mark: str) -> str:
    # Column names are the module's own constants, never input. A source a
    # concurrent ingest added since our read is seen again, not an error.
    placeholders = ", ".join([mark] * len(SOURCE_COLUMNS))
    return (
        f"INSERT INTO finding_sources ({', '.join(SOURCE_COLUMNS)}) "  # noqa: S608
        f"VALUES ({placeholders}) ON CONFLICT (finding_id, scanner, rule_id) "
        "DO UPDATE SET last_seen = excluded.last_seen"
    )


def union(incoming: set[str], stored: str) -> set[str]:
    """``incoming`` with the stored JSON list's values (text from the database)."""
    if stored == json_text(sorted(incoming)):
        return incoming
    return incoming | set(orjson.loads(stored))


def redact_path(path: str | None) -> str | None:
    """A location as stored: a file path holds a secret only as a URL's
    password or query (DAST reports), so only those are scanned."""
    if path and ("://" in path or "=" in path or "@" in path):
        return redact_text(path)
    return path


def json_text(value: Any) -> str:
    if not value:  # most findings carry no aliases, CWEs or extra facts
        return "[]" if isinstance(value, list) else "{}"
    return orjson.dumps(value).decode()


@dataclass
class Merged:
    record: FindingRecord
    asset_id: str
    sources: set[tuple[str, str]]
    aliases: set[str]
    cwe: set[str]
    fixed: set[str]


def merge_record(merged: Merged, record: FindingRecord) -> None:
    merged.sources.add((record.scanner, record.rule_id))
    merged.aliases.update(record.aliases)
    merged.cwe.update(record.cwe)
    merged.fixed.update(record.fixed_versions)
    cur = merged.record
    better_sev = record.severity.rank > cur.severity.rank
    better_cvss = record.cvss_score is not None and (
        cur.cvss_score is None or record.cvss_score > cur.cvss_score
    )
    if better_sev or better_cvss:
        merged.record = cur.model_copy(
            update={
                "severity": record.severity if better_sev else cur.severity,
                "cvss_score": record.cvss_score if better_cvss else cur.cvss_score,
                "cvss_vector": record.cvss_vector if better_cvss else cur.cvss_vector,
            }
        )
