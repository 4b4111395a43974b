"""One run of a schedule (see :mod:`jupiter.schedules`): scan and/or run
the scanner and ingest for each asset it covers, then tell what is new.

Each asset is isolated: one whose scan or scanner fails is recorded in the
run's ``errors`` and the others go on. New findings (first stored by this
run) and reopened ones (found again after they were fixed) raise the audit
event ``event.findings.new``; for each workflow with ``auto_start: true``
that their categories follow, a remediation is opened.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from jupiter import audit
from jupiter.errors import InputError
from jupiter.schedules import (
    max_finding_id,
    members,
    new_since,
    run_scanner,
    tempdir,
)
from jupiter.store.tables import FindingRow, ScheduleRow, utcnow

if TYPE_CHECKING:
    from jupiter.engine import Engine
    from jupiter.store.tables import AssetRow
    from jupiter.workflows.definitions import Workflow

_CLOSED = ("verified", "fixed", "rolled_back")


def run_schedule(engine: Engine, row: ScheduleRow, now: datetime) -> dict[str, Any]:
    from jupiter.worker import _sentence

    result: dict[str, Any] = {
        "schedule": row.id,
        "at": now.isoformat(),
        "assets": [],
        "detected": 0,
        "new_findings": [],
        "reopened": [],
        "remediations": [],
        "errors": [],
        "scan_problems": [],
    }
    try:
        assets = members(engine, row)
    except InputError as exc:
        assets = []
        result["errors"].append({"asset": None, "step": "assets", "error": exc.message})
    before = max_finding_id(engine)
    reopened: list[int] = []
    ok_assets = 0
    for asset in assets:
        result["assets"].append(asset.id)
        failed = False
        for step, fn in (("scan", _scan), ("ingest", _ingest)):
            if (step == "scan" and not row.scan) or (step == "ingest" and not row.ingest_argv):
                continue
            try:
                detected, again, problems = fn(engine, row, asset)
                result["detected"] += detected
                reopened.extend(again)
                result["scan_problems"].extend({"asset": asset.id, **p} for p in problems)
            except Exception as exc:  # noqa: BLE001 - one asset must not stop the others
                failed = True
                result["errors"].append({"asset": asset.id, "step": step, "error": _sentence(exc)})
        ok_assets += not failed
    ids = [a.id for a in assets]
    new = new_since(engine, ids, before) if ids else []
    result["new_findings"] = [f.id for f in new]
    result["reopened"] = sorted(set(reopened) - set(result["new_findings"]))
    status = "ok" if not result["errors"] else ("partial" if ok_assets else "failed")
    result["status"] = status
    fresh = result["new_findings"] + result["reopened"]
    if fresh:
        _announce(engine, row, fresh, result)
        for name, problem in _auto_start(engine, row, fresh, result["remediations"]):
            result["errors"].append({"asset": None, "step": f"auto_start {name}", "error": problem})
            if result["status"] == "ok":  # found what it found, but could not act on it
                result["status"] = "partial"
    _finish(engine, row, result)
    return result


def _scan(
    engine: Engine, row: ScheduleRow, asset: AssetRow
) -> tuple[int, list[int], list[dict[str, str]]]:
    from jupiter.targets.factory import open_target

    if not asset.connection:
        raise InputError(
            f"asset {asset.id!r} has no connection, so Jupiter cannot scan it; set "
            "`connection:` in assets.yaml"
        )
    target = open_target(asset.connection)
    with closing(target):
        report = engine._scan(target, asset.id)
    return report.stats.results, list(report.reopened), list(report.errors)


def _ingest(
    engine: Engine, row: ScheduleRow, asset: AssetRow
) -> tuple[int, list[int], list[dict[str, str]]]:
    assert row.ingest_argv is not None
    started = utcnow()
    with tempdir() as tmp:
        from pathlib import Path

        report, code, tail = run_scanner(
            row.ingest_argv, asset=asset, timeout=row.timeout, workdir=Path(tmp)
        )
        if report is None:
            if code != 0:
                raise InputError(
                    f"scanner {row.ingest_argv[0]!r} exited with {code} and wrote no report"
                    + (f" ({tail})" if tail else "")
                    + "; run the command by hand to see why"
                )
            return 0, [], []
        ingested = engine.ingest([report], asset=asset.id, fmt=row.ingest_format)
    return ingested.stats.results, _reopen_seen(engine, asset.id, started), []


def _reopen_seen(engine: Engine, asset_id: str, since: datetime) -> list[int]:
    """Findings the scanner reported again after they were fixed: open again
    (as a scan does)."""
    with engine.db.transaction() as s:
        fingerprints = list(
            s.scalars(
                select(FindingRow.fingerprint).where(
                    FindingRow.asset_id == asset_id,
                    FindingRow.last_seen >= since,
                    FindingRow.status.in_(_CLOSED),
                )
            )
        )
        return engine._reopen(s, fingerprints) if fingerprints else []


def _announce(engine: Engine, row: ScheduleRow, fresh: list[int], result: dict[str, Any]) -> None:
    with engine.db.transaction() as s:
        cats: dict[str, int] = defaultdict(int)
        severities: dict[str, int] = defaultdict(int)
        for f in s.scalars(select(FindingRow).where(FindingRow.id.in_(fresh))):
            cats[f.category] += 1
            severities[f.severity] += 1
        audit.record(
            s,
            engine.actor,
            "event.findings.new",
            f"schedule:{row.id}",
            {
                "schedule": row.id,
                "asset": row.asset_id,
                "group": row.group_name,
                "new": result["new_findings"],
                "reopened": result["reopened"],
                "categories": dict(sorted(cats.items())),
                "severities": dict(sorted(severities.items())),
            },
        )


def _auto_start(
    engine: Engine, row: ScheduleRow, fresh: list[int], started: list[Any]
) -> list[tuple[str, str]]:
    """Open a remediation per auto-start workflow the fresh findings follow;
    returns the (workflow, error) pairs that could not be opened."""
    from jupiter.worker import _sentence
    from jupiter.workflows.loading import choose_workflow, workflow_sources

    try:
        sources = workflow_sources(engine.workspace.home)  # read once for every finding
    except InputError as exc:
        return [("workflows", exc.message)]
    with engine.db.reading() as s:
        query = select(FindingRow.id, FindingRow.category).where(FindingRow.id.in_(fresh))
        found = list(s.execute(query))
    by_workflow: dict[str, tuple[Workflow, list[int]]] = {}
    problems: list[tuple[str, str]] = []
    for fid, category in found:
        wf = choose_workflow(category, sources)
        if wf.auto_start:
            by_workflow.setdefault(wf.name, (wf, []))[1].append(fid)
    for name, (wf, ids) in sorted(by_workflow.items()):
        try:
            started.append(open_remediation(engine, row, wf, sorted(ids)))
        except Exception as exc:  # noqa: BLE001 - report it, open the others
            problems.append((name, _sentence(exc)))
    return problems


def open_remediation(
    engine: Engine, row: ScheduleRow, wf: Workflow, ids: list[int]
) -> dict[str, Any]:
    """Plan and store a remediation of ``ids`` with ``wf`` on the schedule's
    asset or group (``planned``; the worker's remediations source drives it,
    and its approval or manual stages wait for people as usual)."""
    created = engine.remediations.create(
        findings=ids, workflow=wf.name, asset=row.asset_id, group=row.group_name
    )
    info = created.remediation
    return {
        "workflow": wf.name,
        "status": created.status,  # planned, or nothing_to_do when no fix applies
        "remediation": info.id if info is not None else None,
        "plan_hash": created.plan_hash,
        "findings": ids,
    }


def _finish(engine: Engine, row: ScheduleRow, result: dict[str, Any]) -> None:
    with engine.db.transaction() as s:
        current = s.get(ScheduleRow, row.id)
        summary = {
            k: result[k]
            for k in ("status", "assets", "detected", "new_findings", "reopened", "errors")
        } | {"remediations": len(result["remediations"])}
        if current is not None:  # removed while it ran: keep the audit entry only
            current.last_status = result["status"]
            current.last_result = summary
            current.runs = (current.runs or 0) + 1
        audit.record(s, engine.actor, "schedule.ran", f"schedule:{row.id}", summary)
