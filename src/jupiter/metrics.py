"""Prometheus metrics, read from the workspace on every scrape.

Counters are the database's own totals (runs, rollbacks, outbox rows), so
every process that serves them agrees and nothing is lost on a restart:

* ``jupiter_fix_runs_total{status}``, ``jupiter_fix_run_duration_seconds``
  (histogram of finished fix runs);
* ``jupiter_rollbacks_total{kind="manual|automatic"}``;
* ``jupiter_vulnerabilities_fixed_total``, ``jupiter_open_findings{severity}``;
* ``jupiter_outbox_deliveries_total{channel,status="delivered|dead"}``,
  ``jupiter_outbox_pending{channel}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func, select

from jupiter.store.db import Database
from jupiter.store.tables import FindingRow, OutboxRow, RunRow, RunStepRow

BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class WorkspaceCollector:
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        from jupiter.stats import _seconds

        with self.db.reading() as s:
            runs = CounterMetricFamily("jupiter_fix_runs", "Fix runs by status.", labels=["status"])
            for status, n in s.execute(
                select(RunRow.status, func.count())
                .where(RunRow.kind == "fix")
                .group_by(RunRow.status)
            ):
                runs.add_metric([status], n)
            yield runs

            duration = _seconds(s, RunRow.finished_at, RunRow.started_at)
            finished = (RunRow.kind == "fix", RunRow.finished_at.is_not(None))
            row: Any = s.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(duration), 0.0),
                    *(func.count().filter(duration <= b) for b in BUCKETS),
                ).where(*finished)
            ).one()
            count, total, cumulative = row[0], float(row[1]), row[2:]
            buckets = [(str(b), c) for b, c in zip(BUCKETS, cumulative, strict=True)]
            buckets.append(("+Inf", count))
            yield HistogramMetricFamily(
                "jupiter_fix_run_duration_seconds",
                "Duration of finished fix runs.",
                buckets=buckets,
                sum_value=total,
            )

            rollbacks = CounterMetricFamily(
                "jupiter_rollbacks",
                "Rollbacks: rollback runs and steps rolled back.",
                labels=["kind"],
            )
            rollbacks.add_metric(
                ["manual"],
                s.scalar(select(func.count()).select_from(RunRow).where(RunRow.kind == "rollback"))
                or 0,
            )
            rollbacks.add_metric(
                ["automatic"],
                s.scalar(
                    select(func.count())
                    .select_from(RunStepRow)
                    .where(RunStepRow.status == "rolled_back")
                )
                or 0,
            )
            yield rollbacks

            fixed = s.scalar(
                select(func.count())
                .select_from(FindingRow)
                .where(FindingRow.status.in_(("fixed", "verified")))
            )
            yield CounterMetricFamily(
                "jupiter_vulnerabilities_fixed", "Findings fixed or verified.", value=fixed or 0
            )
            open_ = GaugeMetricFamily(
                "jupiter_open_findings", "Open findings by severity.", labels=["severity"]
            )
            for severity, n in s.execute(
                select(FindingRow.severity, func.count())
                .where(FindingRow.status == "open")
                .group_by(FindingRow.severity)
            ):
                open_.add_metric([severity], n)
            yield open_

            deliveries = CounterMetricFamily(
                "jupiter_outbox_deliveries",
                "Outbox rows delivered or dead, by channel.",
                labels=["channel", "status"],
            )
            pending = GaugeMetricFamily(
                "jupiter_outbox_pending", "Outbox rows waiting, by channel.", labels=["channel"]
            )
            for channel, status, n in s.execute(
                select(OutboxRow.channel, OutboxRow.status, func.count()).group_by(
                    OutboxRow.channel, OutboxRow.status
                )
            ):
                if status == "pending":
                    pending.add_metric([channel], n)
                else:
                    deliveries.add_metric([channel, status], n)
            yield deliveries
            yield pending


def registry(db: Database) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WorkspaceCollector(db))
    return reg


def render(db: Database) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry(db)).decode()
