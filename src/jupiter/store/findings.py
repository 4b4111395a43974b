"""Finding queries and their JSON shape; bulk writing is in
:mod:`jupiter.store.finding_writer` (re-exported here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, case, or_, select, type_coerce
from sqlalchemy.orm import Session

from jupiter.errors import InputError, NotFoundError
from jupiter.models import FindingRecord, FindingStatus, Severity
from jupiter.redact import redact_text, redact_texts
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
    if text.isdecimal():
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


#: The columns of a page of findings, in the order :func:`list_findings_json`
#: unpacks them (everything :func:`finding_to_json` shows).
_PAGE_COLUMNS = (
    FindingRow.id,
    FindingRow.fingerprint,
    FindingRow.asset_id,
    FindingRow.rule_id,
    FindingRow.category,
    FindingRow.title,
    FindingRow.severity,
    FindingRow.cvss_score,
    FindingRow.cvss_vector,
    FindingRow.aliases,
    FindingRow.cwe,
    FindingRow.fixed_versions,
    FindingRow.path,
    FindingRow.start_line,
    FindingRow.end_line,
    FindingRow.package,
    FindingRow.version,
    FindingRow.evidence,
    FindingRow.first_seen,
    FindingRow.last_seen,
    FindingRow.status,
    FindingRow.priority,
)


def _sqlite_iso(stored: str) -> str:
    """A timestamp as SQLite stores it (``2026-12-05 19:00:00.123456``, UTC)
    in the form ``datetime.isoformat`` gives the aware value the store's
    ``UTCDateTime`` reads, without parsing it (a page has hundreds)."""
    if len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        fraction = stored[19:]
        if fraction == ".000000":
            fraction = ""
        return f"{stored[:10]}T{stored[11:19]}{fraction}+00:00"
    value = datetime.fromisoformat(stored)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat()


def _aware_iso(value: datetime) -> str:
    return value.isoformat()


def list_findings_json(session: Session, **filters: Any) -> list[dict[str, Any]]:
    """:func:`list_findings` shaped by :func:`finding_to_json` (the same
    dicts), read as plain tuples on the session's connection: no ORM
    loading, and on SQLite timestamps go from their stored text to ISO
    without becoming datetimes. A page of an API listing pays for the SQL."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    columns: list[Any] = list(_PAGE_COLUMNS)
    src_seen: Any = FindingSourceRow.first_seen
    iso: Callable[[Any], str] = _aware_iso
    if sqlite:
        columns[18] = type_coerce(FindingRow.first_seen, String)
        columns[19] = type_coerce(FindingRow.last_seen, String)
        src_seen = type_coerce(FindingSourceRow.first_seen, String)
        iso = _sqlite_iso
    rows: list[Any] = []
    limit = filters.get("limit")
    for stmt in _page_queries(select(*columns), filters):
        if limit:
            stmt = stmt.limit(limit - len(rows))
        rows += conn.execute(stmt).all()
        if limit and len(rows) >= limit:
            break
    sources: dict[int, list[dict[str, Any]]] = {r[0]: [] for r in rows}
    if rows:
        q = (
            select(
                FindingSourceRow.finding_id,
                FindingSourceRow.scanner,
                FindingSourceRow.rule_id,
                src_seen,
            )
            .where(FindingSourceRow.finding_id.in_(bindparam("ids", expanding=True)))
            .order_by(FindingSourceRow.id)
        )
        # The ids as one expanding parameter: not 100 literals to coerce.
        for finding_id, scanner, rule_id, seen in conn.execute(q, {"ids": list(sources)}).all():
            sources[finding_id].append(
                {"scanner": scanner, "rule_id": rule_id, "first_seen": iso(seen)}
            )
    # Stored texts were redacted at ingest; checked again here, a page at a
    # time (one scan for the trigger words over all of them).
    texts = redact_texts([t for r in rows for t in (r[5], r[12] or "", r[17] or "")])
    out = []
    for i, (
        id_,
        fingerprint,
        asset,
        rule_id,
        category,
        _title,
        severity,
        cvss_score,
        cvss_vector,
        aliases,
        cwe,
        fixed_versions,
        path,
        start_line,
        end_line,
        package,
        version,
        evidence,
        first_seen,
        last_seen,
        status,
        priority,
    ) in enumerate(rows):
        out.append(
            {
                "id": id_,
                "fingerprint": fingerprint,
                "asset": asset,
                "rule_id": rule_id,
                "category": category,
                "title": texts[3 * i],
                "severity": severity,
                "cvss_score": cvss_score,
                "cvss_vector": cvss_vector,
                "aliases": list(aliases),
                "cwe": list(cwe),
                "fixed_versions": list(fixed_versions),
                "location": {
                    "path": texts[3 * i + 1] if path else path,
                    "start_line": start_line,
                    "end_line": end_line,
                    "package": package,
                    "version": version,
                },
                "evidence": texts[3 * i + 2] if evidence else evidence,
                "first_seen": iso(first_seen),
                "last_seen": iso(last_seen),
                "status": status,
                "priority": priority,
                "sources": sources[id_],
            }
        )
    return out


def _page_queries(stmt: Select[Any], filters: dict[str, Any]) -> list[Select[Any]]:
    """:func:`findings_query` as one or two queries read one after the other.

    A keyset page after a sort value that many findings share (priorities
    and severities repeat a lot) is two simple ranges each an index can seek
    to: the findings tied with the cursor's value beyond its id, then those
    past the value. The single ``col < v OR (col = v AND id < last)`` query
    walks every tie before the page and grows slower the deeper it pages."""
    sort, after = filters.get("sort"), filters.get("after")
    key = sort.removeprefix("-") if sort else None
    if after is None or key is None or key == "id" or key not in SORT_KEYS:
        return [findings_query(stmt, **filters)]
    value, last_id = after
    col, desc = _sort_column(key), sort is not None and sort.startswith("-")
    rest = {k: v for k, v in filters.items() if k not in ("after", "limit")}
    ties = stmt.where(col == value, FindingRow.id < last_id if desc else FindingRow.id > last_id)
    beyond = stmt.where(col < value if desc else col > value)
    return [findings_query(ties, **rest), findings_query(beyond, **rest)]


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
