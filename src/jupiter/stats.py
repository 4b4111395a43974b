"""Remediation statistics, computed in SQL (SQLite and PostgreSQL).

From the tables every workspace has (``runs``, ``run_steps``, ``findings``):

* ``remediations_performed``: finished fix runs (or, once the remediation
  workflow's ``remediations`` table exists, its ended remediations);
* ``remediation_success_rate`` (%): of those, the ones that succeeded;
* ``avg_remediation_time`` (minutes): a finding's detection (``first_seen``)
  to the end of the step that verified its fix;
* ``avg_run_duration_s``: a fix run's start to its end;
* ``rollbacks_performed``: rollback runs (``manual``) plus steps a failed
  verification rolled back on its own (``automatic``);
* ``vulnerabilities_fixed``: findings whose status is fixed or verified;
* ``mttr_hours_by_severity``, ``open_by_age`` (days buckets) and
  ``sla_breaches`` (open longer than the severity's SLA days).

``group`` limits everything to the assets of that group. ``since`` limits
runs, steps and fixes to those started (or finished) then
or later; open findings are always counted as they are now.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from jupiter.store.tables import (
    AssetRow,
    FindingRow,
    RemediationRow,
    RemediationTargetRow,
    RunRow,
    RunStepRow,
)

#: Days a finding of each severity may stay open (overridable per call).
SLA_DAYS = {"critical": 7, "high": 30, "medium": 90, "low": 180}
AGE_BUCKETS = ((0, 7), (7, 30), (30, 90), (90, None))
_ENDED_REMEDIATION = ("completed", "rolled_back", "failed")


def _seconds(session: Session, end: Any, start: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def statistics(
    session: Session,
    now: datetime,
    since: datetime | None = None,
    sla_days: dict[str, int] | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    sla = {**SLA_DAYS, **(sla_days or {})}
    run_window: list[ColumnElement[bool]] = [RunRow.started_at >= since] if since else []
    step_window: list[ColumnElement[bool]] = [RunStepRow.finished_at >= since] if since else []
    finding_scope: list[ColumnElement[bool]] = []
    if group is not None:
        assets = select(AssetRow.id).where(AssetRow.group_name == group)
        run_window.append(RunRow.asset_id.in_(assets))
        runs = select(RunRow.id).where(RunRow.asset_id.in_(assets))
        step_window.append(RunStepRow.run_id.in_(runs))
        finding_scope.append(FindingRow.asset_id.in_(assets))

    # A remediation's deploy runs count once, as the remediation (below).
    linked = select(RemediationTargetRow.fix_run_id).where(
        RemediationTargetRow.fix_run_id.is_not(None)
    )
    fix = and_(
        RunRow.kind == "fix", RunRow.status != "running", RunRow.id.not_in(linked), *run_window
    )
    finished, succeeded, failed, avg_run = session.execute(
        select(
            func.count(),
            func.count(case((RunRow.status == "succeeded", 1))),
            func.count(case((RunRow.status.in_(("failed", "interrupted")), 1))),
            func.avg(_seconds(session, RunRow.finished_at, RunRow.started_at)),
        ).where(fix, RunRow.finished_at.is_not(None))
    ).one()
    manual = session.scalar(
        select(func.count()).select_from(RunRow).where(RunRow.kind == "rollback", *run_window)
    )
    automatic = session.scalar(
        select(func.count())
        .select_from(RunStepRow)
        .where(RunStepRow.status == "rolled_back", *step_window)
    )

    verified = and_(RunStepRow.status == "verified", RunStepRow.finished_at.is_not(None))
    to_fix = _seconds(session, RunStepRow.finished_at, FindingRow.first_seen)
    mttr_rows = session.execute(
        select(FindingRow.severity, func.avg(to_fix), func.count())
        .join(FindingRow, FindingRow.id == RunStepRow.finding_id)
        .where(verified, *step_window)
        .group_by(FindingRow.severity)
    ).all()
    total_s = sum(float(avg) * n for _, avg, n in mttr_rows)
    total_n = sum(n for _, _, n in mttr_rows)

    fixed_window = (
        [FindingRow.id.in_(select(RunStepRow.finding_id).where(verified, *step_window))]
        if since
        else []
    )
    fixed = session.scalar(
        select(func.count())
        .select_from(FindingRow)
        .where(FindingRow.status.in_(("fixed", "verified")), *fixed_window, *finding_scope)
    )

    age_days = _seconds(session, literal(_bind_now(session, now)), FindingRow.first_seen) / 86400.0
    bucket_cols = [
        func.count(case((and_(age_days >= lo, age_days < hi) if hi else age_days >= lo, 1)))
        for lo, hi in AGE_BUCKETS
    ]
    breach_cols = [
        func.count(case((and_(FindingRow.severity == sev, age_days > days), 1)))
        for sev, days in sla.items()
    ]
    open_row = session.execute(
        select(func.count(), *bucket_cols, *breach_cols).where(
            FindingRow.status == "open", *finding_scope
        )
    ).one()
    open_total = open_row[0]
    buckets = open_row[1 : 1 + len(AGE_BUCKETS)]
    breaches = open_row[1 + len(AGE_BUCKETS) :]

    out: dict[str, Any] = {
        "since": since.isoformat() if since else None,
        "group": group,
        "source": "runs",
        "remediations_performed": finished,
        "remediation_success_rate": round(100.0 * succeeded / finished, 1) if finished else None,
        "fix_runs": {"finished": finished, "succeeded": succeeded, "failed": failed},
        "avg_run_duration_s": round(float(avg_run), 3) if avg_run is not None else None,
        "avg_remediation_time": round(total_s / total_n / 60.0, 2) if total_n else None,
        "rollbacks_performed": int(manual or 0) + int(automatic or 0),
        "rollbacks": {"manual": int(manual or 0), "automatic": int(automatic or 0)},
        "vulnerabilities_fixed": int(fixed or 0),
        "mttr_hours_by_severity": {
            sev: round(float(avg) / 3600.0, 3) for sev, avg, _ in sorted(mttr_rows)
        },
        "open_findings": open_total,
        "open_by_age": {
            _bucket_name(lo, hi): n for (lo, hi), n in zip(AGE_BUCKETS, buckets, strict=True)
        },
        "sla_days": sla,
        "sla_breaches": {sev: n for sev, n in zip(sla, breaches, strict=True) if n},
    }
    _remediations(session, out, since, group)
    return out


def _bind_now(session: Session, now: datetime) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return now
    # SQLite stores UTC datetimes as naive text: compare like with like.
    return now.replace(tzinfo=None).isoformat(sep=" ")


def _bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}-{hi}d" if hi is not None else f">{lo}d"


def _remediations(
    session: Session, out: dict[str, Any], since: datetime | None, group: str | None
) -> None:
    """Ended remediations count as performed (completed ones as succeeded),
    beside the fix runs made outside any remediation."""
    query = select(RemediationRow.status, func.count()).group_by(RemediationRow.status)
    if since is not None:
        query = query.where(RemediationRow.created_at >= since)
    if group is not None:
        query = query.where(RemediationRow.group_name == group)
    by_status = {str(s): int(n) for s, n in session.execute(query).all()}
    out["remediations"] = by_status
    ended = sum(by_status.get(s, 0) for s in _ENDED_REMEDIATION)
    if not ended:
        return
    runs = out["fix_runs"]
    performed = runs["finished"] + ended
    succeeded = runs["succeeded"] + by_status.get("completed", 0)
    out["source"] = "runs and remediations" if runs["finished"] else "remediations"
    out["remediations_performed"] = performed
    out["remediation_success_rate"] = round(100.0 * succeeded / performed, 1)


def default_now() -> datetime:
    from jupiter.store.tables import utcnow

    return utcnow()


def window(value: str | None, now: datetime) -> datetime | None:
    """``--since``: an ISO date/time, or a duration like ``30d``, ``12h``."""
    from jupiter.errors import InputError

    if not value:
        return None
    units = {"d": "days", "h": "hours", "w": "weeks", "m": "minutes"}
    if value[-1:] in units and value[:-1].isdecimal():
        return now - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"--since {value!r} is neither a date (2026-11-01) nor a duration (30d, 12h, 2w)"
        ) from None
    from datetime import UTC

    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
