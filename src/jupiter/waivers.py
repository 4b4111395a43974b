"""Policy exceptions (waivers): a finding, a rule on an asset, or a rule on
an asset group is accepted as is until an expiry date.

A waiver is requested (reason, ticket and expiry required; the policy's
``exception`` decision caps how long it may last), then approved by someone
else (separation of duties). While approved and unexpired, the findings it
covers are ``excepted``: listed as such, skipped by ``fix``, counted apart.
On expiry (``jupiter exceptions expire``, also run by every scan) or
revocation they reopen, and the asset owners are named in the audit entry
for notification. :class:`jupiter.engine.Engine` inherits :class:`Excepting`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import InputError, NotFoundError, PermissionDenied
from jupiter.models import FindingStatus
from jupiter.permissions import requires
from jupiter.store.tables import AssetRow, FindingRow, WaiverRow, utcnow

if TYPE_CHECKING:
    from jupiter.policy import Decision
    from jupiter.store.db import Database

REQUESTED, APPROVED, REVOKED, EXPIRED = "requested", "approved", "revoked", "expired"


def parse_expiry(text: str, now: datetime) -> datetime:
    """``2026-12-31`` (end of that day, UTC), an ISO datetime, or ``30d``."""
    raw = text.strip()
    try:
        if raw.endswith("d") and raw[:-1].isdigit():
            when = now + timedelta(days=int(raw[:-1]))
        elif len(raw) == 10:
            when = datetime.combine(date.fromisoformat(raw), time(23, 59, 59), UTC)
        else:
            when = datetime.fromisoformat(raw)
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except ValueError:
        raise InputError(
            f"expiry {text!r} is not a date; give YYYY-MM-DD, an ISO datetime or Nd (days)"
        ) from None
    if when <= now:
        raise InputError(
            f"expiry {when.isoformat(timespec='seconds')} is in the past; an exception must "
            "expire in the future"
        )
    return when


def _covers(s: Session, w: WaiverRow) -> Any:
    """The SQL condition for the findings ``w`` covers."""
    if w.scope == "finding":
        return FindingRow.id == w.finding_id
    if w.scope == "rule_asset":
        return and_(FindingRow.rule_id == w.rule_id, FindingRow.asset_id == w.asset_id)
    assets = select(AssetRow.id).where(AssetRow.group_name == w.group_name)
    return and_(FindingRow.rule_id == w.rule_id, FindingRow.asset_id.in_(assets))


def active(s: Session, now: datetime) -> list[WaiverRow]:
    return list(
        s.scalars(select(WaiverRow).where(WaiverRow.status == APPROVED, WaiverRow.expires_at > now))
    )


def apply_waivers(s: Session, actor: str, now: datetime | None = None) -> list[int]:
    """Mark the open (or failed) findings an active waiver covers as
    excepted; one audit entry for all. Returns their ids."""
    now = now or utcnow()
    waivers = active(s, now)
    if not waivers:
        return []
    fixable = (FindingStatus.OPEN.value, FindingStatus.FAILED.value)
    cond = or_(*(_covers(s, w) for w in waivers))
    rows = list(s.scalars(select(FindingRow).where(FindingRow.status.in_(fixable), cond)))
    for row in rows:
        row.status = FindingStatus.EXCEPTED.value
    ids = sorted(r.id for r in rows)
    if ids:
        audit.record(s, actor, "findings.excepted", "findings", {"findings": ids})
    return ids


def _reopen_uncovered(s: Session, w: WaiverRow, actor: str, now: datetime) -> list[int]:
    """Reopen the excepted findings ``w`` covered that no other active
    waiver covers."""
    others = [o for o in active(s, now) if o.id != w.id]
    q = select(FindingRow).where(FindingRow.status == FindingStatus.EXCEPTED.value, _covers(s, w))
    if others:
        q = q.where(~or_(*(_covers(s, o) for o in others)))
    rows = list(s.scalars(q))
    for row in rows:
        row.status = FindingStatus.OPEN.value
    return sorted(r.id for r in rows)


def _owners(s: Session, finding_ids: list[int]) -> list[str]:
    if not finding_ids:
        return []
    q = (
        select(AssetRow.owner)
        .join(FindingRow, FindingRow.asset_id == AssetRow.id)
        .where(FindingRow.id.in_(finding_ids), AssetRow.owner.is_not(None))
    )
    return sorted({o for o in s.scalars(q) if o})


def expire_due(s: Session, actor: str, now: datetime) -> list[dict[str, Any]]:
    """Expire the approved waivers whose time is up; reopen their findings."""
    due = list(
        s.scalars(
            select(WaiverRow).where(WaiverRow.status == APPROVED, WaiverRow.expires_at <= now)
        )
    )
    out = []
    for w in due:
        w.status = EXPIRED
        reopened = _reopen_uncovered(s, w, actor, now)
        data = {"reopened": reopened, "notify": _owners(s, reopened)}
        audit.record(s, actor, "exception.expired", f"exception:{w.id}", data)
        out.append({"id": w.id, **data})
    return out


def waiver_json(w: WaiverRow) -> dict[str, Any]:
    return {
        "id": w.id,
        "scope": w.scope,
        "finding": w.finding_id,
        "rule_id": w.rule_id,
        "asset": w.asset_id,
        "group": w.group_name,
        "reason": w.reason,
        "ticket": w.ticket,
        "status": w.status,
        "requested_by": w.requested_by,
        "approved_by": w.approved_by,
        "requested_at": w.requested_at.isoformat(timespec="seconds"),
        "expires_at": w.expires_at.isoformat(timespec="seconds"),
    }


class Excepting:
    """Mixed into :class:`jupiter.engine.Engine`."""

    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

        def _decide(self, name: str, data: dict[str, Any], subject: str = "") -> Decision: ...

        def _audit_denied(self, action: str, ref: Any, why: str) -> None: ...

    @requires("exceptions.request")
    def request_exception(
        self,
        reason: str,
        ticket: str,
        expires: str,
        finding: str | None = None,
        rule: str | None = None,
        asset: str | None = None,
        group: str | None = None,
    ) -> dict[str, Any]:
        """Ask for a waiver of a finding, a rule on an asset, or a rule on a group."""
        from jupiter.store import findings as finding_repo

        now = utcnow()
        if not reason.strip() or not ticket.strip():
            raise InputError("an exception needs a --reason and a --ticket")
        if not expires.strip():
            raise InputError("an exception needs an expiry (--expires YYYY-MM-DD or Nd)")
        when = parse_expiry(expires, now)
        w = WaiverRow(
            reason=reason.strip(),
            ticket=ticket.strip(),
            status=REQUESTED,
            requested_by=self.actor,
            requested_at=now,
            expires_at=when,
        )
        with self.db.reading() as s:
            if finding is not None and rule is None and asset is None and group is None:
                row = finding_repo.get_finding(s, finding)
                w.scope, w.finding_id, severity = "finding", row.id, row.severity
            elif rule is not None and finding is None and (asset is None) != (group is None):
                w.rule_id, w.asset_id, w.group_name = rule, asset, group
                w.scope = "rule_asset" if asset is not None else "rule_group"
                if asset is not None and s.get(AssetRow, asset) is None:
                    raise NotFoundError(
                        f"asset {asset!r} does not exist; see `jupiter assets list`"
                    )
                severity = _worst_severity(s, w)
            else:
                raise InputError(
                    "name what the exception covers: --finding ID, or --rule RULE with "
                    "either --asset ASSET or --group GROUP"
                )
        days = (when - now).total_seconds() / 86400
        facts = {"finding": {"severity": severity}, "exception": {"days": round(days, 2)}}
        decision = self._decide("exception", facts, "exception request")
        if not decision.result["allowed"]:
            why = decision.error or (
                f"the policy allows at most {decision.result['max_days']} days for a "
                f"{severity} finding"
            )
            raise InputError(f"exception refused: {why}; ask for a shorter expiry")
        with self.db.transaction() as s:
            s.add(w)
            s.flush()
            audit.record(s, self.actor, "exception.requested", f"exception:{w.id}", waiver_json(w))
            return waiver_json(w)

    @requires("exceptions.approve")
    def approve_exception(self, waiver_id: int, comment: str = "") -> dict[str, Any]:
        """Approve a requested waiver (not one's own) and except its findings."""
        now = utcnow()
        with self.db.reading() as s:
            w = _get(s, waiver_id)
            refusal = None
            if w.requested_by == self.actor:
                refusal = (
                    f"{self.actor} requested exception {waiver_id} and so cannot approve it "
                    "(separation of duties); ask another admin"
                )
            elif w.status != REQUESTED:
                refusal = f"exception {waiver_id} is already {w.status}; nothing to approve"
            elif w.expires_at <= now:
                refusal = f"exception {waiver_id} expired before it was approved; request it again"
        if refusal is not None:
            self._audit_denied("exceptions.approve", f"exception:{waiver_id}", refusal)
            raise PermissionDenied(refusal)
        with self.db.transaction() as s:
            w = _get(s, waiver_id)
            w.status, w.approved_by, w.decided_at = APPROVED, self.actor, now
            audit.record(
                s,
                self.actor,
                "exception.approved",
                f"exception:{waiver_id}",
                {"comment": comment, "expires_at": w.expires_at.isoformat()},
            )
            excepted = apply_waivers(s, self.actor, now)
            return {**waiver_json(w), "excepted": excepted}

    @requires("exceptions.revoke")
    def revoke_exception(self, waiver_id: int, reason: str = "") -> dict[str, Any]:
        now = utcnow()
        with self.db.transaction() as s:
            w = _get(s, waiver_id)
            if w.status not in (REQUESTED, APPROVED):
                raise InputError(f"exception {waiver_id} is already {w.status}")
            was_active = w.status == APPROVED
            w.status, w.decided_at = REVOKED, now
            reopened = _reopen_uncovered(s, w, self.actor, now) if was_active else []
            data = {"reason": reason, "reopened": reopened, "notify": _owners(s, reopened)}
            audit.record(s, self.actor, "exception.revoked", f"exception:{waiver_id}", data)
            return {**waiver_json(w), "reopened": reopened}

    @requires("exceptions.read")
    def list_exceptions(self, status: str | None = None) -> list[dict[str, Any]]:
        statuses = (REQUESTED, APPROVED, REVOKED, EXPIRED)
        if status is not None and status not in statuses:
            raise InputError(f"unknown status {status!r}; use one of: {', '.join(statuses)}")
        with self.db.reading() as s:
            q = select(WaiverRow).order_by(WaiverRow.id)
            if status is not None:
                q = q.where(WaiverRow.status == status)
            return [waiver_json(w) for w in s.scalars(q)]

    @requires("exceptions.expire")
    def expire_exceptions(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Expire due waivers and reopen their findings (the worker's job
        when there is one; `jupiter exceptions expire` otherwise)."""
        with self.db.transaction() as s:
            return expire_due(s, self.actor, now or utcnow())


def _get(s: Session, waiver_id: int) -> WaiverRow:
    w = s.get(WaiverRow, waiver_id)
    if w is None:
        raise NotFoundError(f"exception {waiver_id} does not exist; see `jupiter exceptions list`")
    return w


def _worst_severity(s: Session, w: WaiverRow) -> str:
    order = ["critical", "high", "medium", "low", "info"]
    found = set(s.scalars(select(FindingRow.severity).where(_covers(s, w))))
    return next((sev for sev in order if sev in found), "high")


def _due(engine: Any, now: datetime) -> list[dict[str, Any]]:
    """The worker's share: expire due exceptions, reopening their findings."""
    done: list[dict[str, Any]] = engine.expire_exceptions(now)
    return done


def _register_with_worker() -> None:
    from jupiter.worker import register_due

    register_due("exceptions", _due)


_register_with_worker()
