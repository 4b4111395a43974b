"""Continuous detection: schedules run by the worker on a fake clock, with
real scans of a copy of examples/host and a real scanner process."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jupiter import worker
from jupiter.engine import Engine
from jupiter.errors import InputError, NotFoundError
from jupiter.schedules import Schedules, check_cron, next_run, parse_every
from jupiter.store.tables import AuditRow, FindingRow, ScheduleRow
from tests.conftest import ROOT, run_cli

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SARIF = ROOT / "examples" / "reports" / "semgrep.sarif"
# A stand-in for the team's scanner: copies a real SARIF report to the path it
# is given, or fails like a scanner would when the target is missing.
SCANNER = """\
import shutil, sys
root, report = sys.argv[1], sys.argv[2]
import os
if not os.path.isdir(root):
    sys.stderr.write(f"scanner: {root}: no such directory\\n")
    sys.exit(3)
shutil.copyfile(sys.argv[3], report)
sys.exit(1)  # scanners exit 1 when they find something
"""


def _assets(engine: Engine, tmp_path: Path, **roots: Path | None) -> None:
    lines = ["assets:"]
    for name, root in roots.items():
        lines += [f"  - id: {name}", "    environment: prod", "    group: fleet"]
        if root is not None:
            lines.append(f"    connection: local:{root}")
    path = tmp_path / "assets.yaml"
    path.write_text("\n".join(lines) + "\n")
    engine.import_assets(path)


def _host(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(ROOT / "examples" / "host", root)
    return root


def _events(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.db.reading() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.seq))
        return [json.loads(r.data) for r in rows]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6h", 21600), ("90m", 5400), ("1d12h", 129600), ("2w", 1209600), ("60s", 60), (" 1H ", 3600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("6x", "is not a duration; write a number and a unit"),
        ("h", "is not a duration"),
        ("", "is not a duration"),
        ("-6h", "is not a duration"),
        ("30s", "shorter than a minute"),
    ],
)
def test_bad_durations(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        parse_every(text)


def test_cron_checks_and_zones() -> None:
    check_cron("0 */6 * * *")
    for bad in ("0 */6 * *", "61 * * * *", "0 0 31 2 *x", "every day"):
        with pytest.raises(InputError, match=r"is not a cron expression .*five fields"):
            check_cron(bad)
    with pytest.raises(InputError, match="not an IANA time zone"):
        check_cron("0 2 * * *", "Mars/Base")
    row = ScheduleRow(cron="0 */6 * * *", zone="UTC", next_run_at=T0)
    assert next_run(row, T0) == T0 + timedelta(hours=6)
    assert next_run(row, T0 - timedelta(seconds=1)) == T0
    # 02:30 Berlin does not exist on 2026-03-29: cron runs at 03:00 CEST.
    night = ScheduleRow(cron="30 2 * * *", zone="Europe/Berlin", next_run_at=T0)
    assert next_run(night, datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


def test_every_keeps_its_rhythm_after_downtime() -> None:
    row = ScheduleRow(every_seconds=6 * 3600, next_run_at=T0)
    assert next_run(row, T0) == T0 + timedelta(hours=6)
    # The worker was down for a day and a bit: one run, then back on the grid.
    assert next_run(row, T0 + timedelta(hours=25)) == T0 + timedelta(hours=30)


def test_bad_input_is_one_sentence(sqlite_engine: Engine, tmp_path: Path) -> None:
    _assets(sqlite_engine, tmp_path, web=tmp_path, db=None)
    sched = sqlite_engine.schedules
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"asset": "nope", "every": "6h"}, NotFoundError, "no asset with id 'nope'"),
        (
            {"group": "nope", "every": "6h"},
            NotFoundError,
            "no asset is in group 'nope'; the groups are fleet",
        ),
        ({"every": "6h"}, InputError, "exactly one of --asset ID or --group NAME"),
        ({"asset": "web", "group": "fleet", "every": "6h"}, InputError, "exactly one of --asset"),
        ({"asset": "web"}, InputError, "exactly one of --every"),
        (
            {"asset": "web", "every": "6h", "cron": "* * * * *"},
            InputError,
            "exactly one of --every",
        ),
        ({"asset": "web", "every": "soon"}, InputError, "'soon' is not a duration"),
        ({"asset": "web", "cron": "0 25 * * *"}, InputError, "is not a cron expression"),
        ({"asset": "db", "every": "6h"}, InputError, "db have no connection"),
        ({"group": "fleet", "every": "6h", "scan": True}, InputError, "db have no connection"),
        (
            {"asset": "web", "every": "6h", "ingest_command": "trivy-not-installed fs {root}"},
            InputError,
            "scanner 'trivy-not-installed' is not an executable on PATH",
        ),
        (
            {"asset": "web", "every": "6h", "ingest_command": "cat {secret}"},
            InputError,
            "placeholder {secret}; the placeholders are {asset}, {root}",
        ),
        ({"asset": "web", "every": "6h", "ingest_command": ""}, InputError, "is empty"),
        ({"asset": "web", "every": "6h", "fmt": "xml"}, InputError, "unknown --format 'xml'"),
    ]
    for kwargs, kind, says in cases:
        with pytest.raises(kind) as caught:
            sched.add(now=T0, **kwargs)
        assert says in str(caught.value), (kwargs, str(caught.value))
        assert "\n" not in str(caught.value)
    assert sched.list_all() == []
    assert _events(sqlite_engine, "schedule.added") == []
    with pytest.raises(NotFoundError, match="no schedule 7"):
        sched.remove(7)


def test_scheduled_scan_on_a_fake_clock(sqlite_engine: Engine, tmp_path: Path) -> None:
    root = _host(tmp_path, "h1")
    _assets(sqlite_engine, tmp_path, h1=root)
    added = sqlite_engine.schedules.add(asset="h1", every="6h", now=T0)
    assert added["next_run_at"] == T0.isoformat() and added["scan"] is True

    first = worker.run_once(sqlite_engine, T0)["schedules"]
    assert [r["schedule"] for r in first] == [added["id"]]
    assert first[0]["status"] == "ok" and first[0]["errors"] == []
    new = first[0]["new_findings"]
    assert len(new) == first[0]["detected"] > 10
    (event,) = _events(sqlite_engine, "event.findings.new")
    assert event["new"] == new and event["reopened"] == []
    assert event["categories"]["config.ssh"] > 0

    # Not due an hour later; due again six hours later, nothing new then.
    assert worker.run_once(sqlite_engine, T0 + timedelta(hours=1))["schedules"] == []
    # A fix verified meanwhile, then undone on the host (the file is the same):
    with sqlite_engine.db.transaction() as s:
        row = s.scalars(select(FindingRow).where(FindingRow.id == new[0])).one()
        row.status = "verified"
    again = worker.run_once(sqlite_engine, T0 + timedelta(hours=6, minutes=1))["schedules"]
    assert again[0]["new_findings"] == [] and again[0]["reopened"] == [new[0]]
    events = _events(sqlite_engine, "event.findings.new")
    assert len(events) == 2 and events[1]["reopened"] == [new[0]]
    (listed,) = sqlite_engine.schedules.list_all()
    assert listed["runs"] == 2 and listed["last_status"] == "ok"
    assert listed["next_run_at"] == (T0 + timedelta(hours=12)).isoformat()
    assert listed["last_result"]["reopened"] == [new[0]]
    assert sqlite_engine.audit_verify().ok


def test_team_scanner_is_ingested_and_one_asset_failing_is_isolated(
    engine: Engine, tmp_path: Path
) -> None:
    script = tmp_path / "scanner.py"
    script.write_text(SCANNER)
    good = tmp_path / "good"
    good.mkdir()
    _assets(engine, tmp_path, a_good=good, b_gone=tmp_path / "gone")
    command = [sys.executable, str(script), "{root}", "{report}", str(SARIF)]
    sched = engine.schedules.add(group="fleet", cron="0 */6 * * *", ingest_command=command, now=T0)
    assert sched["scan"] is False and sched["next_run_at"] == (T0 + timedelta(hours=6)).isoformat()
    assert worker.run_once(engine, T0)["schedules"] == []

    (run,) = worker.run_once(engine, T0 + timedelta(hours=6))["schedules"]
    assert run["status"] == "partial" and run["assets"] == ["a_good", "b_gone"]
    (error,) = run["errors"]
    assert error["asset"] == "b_gone" and error["step"] == "ingest"
    assert "exited with 3 and wrote no report" in error["error"]
    assert "no such directory" in error["error"]
    assert run["detected"] == 3 and len(run["new_findings"]) == 3
    with engine.db.reading() as s:
        assets = set(s.scalars(select(FindingRow.asset_id)))
    assert assets == {"a_good"}
    (event,) = _events(engine, "event.findings.new")
    assert event["new"] == run["new_findings"] and event["group"] == "fleet"

    # Seen again: nothing new, and no event.
    (rerun,) = worker.run_once(engine, T0 + timedelta(hours=12))["schedules"]
    assert rerun["new_findings"] == [] and rerun["detected"] == 3
    assert len(_events(engine, "event.findings.new")) == 1


def test_stdout_report_and_a_scanner_past_its_timeout(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _assets(sqlite_engine, tmp_path, web=tmp_path)
    shed = sqlite_engine.schedules
    shed.add(asset="web", every="1h", ingest_command=["cat", str(SARIF)], now=T0)
    shed.add(asset="web", every="1h", ingest_command="sleep 30", timeout=1, now=T0)
    started = time.monotonic()
    cat, sleeper = worker.run_once(sqlite_engine, T0)["schedules"]
    assert time.monotonic() - started < 25
    assert cat["status"] == "ok" and cat["detected"] == 3
    assert sleeper["status"] == "failed"
    assert "ran longer than its timeout of 1 s and was stopped" in sleeper["errors"][0]["error"]


def test_two_workers_never_run_one_schedule_twice(engine: Engine, tmp_path: Path) -> None:
    _assets(engine, tmp_path, web=tmp_path)
    added = engine.schedules.add(asset="web", every="1h", ingest_command=["true"], now=T0)
    one, two = Schedules(engine), Schedules(engine)
    assert one._claim(added["id"], T0) is not None
    assert two._claim(added["id"], T0) is None
    assert two.run_due(T0) == []


def test_auto_start_opens_a_remediation(sqlite_engine: Engine, tmp_path: Path) -> None:
    flows = sqlite_engine.workspace.home / "workflows"
    flows.mkdir(parents=True)
    (flows / "ssh.yaml").write_text(
        "name: ssh-auto\ncategories: [config.ssh]\nauto_start: true\n"
        "stages:\n  - kind: snapshot\n  - kind: approval\n  - kind: deploy\n  - kind: verify\n"
    )
    root = _host(tmp_path, "h1")
    _assets(sqlite_engine, tmp_path, h1=root)
    sqlite_engine.schedules.add(asset="h1", every="6h", now=T0)
    (run,) = worker.run_once(sqlite_engine, T0)["schedules"]
    assert run["status"] == "ok", run["errors"]
    ssh = sorted(
        f["id"]
        for f in sqlite_engine.list_findings()
        if f["category"] == "config.ssh" and f["id"] in run["new_findings"]
    )
    (opened,) = run["remediations"]  # only config.ssh's workflow starts by itself
    assert opened["workflow"] == "ssh-auto" and opened["findings"] == ssh
    assert opened["status"] == "planned" and opened["remediation"].startswith("REM-")
    shown = sqlite_engine.remediations.show(opened["remediation"])
    assert shown.status == "planned" and shown.workflow == "ssh-auto"
    assert sorted(shown.findings) == ssh
    # Nothing changed on the host: the remediation waits for its stages.
    assert (root / "etc/ssh/sshd_config").read_bytes() == (
        ROOT / "examples/host/etc/ssh/sshd_config"
    ).read_bytes()


def test_schedules_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assets = tmp_path / "assets.yaml"
    assets.write_text(f"assets:\n  - id: web\n    group: fleet\n    connection: local:{tmp_path}\n")
    with Engine.open(home=home, database_url=f"sqlite:///{home / 'jupiter.db'}") as engine:
        engine.import_assets(assets)
    added = run_cli(
        "schedules",
        "add",
        "--group",
        "fleet",
        "--cron",
        "0 */6 * * *",
        "--zone",
        "Europe/Berlin",
        "--ingest-command",
        f"cat {SARIF}",
        "--json",
        home=home,
    )
    assert added.returncode == 0, added.stderr
    row = json.loads(added.stdout)
    assert row["ingest_command"] == ["cat", str(SARIF)] and row["zone"] == "Europe/Berlin"
    listed = run_cli("schedules", "list", home=home)
    assert f"ingest `cat {SARIF}` group fleet, cron '0 */6 * * *' Europe/Berlin" in listed.stdout
    bad = run_cli(
        "schedules", "add", "--asset", "web", "--every", "6h", "--cron", "* * * * *", home=home
    )
    assert bad.returncode == 2
    assert bad.stderr == "error: give exactly one of --every DURATION (such as 6h) or --cron EXPR\n"
    gone = run_cli("schedules", "remove", str(row["id"]), "--json", home=home)
    assert gone.returncode == 0 and json.loads(gone.stdout)["id"] == row["id"]


def test_a_broken_run_does_not_stop_the_next_schedule(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assets(sqlite_engine, tmp_path, web=tmp_path)
    first = sqlite_engine.schedules.add(asset="web", every="1h", ingest_command=["true"], now=T0)
    second = sqlite_engine.schedules.add(
        asset="web", every="1h", ingest_command=["cat", str(SARIF)], now=T0
    )
    import jupiter.schedule_run as schedule_run

    real = schedule_run.run_schedule

    def breaks_on_the_first(engine: Engine, row: ScheduleRow, now: datetime) -> dict[str, Any]:
        if row.id == first["id"]:
            raise RuntimeError("disk full")
        return real(engine, row, now)

    monkeypatch.setattr(schedule_run, "run_schedule", breaks_on_the_first)
    broken, fine = worker.run_once(sqlite_engine, T0)["schedules"]
    assert (
        broken["status"] == "failed" and broken["errors"][0]["error"] == "RuntimeError: disk full"
    )
    assert fine["schedule"] == second["id"] and fine["status"] == "ok" and fine["detected"] == 3
    assert _events(sqlite_engine, "schedule.failed")[0]["error"] == "RuntimeError: disk full"
    rows = {r["id"]: r for r in sqlite_engine.schedules.list_all()}
    assert rows[first["id"]]["last_status"] == "failed"
    # Claimed before it broke: not retried in a loop, due again in an hour.
    assert rows[first["id"]]["next_run_at"] == (T0 + timedelta(hours=1)).isoformat()


def test_a_broken_workflow_file_is_reported_not_fatal(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    flows = sqlite_engine.workspace.home / "workflows"
    flows.mkdir(parents=True)
    (flows / "bad.yaml").write_text("name: bad\nstages:\n  - kind: deplyo\n")
    _assets(sqlite_engine, tmp_path, web=tmp_path)
    sqlite_engine.schedules.add(asset="web", every="1h", ingest_command=["cat", str(SARIF)], now=T0)
    (run,) = worker.run_once(sqlite_engine, T0)["schedules"]
    assert len(run["new_findings"]) == 3 and run["status"] == "partial"
    (error,) = run["errors"]
    assert error["step"] == "auto_start workflows"
    assert error["error"].startswith(f"{flows / 'bad.yaml'}:3: stage 'deplyo': unknown stage kind")
    assert len(_events(sqlite_engine, "event.findings.new")) == 1
