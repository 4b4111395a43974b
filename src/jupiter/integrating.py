"""Integrations' engine operations: the outbox, its dispatcher, statistics
and metrics. :class:`jupiter.engine.Engine` inherits them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jupiter.integrations import outbox
from jupiter.permissions import requires
from jupiter.store.db import Database
from jupiter.store.tables import utcnow
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from jupiter.integrations.config import Routing
    from jupiter.integrations.dispatch import PassResult


class Integrating:
    """Mixed into :class:`jupiter.engine.Engine`."""

    workspace: Workspace
    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    @property
    def routing(self) -> Routing:
        routing: Routing = self.db.info[outbox.ROUTING_KEY]
        return routing

    @requires("integrations.read")
    def outbox_list(
        self, status: str | None = None, channel: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        with self.db.reading() as s:
            return {
                "counts": outbox.counts(s),
                "rows": outbox.list_rows(s, status, channel, limit),
            }

    @requires("integrations.manage")
    def outbox_retry(self, ids: list[int], all_dead: bool = False) -> list[int]:
        from jupiter import audit

        with self.db.transaction() as s:
            chosen = outbox.retry(s, ids, all_dead, utcnow())
            if chosen:
                audit.record(s, self.actor, "outbox.retried", "outbox", {"ids": chosen})
        return chosen

    @requires("integrations.manage")
    def outbox_purge(self, status: str, older_than: timedelta) -> int:
        from jupiter import audit

        with self.db.transaction() as s:
            n = outbox.purge(s, status, older_than, utcnow())
            audit.record(
                s,
                self.actor,
                "outbox.purged",
                "outbox",
                {"status": status, "older_than_s": older_than.total_seconds(), "rows": n},
            )
        return n

    @requires("integrations.manage")
    def outbox_dispatch(
        self,
        once: bool = True,
        interval: float = 5.0,
        on_pass: Callable[[PassResult], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> PassResult:
        """Deliver due rows: one pass (``once``), or passes every
        ``interval`` seconds until ``stop()`` says so (or Ctrl-C)."""
        from jupiter.integrations.dispatch import Dispatcher

        dispatcher = Dispatcher(self.db, self.routing)
        try:
            while True:
                result = dispatcher.dispatch_once()
                if on_pass is not None:
                    on_pass(result)
                if once or (stop is not None and stop()):
                    return result
                if not result.claimed:
                    time.sleep(interval)
        finally:
            dispatcher.close()

    @requires("integrations.read")
    def statistics(self, since: str | None = None, group: str | None = None) -> dict[str, Any]:
        from jupiter.stats import statistics, window

        now = utcnow()
        start = window(since, now)
        with self.db.reading() as s:
            return statistics(s, now, start, group=group)

    @requires("integrations.read")
    def metrics_text(self) -> str:
        from jupiter.metrics import render

        return render(self.db)
