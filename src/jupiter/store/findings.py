"""Finding queries and their JSON shape; bulk writing is in
:mod:`jupiter.store.finding_writer` (re-exported here)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, and_, case, or_, select
from sqlalchemy.orm import Session

from jupiter.errors import InputError, NotFoundError
from jupiter.models import FindingRecord, FindingStatus, Severity
from jupiter.redact import redact_text
from jupiter.store.finding_writer import FindingWriter, IngestStats
from jupiter.store.tables import FindingRow, FindingSourceRow

__all__ = [
    "FindingWriter",
    "IngestStats",
    "finding_to_json",
    "get_finding",
    "list_findings",
    "list_findings_json",
    "row_to_record",
    "sort_value",
    "sources_for",
]


def finding_to_json(
    row: FindingRow | Any, sources: Sequence[FindingSourceRow | Any]
) -> dict[str, Any]:
    """The finding as printed and exported. Texts pass through the redaction
    again, so rows stored before ingest redacted them do not leak either."""
    return {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "asset": row.asset_id,
        "rule_id": row.rule_id,
        "category": row.category,
        "title": redact_text(row.title),
        "severity": row.severity,
        "cvss_score": row.cvss_score,
        "cvss_vector": row.cvss_vector,
        "aliases": list(row.aliases),
        "cwe": list(row.cwe),
        "fixed_versions": list(row.fixed_versions),
        "location": {
            "path": redact_text(row.path) if row.path else row.path,
            "start_line": row.start_line,
            "end_line": row.end_line,
            "package": row.package,
            "version": row.version,
        },
        "evidence": redact_text(row.evidence) if row.evidence else row.evidence,
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        "status": row.status,
        "priority": row.priority,
        "sources": [
            {"scanner": s.scanner, "rule_id": s.rule_id, "first_seen": s.first_seen.isoformat()}
            for s in sources
        ],
    }


def row_to_record(row: FindingRow) -> FindingRecord:
    """The stored finding as a record a remediator can plan for."""
    from jupiter.models import Location, known_category

    return FindingRecord(
        scanner="jupiter",
        rule_id=row.rule_id,
        category=known_category(row.category),
        title=row.title,
        severity=Severity(row.severity),
        asset=row.asset_id,
        location=Location(
            path=row.path,
            start_line=row.start_line,
            end_line=row.end_line,
            package=row.package,
            version=row.version,
        ),
        cvss_score=row.cvss_score,
        cvss_vector=row.cvss_vector,
        aliases=list(row.aliases),
        cwe=list(row.cwe),
        fixed_versions=list(row.fixed_versions),
        evidence=row.evidence,
        extra=dict(row.extra or {}),
        identity=row.identity,
    )


def get_finding(session: Session, ref: str | int) -> FindingRow:
    """A finding by numeric id or by fingerprint prefix (>= 8 hex digits)."""
    text = str(ref).strip()
    row: FindingRow | None = None
    if text.isdigit():
        row = session.get(FindingRow, int(text))
    elif len(text) >= 8 and all(c in "0123456789abcdef" for c in text.lower()):
        matches = list(
            session.scalars(
                select(FindingRow).where(FindingRow.fingerprint.startswith(text.lower())).limit(2)
            )
        )
        if len(matches) > 1:
            raise InputError(f"fingerprint prefix {text!r} is ambiguous; give more digits")
        row = matches[0] if matches else None
    if row is None:
        raise NotFoundError(
            f"no finding {text!r}; see `jupiter findings list` for ids and fingerprints"
        )
    return row


def sources_for(session: Session, finding_ids: list[int]) -> dict[int, list[FindingSourceRow]]:
    out: dict[int, list[FindingSourceRow]] = {i: [] for i in finding_ids}
    if not finding_ids:
        return out
    stmt = (
        select(FindingSourceRow)
        .where(FindingSourceRow.finding_id.in_(finding_ids))
        .order_by(FindingSourceRow.id)
    )
    for src in session.scalars(stmt):
        out[src.finding_id].append(src)
    return out


#: Sort keys of :func:`list_findings` (``-key`` descending), for the API's
#: ``sort`` parameter and its cursors.
SORT_KEYS = ("priority", "severity", "last_seen", "first_seen", "id")
SEVERITY_RANK = {s.value: i for i, s in enumerate(reversed(list(Severity)))}


def sort_value(finding: dict[str, Any], sort: str) -> Any:
    """The value of ``finding`` (as :func:`finding_to_json` shaped it) that
    ``sort`` orders by: what a page's cursor carries."""
    key = sort.removeprefix("-")
    if key == "severity":
        return SEVERITY_RANK.get(finding["severity"], -1)
    return finding[key]


def _sort_column(key: str) -> Any:
    if key == "severity":
        return case(SEVERITY_RANK, value=FindingRow.severity, else_=-1)
    return {
        "priority": FindingRow.priority,
        "last_seen": FindingRow.last_seen,
        "first_seen": FindingRow.first_seen,
        "id": FindingRow.id,
    }[key]


def list_findings(session: Session, **filters: Any) -> list[FindingRow]:
    """Findings matching the filters (see :func:`findings_query`)."""
    return list(session.scalars(findings_query(select(FindingRow), **filters)))


#: Columns finding_to_json does not show (skipped when reading a page).
_NOT_SHOWN = frozenset({"extra", "identity"})


def list_findings_json(session: Session, **filters: Any) -> list[dict[str, Any]]:
    """:func:`list_findings` shaped by :func:`finding_to_json`, read as plain
    rows (no ORM objects: a page of an API listing pays for the SQL only)."""
    shown = [c for c in FindingRow.__table__.c if c.name not in _NOT_SHOWN]
    rows = [
        SimpleNamespace(**r._asdict())  # attribute access at dict speed
        for r in session.execute(findings_query(select(*shown), **filters))
    ]
    ids = [r.id for r in rows]
    sources: dict[int, list[Any]] = {i: [] for i in ids}
    if ids:
        q = (
            select(FindingSourceRow.__table__)
            .where(FindingSourceRow.finding_id.in_(ids))
            .order_by(FindingSourceRow.id)
        )
        for src in session.execute(q):
            sources[src.finding_id].append(src)
    return [finding_to_json(r, sources[r.id]) for r in rows]


def findings_query(
    stmt: Select[Any],
    asset: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    category: str | None = None,
    limit: int | None = None,
    sort: str | None = None,
    after: tuple[Any, int] | None = None,
) -> Select[Any]:
    """Filter and order ``stmt`` (a select of findings). Without ``sort``:
    highest priority first, then oldest id. With ``sort`` (a
    :data:`SORT_KEYS` key, ``-key`` for descending) ties break by id in the
    same direction, so ``after`` (the sort value and id of the previous
    page's last finding) continues a keyset page that stays correct while
    findings are added."""
    if asset:
        stmt = stmt.where(FindingRow.asset_id == asset)
    if status:
        stmt = stmt.where(FindingRow.status == status)
    if severity:
        stmt = stmt.where(FindingRow.severity == severity)
    if category:
        stmt = stmt.where(FindingRow.category == category)
    if sort is None:
        stmt = stmt.order_by(FindingRow.priority.desc(), FindingRow.id)
    else:
        key = sort.removeprefix("-")
        if key not in SORT_KEYS:
            raise InputError(
                f"cannot sort findings by {sort!r}; use one of {', '.join(SORT_KEYS)} "
                "(prefix - for descending)"
            )
        col, desc = _sort_column(key), sort.startswith("-")
        if after is not None:
            value, last_id = after
            if key == "id":
                stmt = stmt.where(FindingRow.id < last_id if desc else FindingRow.id > last_id)
            elif desc:
                stmt = stmt.where(or_(col < value, and_(col == value, FindingRow.id < last_id)))
            else:
                stmt = stmt.where(or_(col > value, and_(col == value, FindingRow.id > last_id)))
        if key == "id":
            stmt = stmt.order_by(FindingRow.id.desc() if desc else FindingRow.id)
        elif desc:
            stmt = stmt.order_by(col.desc(), FindingRow.id.desc())
        else:
            stmt = stmt.order_by(col, FindingRow.id)
    if limit:
        stmt = stmt.limit(limit)
    return stmt


def excepted_ids(session: Session, asset: str) -> list[int]:
    """The ids of ``asset``'s findings an exception covers."""
    q = select(FindingRow.id).where(
        FindingRow.asset_id == asset, FindingRow.status == FindingStatus.EXCEPTED.value
    )
    return sorted(session.scalars(q))
