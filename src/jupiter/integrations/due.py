"""The outbox dispatcher as the worker's due work: every ``jupiter worker``
round delivers what is due (one pass; see :mod:`jupiter.integrations.dispatch`).
Imported by :mod:`jupiter.worker` (``SOURCE_MODULES``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jupiter.worker import register_due

if TYPE_CHECKING:
    from jupiter.engine import Engine


def deliver_due(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    from jupiter.integrations.dispatch import Dispatcher

    dispatcher = Dispatcher(engine.db, engine.routing)
    try:
        result = dispatcher.dispatch_once(now)
    finally:
        dispatcher.close()
    return [result.to_json()] if result.claimed else []


register_due("outbox", deliver_due)
