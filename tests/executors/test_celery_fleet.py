"""Two Celery worker processes run a rolling deploy over 20 local targets
on PostgreSQL; one worker is killed (SIGKILL, as ``kill -9``) right after
it applied a step and before it acknowledged the message. The broker gives
the message back, the other worker finishes the batch and the deploy, no
target is changed twice, and the audit chain verifies — over Redis and
over RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.executors.celery_app import close_apps
from jupiter.store.tables import RunRow
from jupiter.workspace import Workspace
from tests.executors.celerylib import delete_queue, need_broker, unique_queue, workers
from tests.remediations.fleetlib import applies, make_fleet, use_app_plugin, workflow

N = 20
BATCH = 10


@pytest.fixture
def fleet_engine(tmp_path: Path, pg_schema_url: str) -> Iterator[Engine]:
    make_fleet(tmp_path, N, app=True)
    home = tmp_path / "home"
    eng = Engine(Workspace(home, pg_schema_url), actor="tester")
    use_app_plugin(eng)
    eng.import_assets(tmp_path / "assets.yaml")
    workflow(
        home,
        "wf",
        [
            {"kind": "snapshot"},
            {"kind": "deploy", "strategy": {"type": "rolling", "batch": BATCH}},
            {"kind": "verify"},
        ],
    )
    try:
        yield eng
    finally:
        eng.close()


def _settings(eng: Engine, broker: str, queue: str) -> dict[str, str]:
    return {
        "JUPITER_HOME": str(eng.workspace.home),
        "JUPITER_DATABASE_URL": eng.workspace.database_url,
        "JUPITER_BROKER_URL": broker,
        "JUPITER_CELERY_QUEUE": queue,
        # A killed worker's message comes back to Redis after 4 s (RabbitMQ: at once).
        "JUPITER_BROKER_VISIBILITY_TIMEOUT": "4",
    }


@pytest.mark.postgres
@pytest.mark.parametrize("broker_kind", ["redis", "amqp"])
def test_a_worker_killed_mid_batch_the_other_finishes_without_double_apply(
    fleet_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker_kind: str
) -> None:
    broker = need_broker(broker_kind)
    queue = unique_queue()
    eng = fleet_engine
    settings = _settings(eng, broker, queue)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPITER_EXECUTOR", "celery")
    monkeypatch.setenv("JUPITER_TASK_TIMEOUT", "90")
    doomed = {**settings, "JUPITER_FAULT": "deploy.after_step:2"}
    try:
        with workers([doomed, settings], tmp_path / "logs") as (a, b):
            made = eng.remediations.create(group="web", workflow="wf")
            assert made.remediation is not None
            info = eng.remediations.run(made.remediation.id)
            assert info.status == "completed", (info.status, info.reason, b.text()[-2000:])
            assert a.proc.wait(timeout=30) == -9, "the doomed worker was not killed"
            assert b.proc.poll() is None, b.text()[-2000:]
            assert "Traceback" not in b.text(), b.text()[-4000:]
    finally:
        close_apps()
        delete_queue(broker, queue)

    roots = sorted((tmp_path / "fleet").iterdir())
    assert [(r / "etc/app.conf").read_text() for r in roots] == ["secure\n"] * N
    assert applies(eng) == {r.name: 1 for r in roots}, "a target was changed twice"
    assert eng.audit_verify().ok
    with eng.db.reading() as s:
        runs = list(s.scalars(select(RunRow).where(RunRow.kind == "fix")))
    # Both workers deployed; the run the killed worker left was recovered.
    assert {r.holder_pid for r in runs} >= {a.pid, b.pid}
    assert [r.status for r in runs if r.holder_pid == a.pid].count("running") == 0
    assert any(r.status == "interrupted" for r in runs if r.holder_pid == a.pid)
