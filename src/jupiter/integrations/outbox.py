"""The outbox: rows written inside the audit entry's transaction, and what
``jupiter outbox list|retry|purge`` does with them.

:func:`enqueue` is called by ``audit.record`` for a mapped action only; it
finds the routes that take the event (cached per event and severity), and
writes one row per channel. The payload is the audit entry (already
redacted) plus a little context (the run's asset, environment and group,
its steps) that messages show and routes filter on; redacted again, so a
secret never reaches a stored row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from jupiter.errors import InputError, NotFoundError
from jupiter.integrations.config import Route, Routing
from jupiter.integrations.events import Event
from jupiter.redact import redact
from jupiter.store.tables import AssetRow, AuditRow, OutboxRow, RunRow, RunStepRow, utcnow

ROUTING_KEY = "jupiter.routing"
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)
#: Steps listed in a run's event (messages show them; the rest are counted).
_MAX_STEPS = 20


def enqueue(session: Session, row: AuditRow, event: Event, data: dict[str, Any]) -> int:
    """Write the outbox rows of one audited event; returns how many."""
    routing: Routing | None = session.info.get(ROUTING_KEY)
    if routing is None or not routing.routes:
        return 0
    routes = routing.candidates(event.name, event.severity)
    if not routes:
        return 0
    context = _context(session, row.subject, data)
    channels = _channels(routes, context)
    if not channels:
        return 0
    now = utcnow()
    payload = redact(
        {
            "event": event.name,
            "severity": event.severity.label,
            "action": row.action,
            "subject": row.subject,
            "actor": row.actor,
            "seq": row.seq,
            "hash": row.hash,
            "ts": row.ts,
            "data": data,
            "context": context,
        }
    )
    for channel in channels:
        session.add(
            OutboxRow(
                key=f"jupiter-{row.seq}-{event.name}-{channel}",
                audit_seq=row.seq,
                event=event.name,
                severity=event.severity.label,
                channel=channel,
                subject=row.subject[:500],
                payload=payload,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                claim=None,
                last_error=None,
                created_at=now,
                delivered_at=None,
            )
        )
    return len(channels)


def _channels(routes: list[Route], context: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for route in routes:
        if route.needs_context and not route.matches_context(
            context.get("group"), context.get("environment")
        ):
            continue
        out.extend(c for c in route.channels if c not in out)
    return out


def _context(session: Session, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    """The asset (with environment and group) and steps an event is about."""
    context: dict[str, Any] = {}
    asset_id = data.get("asset") if isinstance(data.get("asset"), str) else None
    run_id = _run_id(subject)
    if run_id is not None:
        run = session.get(RunRow, run_id)
        if run is not None:
            asset_id = asset_id or run.asset_id
            context.update(run=run.id, kind=run.kind, target=run.target, status=run.status)
            if run.rollback_of is not None:
                context["rollback_of"] = run.rollback_of
            steps = session.execute(
                select(RunStepRow.finding_id, RunStepRow.rule_id, RunStepRow.status)
                .where(RunStepRow.run_id == run_id)
                .order_by(RunStepRow.seq)
                .limit(_MAX_STEPS)
            ).all()
            context["steps"] = [{"finding": f, "rule_id": r, "status": s} for f, r, s in steps]
    if asset_id:
        asset = session.get(AssetRow, asset_id)
        context["asset"] = asset_id
        if asset is not None:
            context.update(
                asset_name=asset.name, environment=asset.environment, group=asset.group_name
            )
    for key in ("environment", "group", "jira_key"):
        if isinstance(data.get(key), str):
            context[key] = data[key]
    return context


def _run_id(subject: str) -> int | None:
    if not subject.startswith("run:"):
        return None
    head = subject[4:].split("/", 1)[0]
    return int(head) if head.isdecimal() else None


# -- jupiter outbox list | retry | purge ---------------------------------------


def to_json(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "event": row.event,
        "severity": row.severity,
        "channel": row.channel,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == PENDING else None,
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "audit_seq": row.audit_seq,
    }


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown outbox status {status!r}; use one of: {', '.join(STATUSES)}")


def list_rows(
    session: Session, status: str | None = None, channel: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    _check_status(status)
    stmt = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxRow.status == status)
    if channel:
        stmt = stmt.where(OutboxRow.channel == channel)
    return [to_json(r) for r in session.scalars(stmt)]


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
    return {status: n for status, n in rows}


def retry(session: Session, ids: list[int], all_dead: bool, now: datetime) -> list[int]:
    """Put dead (or waiting) rows back in line, due now, attempts reset."""
    if not ids and not all_dead:
        raise InputError("give the ids of outbox rows to retry, or --dead for every dead row")
    stmt = select(OutboxRow.id)
    if all_dead:
        stmt = stmt.where(OutboxRow.status == DEAD)
    else:
        stmt = stmt.where(OutboxRow.id.in_(ids))
        found = set(session.scalars(stmt))
        missing = sorted(set(ids) - found)
        if missing:
            raise NotFoundError(
                f"no outbox row {', '.join(map(str, missing))}; see `jupiter outbox list`"
            )
        stmt = stmt.where(OutboxRow.status != DELIVERED)
    chosen = sorted(session.scalars(stmt))
    if chosen:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(chosen))
            .values(status=PENDING, attempts=0, next_attempt_at=now, claim=None)
        )
    return chosen


def purge(session: Session, status: str, older_than: timedelta, now: datetime) -> int:
    """Delete delivered (or dead) rows created before ``now - older_than``."""
    if status not in (DELIVERED, DEAD):
        raise InputError(f"purge removes delivered or dead rows, not {status!r}")
    result = session.execute(
        delete(OutboxRow).where(OutboxRow.status == status, OutboxRow.created_at < now - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
