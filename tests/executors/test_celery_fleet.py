"""Two Celery worker processes run a rolling deploy over 20 local targets
on PostgreSQL; one worker is killed (SIGKILL, as ``kill -9``) right after
it applied a step and before it acknowledged the message. The broker gives
the message back, the other worker finishes the batch and the deploy, no
target is changed twice, and the audit chain verifies — over Redis and
over RabbitMQ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.executors.celery_app import close_apps
from jupiter.remediations.results import EventInfo
from jupiter.store.tables import RunRow
from jupiter.workspace import Workspace
from tests.conftest import run_cli
from tests.executors.celerylib import delete_queue, need_broker, unique_queue, workers
from tests.remediations.fleetlib import applies, make_fleet, use_app_plugin, workflow

N = 20
BATCH = 10


def _fleet_engine(tmp_path: Path, db_url: str) -> Engine:
    make_fleet(tmp_path, N, app=True)
    home = tmp_path / "home"
    eng = Engine(Workspace(home, db_url), actor="tester")
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
    return eng


def _kill_mid_batch_and_check(
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    broker_kind: str,
    fault: str,
    pool: str,
) -> None:
    broker = need_broker(broker_kind)
    queue = unique_queue()
    settings = {
        "JUPITER_HOME": str(tmp_path / "home"),
        "JUPITER_DATABASE_URL": db_url,
        "JUPITER_BROKER_URL": broker,
        "JUPITER_CELERY_QUEUE": queue,
        # A killed worker's message comes back to Redis after 4 s (RabbitMQ: at once).
        "JUPITER_BROKER_VISIBILITY_TIMEOUT": "4",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPITER_EXECUTOR", "celery")
    monkeypatch.setenv("JUPITER_TASK_TIMEOUT", "120")
    doomed = {**settings, "JUPITER_FAULT": fault}
    # threads: the kill takes the whole worker down; prefork: only the pool
    # process running the task dies, and its parent gives the message back.
    concurrency = 2 if pool == "threads" else 1
    eng: Engine | None = None
    try:
        with workers(
            [doomed, settings], tmp_path / "logs", pool=pool, concurrency=concurrency, ready=False
        ) as (a, b):
            eng = _fleet_engine(tmp_path, db_url)  # while the workers start
            a.wait_ready()
            b.wait_ready()
            made = eng.remediations.create(group="web", workflow="wf")
            assert made.remediation is not None
            seen: list[EventInfo] = []
            info = eng.remediations.run(made.remediation.id, progress=seen.append)
            assert info.status == "completed", (info.status, info.reason, b.text()[-2000:])
            shown = sorted(e.target for e in seen if e.name == "deploy" and e.target)
            assert shown == [f"web-{i:02d}" for i in range(1, N + 1)]
            if pool == "threads":
                assert a.proc.wait(timeout=30) == -9, "the doomed worker was not killed"
            else:
                assert "WorkerLostError" in a.text() or "exited with 'signal 9" in a.text()
            assert b.proc.poll() is None, b.text()[-2000:]
            assert "Traceback" not in b.text(), b.text()[-4000:]

        roots = sorted((tmp_path / "fleet").iterdir())
        assert [(r / "etc/app.conf").read_text() for r in roots] == ["secure\n"] * N
        assert applies(eng) == {r.name: 1 for r in roots}, "a target was changed twice"
        assert eng.audit_verify().ok
        with eng.db.reading() as s:
            runs = list(s.scalars(select(RunRow).where(RunRow.kind == "fix")))
        assert not [r.id for r in runs if r.status == "running"]
        if pool == "threads" and fault.startswith("deploy.after_step"):
            # Both workers deployed; the run the killed worker left was recovered.
            assert {r.holder_pid for r in runs} >= {a.pid, b.pid}
            assert any(r.status == "interrupted" for r in runs if r.holder_pid == a.pid)
    finally:
        close_apps()
        delete_queue(broker, queue)
        if eng is not None:
            eng.close()


@pytest.mark.postgres
@pytest.mark.parametrize("broker_kind", ["redis", "amqp"])
def test_a_worker_killed_mid_batch_the_other_finishes_without_double_apply(
    tmp_path: Path, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch, broker_kind: str
) -> None:
    _kill_mid_batch_and_check(
        tmp_path, pg_schema_url, monkeypatch, broker_kind, "deploy.after_step:2", "threads"
    )


@pytest.mark.soak
@pytest.mark.postgres
@pytest.mark.parametrize("broker_kind", ["redis", "amqp"])
@pytest.mark.parametrize(
    ("fault", "pool"),
    [
        ("deploy.before_apply:2", "threads"),
        ("deploy.after_target:3", "threads"),
        ("deploy.after_step:2", "prefork"),
    ],
)
def test_kill_points_and_pools(
    tmp_path: Path,
    pg_schema_url: str,
    monkeypatch: pytest.MonkeyPatch,
    broker_kind: str,
    fault: str,
    pool: str,
) -> None:
    _kill_mid_batch_and_check(tmp_path, pg_schema_url, monkeypatch, broker_kind, fault, pool)


@pytest.mark.soak
def test_jupiter_remediate_deploys_through_the_cli_worker(tmp_path: Path) -> None:
    """The commands of docs/scale-out.md: `jupiter worker --executor celery`
    beside `jupiter remediate` with JUPITER_EXECUTOR=celery (sshd hardening
    of two examples/host copies, SQLite shared on one machine)."""
    broker = need_broker("redis")
    queue = unique_queue()
    roots = make_fleet(tmp_path, 2)
    home = tmp_path / "home"
    assert run_cli("assets", "import", str(tmp_path / "assets.yaml"), home=home).returncode == 0
    workflow(
        home,
        "roll",
        [{"kind": "snapshot"}, {"kind": "deploy", "strategy": {"type": "rolling", "batch": 2}}],
    )
    env = {
        "JUPITER_HOME": str(home),
        "JUPITER_BROKER_URL": broker,
        "JUPITER_CELERY_QUEUE": queue,
    }
    try:
        with workers([env], tmp_path / "logs", cli=True) as (worker,):
            args = ("remediate", "--group", "web", "--only", "SSHD-ROOT-LOGIN", "--workflow")
            done = run_cli(
                *args,
                "roll",
                "--json",
                home=home,
                env={**env, "JUPITER_EXECUTOR": "celery", "JUPITER_TASK_TIMEOUT": "60"},
            )
            assert done.returncode == 0, (done.stderr, worker.text()[-3000:])
            log = worker.text()
        assert worker.proc.returncode == 0, worker.text()[-3000:]
    finally:
        delete_queue(broker, queue)
    assert json.loads(done.stdout)["status"] == "completed"
    assert log.count("succeeded in") == 2 and "'status': 'applied'" in log
    for root in roots:
        assert "PermitRootLogin no" in (root / "etc/ssh/sshd_config").read_text()
