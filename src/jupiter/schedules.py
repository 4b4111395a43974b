"""Continuous detection: scan an asset or a group, or run the team's own
scanner and ingest its report, every N (``6h``) or on a cron expression.

``jupiter worker`` runs the due schedules (this module registers the
``schedules`` source). New or reopened findings raise the audit event
``event.findings.new``; a workflow with ``auto_start: true`` for their
category opens a remediation by itself.

The scanner command is an argv (split like a shell would, never run by
one) with placeholders ``{asset}``, ``{root}``, ``{connection}`` and
``{report}``: with ``{report}`` Jupiter ingests the file the command writes
there, otherwise its standard output. A report is ingested whatever the exit
code (scanners exit 1 when they find something); no report and a non-zero
exit is a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update

from jupiter import audit
from jupiter.errors import InputError, NotFoundError
from jupiter.limits import quote
from jupiter.permissions import ScopeKind, requires
from jupiter.store.tables import AssetRow, FindingRow, ScheduleRow

if TYPE_CHECKING:
    from jupiter.engine import Engine

MIN_EVERY = 60  # seconds: a scan more often than each minute is a mistake
DEFAULT_TIMEOUT = 600.0
PLACEHOLDERS = ("asset", "root", "connection", "report")
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CLOSED = ("verified", "fixed", "rolled_back")
_STDERR_TAIL = 400


def parse_every(text: str) -> int:
    """``6h``, ``90m``, ``1d12h``, ``45s``, ``2w`` → seconds (at least a minute)."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise InputError(
            f"--every {quote(text)} is not a duration; write a number and a unit s, m, h, d "
            "or w, such as 6h, 90m or 1d12h"
        )
    seconds = sum(int(n) * _UNIT[u] for n, u in parts)
    if seconds < MIN_EVERY:
        raise InputError(
            f"--every {quote(text)} is shorter than a minute; scan at most once a minute"
        )
    return seconds


def check_cron(expr: str, zone: str = "UTC") -> None:
    """InputError naming the problem when ``expr`` is not a 5-field cron expression."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime(2026, 1, 1, tzinfo=_zone(zone)))
    except CronSimError as exc:
        raise InputError(
            f"--cron {quote(expr)} is not a cron expression ({exc}); write five fields "
            "MINUTE HOUR DAY MONTH WEEKDAY, such as '0 */6 * * *'"
        ) from None


def _zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--zone {quote(zone)} is not an IANA time zone such as UTC or Europe/Berlin"
        ) from None


def next_run(row: ScheduleRow, after: datetime) -> datetime:
    """The first run time strictly after ``after``. Every-N schedules keep
    their rhythm (a worker that was down does not run them N times)."""
    if row.cron:
        from cronsim import CronSim

        local = after.astimezone(_zone(row.zone))
        return next(CronSim(row.cron, local)).astimezone(UTC)
    assert row.every_seconds is not None
    step = timedelta(seconds=row.every_seconds)
    nxt = row.next_run_at
    if nxt <= after:
        nxt += step * ((after - nxt) // step + 1)
    return nxt


def parse_command(command: str | list[str]) -> list[str]:
    """The scanner argv, checked: placeholders known, program found."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise InputError("--ingest-command is empty; give the scanner's command line")
    for arg in argv:
        for name in _PLACEHOLDER.findall(arg):
            if name not in PLACEHOLDERS:
                raise InputError(
                    f"--ingest-command has placeholder {{{name}}}; the placeholders are "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                )
    program = argv[0]
    if "{" in program:
        raise InputError("--ingest-command must start with the scanner program, not a placeholder")
    if shutil.which(program) is None:
        raise InputError(
            f"scanner {quote(program)} is not an executable on PATH or a path to one; "
            "install it or give its full path"
        )
    return argv


@dataclass
class Schedules:
    """The engine's schedules service (``engine.schedules``)."""

    engine: Engine

    def _require(self, action: str, kind: ScopeKind = "none", ref: object = None) -> None:
        self.engine._require(action, kind, ref)

    # -- managing --------------------------------------------------------
    @requires("schedules.manage", scope="asset", kind="asset")
    def add(
        self,
        *,
        asset: str | None = None,
        group: str | None = None,
        every: str | None = None,
        cron: str | None = None,
        zone: str = "UTC",
        scan: bool = False,
        ingest_command: str | list[str] | None = None,
        fmt: str = "auto",
        timeout: float = DEFAULT_TIMEOUT,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Create a schedule. An every-N schedule is due at once (the next
        worker round runs it); a cron schedule at its first time after ``now``."""
        from jupiter.ingest import FORMATS

        if (asset is None) == (group is None):
            raise InputError("give exactly one of --asset ID or --group NAME")
        if (every is None) == (cron is None):
            raise InputError("give exactly one of --every DURATION (such as 6h) or --cron EXPR")
        every_seconds = parse_every(every) if every is not None else None
        _zone(zone)
        if cron is not None:
            check_cron(cron, zone)
        argv = parse_command(ingest_command) if ingest_command is not None else None
        if fmt != "auto" and fmt not in FORMATS:
            raise InputError(
                f"unknown --format {quote(fmt)}; use auto or one of {', '.join(FORMATS)}"
            )
        if not 1 <= timeout <= 86400:
            raise InputError("--timeout must be between 1 and 86400 seconds")
        scan = scan or argv is None  # neither: a built-in scan
        now = now or datetime.now(UTC)
        with self.engine.db.transaction() as s:
            members = _members(s, asset, group)
            if scan:
                lacking = [a.id for a in members if not a.connection]
                if lacking:
                    raise InputError(
                        f"asset(s) {', '.join(lacking)} have no connection, so Jupiter cannot "
                        "scan them; set `connection:` in assets.yaml, or use --ingest-command"
                    )
            row = ScheduleRow(
                asset_id=asset,
                group_name=group,
                every_seconds=every_seconds,
                cron=cron,
                zone=zone,
                scan=scan,
                ingest_argv=argv,
                ingest_format=fmt,
                timeout=float(timeout),
                created_by=self.engine.actor,
                created_at=now,
                next_run_at=now,
                runs=0,
            )
            # Every N: first run at the next worker round; cron: at its first time.
            row.next_run_at = now if every_seconds else next_run(row, now)
            s.add(row)
            s.flush()
            data = schedule_to_json(row)
            audit.record(s, self.engine.actor, "schedule.added", f"schedule:{row.id}", data)
        return data

    @requires("schedules.read")
    def list_all(self) -> list[dict[str, Any]]:
        with self.engine.db.reading() as s:
            rows = s.scalars(select(ScheduleRow).order_by(ScheduleRow.id))
            return [schedule_to_json(r) for r in rows]

    @requires("schedules.manage")
    def remove(self, schedule_id: int) -> dict[str, Any]:
        with self.engine.db.transaction() as s:
            row = s.get(ScheduleRow, schedule_id)
            if row is None:
                raise NotFoundError(f"no schedule {schedule_id}; see `jupiter schedules list`")
            data = schedule_to_json(row)
            s.delete(row)
            audit.record(s, self.engine.actor, "schedule.removed", f"schedule:{schedule_id}", data)
        return data

    # -- running ---------------------------------------------------------
    @requires("schedules.run")
    def run_due(self, now: datetime) -> list[dict[str, Any]]:
        """Run every schedule due at ``now``; one failing does not stop the others."""
        with self.engine.db.reading() as s:
            due = list(
                s.scalars(
                    select(ScheduleRow.id)
                    .where(ScheduleRow.next_run_at <= now)
                    .order_by(ScheduleRow.next_run_at, ScheduleRow.id)
                )
            )
        out: list[dict[str, Any]] = []
        for schedule_id in due:
            claimed = self._claim(schedule_id, now)
            if claimed is None:
                continue  # another worker runs it
            try:
                out.append(self._run(claimed, now))
            except Exception as exc:  # noqa: BLE001 - one schedule must not stop the others
                out.append(self._failed(claimed, now, exc))
        return out

    def _failed(self, row: ScheduleRow, now: datetime, exc: Exception) -> dict[str, Any]:
        """A run that broke outside any one asset: recorded, the round goes on."""
        from jupiter.worker import _sentence

        error = {"asset": None, "step": "run", "error": _sentence(exc)}
        result = {"schedule": row.id, "at": now.isoformat(), "status": "failed", "errors": [error]}
        try:
            with self.engine.db.transaction() as s:
                current = s.get(ScheduleRow, row.id)
                if current is not None:
                    current.last_status = "failed"
                    current.last_result = {"status": "failed", "errors": [error]}
                    current.runs = (current.runs or 0) + 1
                audit.record(s, self.engine.actor, "schedule.failed", f"schedule:{row.id}", error)
        except Exception:  # noqa: BLE001, S110 - the worker's result still carries it
            pass
        return result

    def _claim(self, schedule_id: int, now: datetime) -> ScheduleRow | None:
        """Move the schedule's next run past ``now``, unless another worker did."""
        with self.engine.db.transaction() as s:
            row = s.get(ScheduleRow, schedule_id)
            if row is None or row.next_run_at > now:
                return None
            old = row.next_run_at
            new = next_run(row, now)
            done = s.execute(
                update(ScheduleRow)
                .where(ScheduleRow.id == schedule_id, ScheduleRow.next_run_at == old)
                .values(next_run_at=new, last_run_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 0) != 1:
                return None
            s.expunge(row)
            row.next_run_at, row.last_run_at = new, now
            return row

    def _run(self, row: ScheduleRow, now: datetime) -> dict[str, Any]:
        from jupiter.schedule_run import run_schedule

        return run_schedule(self.engine, row, now)


def _members(s: Any, asset: str | None, group: str | None) -> list[AssetRow]:
    if asset is not None:
        row = s.get(AssetRow, asset)
        if row is None:
            raise NotFoundError(
                f"no asset with id {quote(asset)}; see `jupiter assets list` or import it with "
                "`jupiter assets import`"
            )
        return [row]
    rows = list(
        s.scalars(select(AssetRow).where(AssetRow.group_name == group).order_by(AssetRow.id))
    )
    if not rows:
        groups = sorted({g for g in s.scalars(select(AssetRow.group_name)) if g is not None})
        known = ", ".join(groups) if groups else "none yet (set `group:` in assets.yaml)"
        raise NotFoundError(f"no asset is in group {quote(group)}; the groups are {known}")
    return rows


def members(engine: Engine, row: ScheduleRow) -> list[AssetRow]:
    """The assets a schedule covers now (a group's members change over time)."""
    with engine.db.reading() as s:
        found = _members(s, row.asset_id, row.group_name)
        for a in found:
            s.expunge(a)
        return found


def schedule_to_json(row: ScheduleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "asset": row.asset_id,
        "group": row.group_name,
        "every_seconds": row.every_seconds,
        "cron": row.cron,
        "zone": row.zone,
        "scan": row.scan,
        "ingest_command": row.ingest_argv,
        "format": row.ingest_format,
        "timeout": row.timeout,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "next_run_at": row.next_run_at.isoformat() if row.next_run_at else None,
        "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
        "last_status": row.last_status,
        "last_result": row.last_result,
        "runs": row.runs or 0,
    }


# --- the team's scanner ---------------------------------------------------


def run_scanner(
    argv: list[str], *, asset: AssetRow, timeout: float, workdir: Path
) -> tuple[Path | None, int, str]:
    """Run the scanner for ``asset`` in ``workdir``: (report file or None
    when it wrote nothing, exit code, the tail of its stderr)."""
    from jupiter.redact import redact_text
    from jupiter.targets.connection import LocalConnection, parse_connection

    report = workdir / "report"
    stdout = workdir / "stdout"
    connection = asset.connection or ""
    root = ""
    if connection:
        parsed = parse_connection(connection)
        root = (
            str(parsed.root.absolute()) if isinstance(parsed, LocalConnection) else str(parsed.root)
        )
    values = {"asset": asset.id, "root": root, "connection": connection, "report": str(report)}
    uses_report = any("{report}" in a for a in argv)
    if any("{root}" in a for a in argv) and not root:
        raise InputError(
            f"the scanner command uses {{root}} but asset {asset.id!r} has no connection; "
            "set `connection:` in assets.yaml"
        )
    final = [_PLACEHOLDER.sub(lambda m: values[m.group(1)], a) for a in argv]
    with stdout.open("wb") as out, (workdir / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            final,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise InputError(
                f"scanner {quote(argv[0])} for asset {asset.id!r} ran longer than its timeout of "
                f"{timeout:g} s and was stopped; raise --timeout or make the scan smaller"
            ) from None
    tail = (workdir / "stderr").read_bytes()[-_STDERR_TAIL:].decode("utf-8", "replace").strip()
    produced = report if uses_report else stdout
    if not produced.is_file() or produced.stat().st_size == 0:
        return None, code, redact_text(tail)
    return produced, code, redact_text(tail)


def new_since(engine: Engine, assets: list[str], before_id: int) -> list[FindingRow]:
    with engine.db.reading() as s:
        rows = list(
            s.scalars(
                select(FindingRow)
                .where(FindingRow.id > before_id, FindingRow.asset_id.in_(assets))
                .order_by(FindingRow.id)
            )
        )
        for r in rows:
            s.expunge(r)
        return rows


def max_finding_id(engine: Engine) -> int:
    from sqlalchemy import func

    with engine.db.reading() as s:
        return int(s.scalar(select(func.max(FindingRow.id))) or 0)


def tempdir() -> tempfile.TemporaryDirectory[str]:
    # PID in the name: recovery removes it if this process is killed (jupiter.scratch).
    return tempfile.TemporaryDirectory(prefix=f"jupiter-schedule-{os.getpid()}-")


def _source(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    return Schedules(engine).run_due(now)


def _register() -> None:
    from jupiter.worker import register_due

    register_due("schedules", _source)


_register()
