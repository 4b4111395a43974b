"""The dispatcher: delivers due outbox rows, at least once.

One pass (:func:`dispatch_once`):

1. **claim** due rows in one ``UPDATE`` (status pending, due now): they get
   this pass's claim token, one more attempt, and a lease (their next
   attempt moves ``lease_s`` ahead), so a second dispatcher skips them and a
   dispatcher killed mid-delivery loses nothing: the lease runs out and the
   rows are delivered again, with the same idempotency key;
2. **deliver** them per channel (a channel may batch: Splunk HEC); every
   failure is caught and becomes the row's ``last_error`` (redacted, and
   scrubbed of the channel's secrets);
3. **settle** each row in one transaction: ``delivered``; or due again after
   an exponential backoff with jitter; or ``dead`` once ``max_attempts``
   attempts failed (at once for a :class:`PermanentError`).

It runs outside every remediation's transaction: a channel that is down
only leaves rows pending, it never blocks or fails the change that raised
them.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from jupiter.faults import checkpoint
from jupiter.integrations.channels import Channel, ChannelError, Delivery, PermanentError, build
from jupiter.integrations.config import DispatchSettings, Routing
from jupiter.integrations.outbox import DEAD, DELIVERED, PENDING
from jupiter.redact import MASK, redact_text
from jupiter.store.db import Database
from jupiter.store.tables import OutboxRow, utcnow

log = logging.getLogger(__name__)
#: Shorter configured "secrets" are not scrubbed from errors one by one (a
#: one-letter test token would mask every such letter); redaction still runs.
_MIN_SECRET = 6


def backoff(attempt: int, settings: DispatchSettings, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): the
    exponential step ``base * 2**(attempt-1)`` capped at ``backoff_max_s``,
    "equal jitter" (half fixed, half random) so retries of many rows spread
    out but never come back at once."""
    step = min(settings.backoff_max_s, settings.backoff_base_s * 2.0 ** max(0, attempt - 1))
    jitter: float = (rng or random).uniform(0, step / 2)
    return step / 2 + jitter


@dataclass
class PassResult:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "dead": self.dead,
            "errors": self.errors,
        }


class Dispatcher:
    def __init__(self, db: Database, routing: Routing, rng: random.Random | None = None) -> None:
        self.db = db
        self.routing = routing
        self.settings = routing.dispatch
        self.rng = rng or random.Random()  # noqa: S311 - jitter
        self._channels: dict[str, Channel | Exception] = {}

    def channel(self, name: str) -> Channel:
        found = self._channels.get(name)
        if found is None:
            spec = self.routing.channels.get(name)
            try:
                if spec is None:
                    raise ChannelError(
                        f"channel {name!r} is no longer configured; add it back to "
                        "integrations.yaml, or purge these rows"
                    )
                found = build(spec, self.settings)
            except Exception as exc:  # noqa: BLE001 - a broken channel fails its rows only
                found = exc
            self._channels[name] = found
        if isinstance(found, Exception):
            raise found
        return found

    def close(self) -> None:
        for channel in self._channels.values():
            if isinstance(channel, Channel):
                channel.close()

    def dispatch_once(self, now: datetime | None = None) -> PassResult:
        now = now or utcnow()
        result = PassResult()
        rows = self._claim(now)
        if rows:
            checkpoint("outbox.after_claim")
        result.claimed = len(rows)
        by_channel: dict[str, list[Delivery]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(
                Delivery(
                    row.id, row.key, row.event, row.severity, row.subject, row.payload, row.attempts
                )
            )
        for name, items in by_channel.items():
            outcome = self._deliver(name, items)
            checkpoint("outbox.after_deliver")
            self._settle(items, outcome, result)
            checkpoint("outbox.after_settle")
        return result

    def _claim(self, now: datetime) -> list[OutboxRow]:
        token = uuid.uuid4().hex
        lease = now + timedelta(seconds=self.settings.lease_s)
        with self.db.transaction() as s:
            due = list(
                s.scalars(
                    select(OutboxRow.id)
                    .where(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now)
                    .order_by(OutboxRow.id)
                    .limit(self.settings.batch)
                )
            )
            if not due:
                return []
            # Re-checked in the UPDATE itself: of two dispatchers racing for
            # a row, only one's WHERE still matches it.
            s.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(due),
                    OutboxRow.status == PENDING,
                    OutboxRow.next_attempt_at <= now,
                )
                .values(claim=token, next_attempt_at=lease, attempts=OutboxRow.attempts + 1)
            )
        with self.db.reading() as s:
            return list(
                s.scalars(select(OutboxRow).where(OutboxRow.claim == token).order_by(OutboxRow.id))
            )

    def _deliver(self, name: str, items: list[Delivery]) -> dict[int, Exception | None]:
        try:
            channel = self.channel(name)
            outcome = channel.deliver_batch(items)
        except Exception as exc:  # noqa: BLE001 - never let a channel stop the pass
            return {i.id: exc for i in items}
        return {i.id: outcome.get(i.id, ChannelError("the channel gave no outcome")) for i in items}

    def _scrub(self, name: str, error: Exception) -> str:
        text = str(error) or type(error).__name__
        spec = self.routing.channels.get(name)
        for secret in spec.secret_values() if spec else []:
            if len(secret) >= _MIN_SECRET:
                text = text.replace(secret, MASK)
        return redact_text(text)[:2000]

    def _settle(
        self, items: list[Delivery], outcome: dict[int, Exception | None], result: PassResult
    ) -> None:
        now = utcnow()
        with self.db.transaction() as s:
            for item in items:
                row = s.get(OutboxRow, item.id)
                if row is None or row.status != PENDING:
                    continue  # purged or retried by hand meanwhile
                error = outcome[item.id]
                row.claim = None
                if error is None:
                    row.status, row.delivered_at, row.last_error = DELIVERED, now, None
                    result.delivered += 1
                    continue
                row.last_error = self._scrub(row.channel, error)
                result.errors[row.channel] = row.last_error
                if isinstance(error, PermanentError) or row.attempts >= self.settings.max_attempts:
                    row.status = DEAD
                    result.dead += 1
                    log.warning("outbox row %s is dead: %s", row.id, row.last_error)
                else:
                    wait = backoff(row.attempts, self.settings, self.rng)
                    row.next_attempt_at = now + timedelta(seconds=wait)
                    result.retrying += 1
