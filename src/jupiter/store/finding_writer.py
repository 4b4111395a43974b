"""Bulk writing of findings for ingestion and scans.

Ingestion writes in batches straight through the driver (ORM ``add_all`` is
~15x slower, see TOOLING-NOTES; the ORM bulk path ~4x). A finding is
identified by its fingerprint (``FindingRecord.fingerprint``): re-ingesting a
report only moves ``last_seen``; a second scanner reporting the same issue
adds a source.

Secrets that scanners quote in messages, snippets, paths or extra facts are
masked by :func:`jupiter.redact.redact` before a finding is stored; the
fingerprint is computed from the scanner's original values first, so
deduplication does not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Text, bindparam, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from jupiter.errors import InputError, StoreBusy
from jupiter.limits import MAX_NESTING, nesting_depth
from jupiter.models import Environment, FindingRecord, FindingStatus, Severity
from jupiter.priority import priority_score
from jupiter.redact import redact, redact_texts
from jupiter.store.assets import create_unregistered
from jupiter.store.finding_copy import copy_findings, copy_sources
from jupiter.store.finding_rows import (
    FINDINGS,
    NEW_FINDING_COLUMNS,
    ROWS_PER_STATEMENT,
    SOURCES,
    Merged,
    insert_findings_sql,
    insert_sources_sql,
    json_text,
    merge_record,
    redact_path,
    union,
)
from jupiter.store.tables import AssetRow, FindingRow, FindingSourceRow

BATCH = 5000


@dataclass
class IngestStats:
    results: int = 0
    new: int = 0
    seen_again: int = 0
    new_sources: int = 0
    unregistered_assets: list[str] = field(default_factory=list)

    def add(self, other: IngestStats) -> None:
        self.results += other.results
        self.new += other.new
        self.seen_again += other.seen_again
        self.new_sources += other.new_sources
        self.unregistered_assets.extend(
            a for a in other.unregistered_assets if a not in self.unregistered_assets
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "new_findings": self.new,
            "existing_findings": self.seen_again,
            "new_sources": self.new_sources,
            "unregistered_assets": self.unregistered_assets,
        }


class FindingWriter:
    """Buffers parsed records and writes them in batches, in the caller's
    transaction. ``default_asset`` applies to records that name none."""

    def __init__(
        self,
        session: Session,
        now: datetime,
        default_asset: str | None = None,
        strict_assets: bool = False,
        source_name: str = "report",
    ) -> None:
        self.session = session
        self.now = now
        self.default_asset = default_asset
        self.strict_assets = strict_assets
        self.source_name = source_name
        self.stats = IngestStats()
        self._buffer: dict[str, Merged] = {}
        self._assets: dict[str, tuple[int, Environment]] = {}
        self._times: dict[datetime, Any] = {}
        self._extras: dict[str, str] = {}
        dialect = session.get_bind().dialect
        # The column type's own conversion for this dialect (SQLite stores a
        # string), applied once per distinct timestamp instead of per row.
        self._time_processor = FINDINGS.c.last_seen.type.dialect_impl(dialect).bind_processor(
            dialect
        )

    def add(self, record: FindingRecord) -> None:
        self.stats.results += 1
        asset_id = record.asset or self.default_asset
        if not asset_id:
            raise InputError(
                f"result {self.stats.results} in {self.source_name} names no asset; "
                "pass --asset ID to say which asset the report is about"
            )
        self._asset(asset_id)
        fp = record.fingerprint(asset_id)
        merged = self._buffer.get(fp)
        if merged is None:
            self._buffer[fp] = Merged(
                record,
                asset_id,
                {(record.scanner, record.rule_id)},
                set(record.aliases),
                set(record.cwe),
                set(record.fixed_versions),
            )
        else:
            merge_record(merged, record)
        if len(self._buffer) >= BATCH:
            self.flush()

    def add_all(self, records: Iterable[FindingRecord]) -> None:
        for record in records:
            self.add(record)

    def _asset(self, asset_id: str) -> tuple[int, Environment]:
        known = self._assets.get(asset_id)
        if known is not None:
            return known
        row = self.session.get(AssetRow, asset_id)
        if row is None:
            if self.strict_assets:
                raise InputError(
                    f"{self.source_name} names asset {asset_id!r}, which is not registered; "
                    "import it with `jupiter assets import` or drop --strict-assets"
                )
            row = create_unregistered(self.session, asset_id)
            self.stats.unregistered_assets.append(asset_id)
        known = (row.criticality, Environment(row.environment))
        self._assets[asset_id] = known
        return known

    def _extra_json(self, extra: dict[str, Any]) -> str:
        """A finding's extra facts as stored: nesting bounded, secrets masked."""
        for value in extra.values():
            # Most extra facts are flat (a score, a word): walk only nested ones.
            if isinstance(value, dict | list):
                if nesting_depth(extra) > MAX_NESTING:
                    raise InputError(
                        f"{self.source_name}: a finding's extra facts nest deeper than "
                        f"{MAX_NESTING} levels, Jupiter's limit; fix or regenerate the report"
                    )
                break
        raw = json_text(extra)
        if len(raw) > 512:
            return json_text(redact(extra))
        # Findings of one rule repeat the same extra facts: redact each once.
        stored = self._extras.get(raw)
        if stored is None:
            if len(self._extras) >= 10_000:
                self._extras.clear()
            stored = self._extras[raw] = json_text(redact(extra))
        return stored

    def _time(self, value: datetime) -> Any:
        """A timestamp as the driver wants it (SQLite: the DateTime type's
        string form), converted once per distinct value."""
        cached = self._times.get(value)
        if cached is None:
            cached = self._time_processor(value) if self._time_processor else value
            self._times[value] = cached
        return cached

    def _insert_returning(self, rows: list[tuple[Any, ...]]) -> dict[str, int]:
        """Insert new findings; their ids by fingerprint (SQLite >= 3.35, PostgreSQL)."""
        dialect = self.session.get_bind().dialect
        if dialect.name == "postgresql":
            return copy_findings(self.session, rows)
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        conn = self.session.connection()
        out: dict[str, int] = {}
        for i in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[i : i + ROWS_PER_STATEMENT]
            sql = insert_findings_sql(len(chunk), mark)
            params = tuple(chain.from_iterable(chunk))
            out.update({fp: fid for fp, fid in conn.exec_driver_sql(sql, params)})
        return out

    def _insert_sources(self, rows: list[tuple[Any, ...]]) -> None:
        dialect = self.session.get_bind().dialect
        if dialect.name == "postgresql":
            copy_sources(self.session, rows)
            return
        sql = insert_sources_sql("?" if dialect.paramstyle == "qmark" else "%s")
        self.session.connection().exec_driver_sql(sql, rows)

    def _existing(self, fingerprints: list[str]) -> dict[str, Any]:
        """Stored findings among ``fingerprints``. On PostgreSQL they are
        locked (in fingerprint order) until the transaction ends, so a
        concurrent ingest cannot merge into them between this read and our
        update; SQLite needs no row locks (one writer holds the database)."""
        stmt = select(
            FindingRow.id,
            FindingRow.fingerprint,
            FindingRow.severity,
            FindingRow.cvss_score,
            FindingRow.cvss_vector,
            # As stored text: on a re-ingest they are almost always
            # identical, and comparing text avoids decoding 3 JSON
            # values per finding.
            sql_cast(FindingRow.aliases, Text).label("aliases"),
            sql_cast(FindingRow.cwe, Text).label("cwe"),
            sql_cast(FindingRow.fixed_versions, Text).label("fixed_versions"),
        ).where(FindingRow.fingerprint.in_(fingerprints))
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.order_by(FindingRow.fingerprint).with_for_update()
        return {r.fingerprint: r for r in self.session.execute(stmt)}

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, {}
        existing = self._existing(sorted(batch))
        new_rows, touched, changed = self._plan(batch, existing)
        ids = {fp: row.id for fp, row in existing.items()}
        if new_rows:
            # Straight to the driver with values converted once (the ORM bulk
            # path spends ~4x as long per row): multi-row INSERT ... RETURNING.
            inserted = self._insert_returning(new_rows)
            ids.update(inserted)
            self.stats.new += len(inserted)
            # ON CONFLICT DO NOTHING skipped the findings a concurrent writer
            # stored after our read: merge into them like any stored finding.
            raced = {r[0]: batch[r[0]] for r in new_rows if r[0] not in inserted}
            if raced:
                late = self._existing(sorted(raced))
                more_rows, more_touched, more_changed = self._plan(raced, late)
                if more_rows:  # vanished again (deleted meanwhile): let a retry sort it out
                    raise StoreBusy(
                        "findings changed under a concurrent writer twice; nothing was "
                        "written, try again"
                    )
                existing.update(late)
                ids.update({fp: row.id for fp, row in late.items()})
                touched += more_touched
                changed += more_changed
        if touched:
            self.session.execute(
                update(FINDINGS).where(FINDINGS.c.id.in_(touched)).values(last_seen=self.now)
            )
        if changed:
            stmt = (
                update(FINDINGS)
                .where(FINDINGS.c.id == bindparam("_id"))
                .values(
                    {k: bindparam(k) for k in changed[0] if k != "_id"} | {"last_seen": self.now}
                )
            )
            self.session.execute(stmt, changed)
        self.stats.seen_again += len(touched) + len(changed)
        self._write_sources(batch, ids, set(existing))

    def _plan(
        self, batch: dict[str, Merged], existing: dict[str, Any]
    ) -> tuple[list[tuple[Any, ...]], list[int], list[dict[str, Any]]]:
        """Rows to insert, ids only seen again, and merged updates for ``batch``."""
        now = self._time(self.now)
        scores: dict[tuple[Severity, float | None, str], float] = {}
        new_rows: list[tuple[Any, ...]] = []
        touched: list[int] = []  # seen again, nothing but last_seen moves
        changed: list[dict[str, Any]] = []  # seen again with new facts merged in
        for fp, m in batch.items():
            rec = m.record
            old = existing.get(fp)
            severity, cvss, vector = rec.severity, rec.cvss_score, rec.cvss_vector
            aliases, cwe, fixed = m.aliases, m.cwe, m.fixed
            if old is not None:
                old_sev = Severity(old.severity)
                if old_sev.rank > severity.rank:
                    severity = old_sev
                if old.cvss_score is not None and (cvss is None or old.cvss_score > cvss):
                    cvss, vector = old.cvss_score, old.cvss_vector
                aliases = union(aliases, old.aliases)
                cwe = union(cwe, old.cwe)
                fixed = union(fixed, old.fixed_versions)
            crit, env = self._assets[m.asset_id]
            common = {
                "severity": severity.value,
                "cvss_score": cvss,
                "cvss_vector": vector,
                "aliases": sorted(aliases),
                "cwe": sorted(cwe),
                "fixed_versions": sorted(fixed),
            }
            if old is not None:
                unchanged = (
                    common["severity"] == old.severity
                    and cvss == old.cvss_score
                    and vector == old.cvss_vector
                    and json_text(common["aliases"]) == old.aliases
                    and json_text(common["cwe"]) == old.cwe
                    and json_text(common["fixed_versions"]) == old.fixed_versions
                )
                if unchanged:
                    touched.append(old.id)
                else:
                    changed.append(
                        {
                            "_id": old.id,
                            **common,
                            "priority": priority_score(severity, cvss, crit, env),
                        }
                    )
                continue
            loc = rec.location
            key = (severity, cvss, m.asset_id)
            score = scores.get(key)
            if score is None:
                score = scores[key] = priority_score(severity, cvss, crit, env)
            new_rows.append(
                (
                    fp,
                    m.asset_id,
                    rec.rule_id,
                    str(rec.category),
                    rec.title,  # redacted by _redact_texts below
                    severity.value,
                    cvss,
                    vector,
                    json_text(common["aliases"]),
                    json_text(common["cwe"]),
                    json_text(common["fixed_versions"]),
                    redact_path(loc.path),
                    loc.start_line,
                    loc.end_line,
                    loc.package,
                    loc.version,
                    rec.evidence,
                    self._extra_json(rec.extra) if rec.extra else "{}",
                    rec.identity,
                    self._time(rec.detected_at) if rec.detected_at else now,
                    now,
                    FindingStatus.OPEN.value,
                    score,
                )
            )
        return _redact_texts(new_rows), touched, changed

    def _write_sources(self, batch: dict[str, Merged], ids: dict[str, int], had: set[str]) -> None:
        known: dict[tuple[int, str, str], int] = {}
        old_ids = [ids[fp] for fp in had]
        if old_ids:
            for r in self.session.execute(
                select(
                    FindingSourceRow.id,
                    FindingSourceRow.finding_id,
                    FindingSourceRow.scanner,
                    FindingSourceRow.rule_id,
                ).where(FindingSourceRow.finding_id.in_(old_ids))
            ):
                known[(r.finding_id, r.scanner, r.rule_id)] = r.id
        inserts: list[tuple[Any, ...]] = []
        touches: list[int] = []
        for fp, m in batch.items():
            fid = ids[fp]
            for scanner, rule in sorted(m.sources):
                sid = known.get((fid, scanner, rule))
                if sid is None:
                    now = self._time(self.now)
                    inserts.append((fid, scanner, rule, now, now))
                else:
                    touches.append(sid)
        if inserts:
            self._insert_sources(inserts)
            old = set(old_ids)
            self.stats.new_sources += sum(1 for i in inserts if i[0] in old)
        if touches:
            self.session.execute(
                update(SOURCES).where(SOURCES.c.id.in_(touches)).values(last_seen=self.now)
            )


_TITLE, _EVIDENCE = NEW_FINDING_COLUMNS.index("title"), NEW_FINDING_COLUMNS.index("evidence")


def _redact_texts(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """New finding rows with secrets masked in their title and evidence,
    redacted as one batch (see :func:`jupiter.redact.redact_texts`)."""
    if not rows:
        return rows
    titles = redact_texts([row[_TITLE] for row in rows])
    evidence = redact_texts([row[_EVIDENCE] or "" for row in rows])
    out = []
    for row, title, snippet in zip(rows, titles, evidence, strict=True):
        if title != row[_TITLE] or snippet != (row[_EVIDENCE] or ""):
            fields = list(row)
            fields[_TITLE], fields[_EVIDENCE] = title, snippet
            row = tuple(fields)
        out.append(row)
    return out
