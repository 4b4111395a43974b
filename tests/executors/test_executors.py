"""The executor interface without a broker: choosing one, the work item's
message (ids and parameters only), and executing a work item at most once
— a copy of a finished item (a redelivered message) applies nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.executors import TargetWork, configured_name, executor_for
from jupiter.executors.celery_app import broker_url, queue_name, visibility_timeout
from jupiter.executors.inprocess import InProcessExecutor
from jupiter.executors.work import current_mark, execute
from jupiter.remediations.context import Ctx
from jupiter.remediations.runner import Lease
from jupiter.workspace import Workspace
from tests.conftest import run_cli
from tests.remediations.fleetlib import applies, make_fleet, use_app_plugin, workflow

N = 3


def test_the_default_is_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPITER_EXECUTOR", raising=False)
    assert configured_name() == "inprocess"
    assert isinstance(executor_for(), InProcessExecutor)
    monkeypatch.setenv("JUPITER_EXECUTOR", "Celery")
    assert configured_name() == "celery"


def test_bad_settings_are_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPITER_EXECUTOR", "dask")
    with pytest.raises(InputError, match=r"inprocess .*or celery"):
        executor_for()
    monkeypatch.delenv("JUPITER_BROKER_URL", raising=False)
    with pytest.raises(InputError, match="needs JUPITER_BROKER_URL"):
        broker_url()
    monkeypatch.setenv("JUPITER_BROKER_URL", "sqs://key:secret@queue")
    with pytest.raises(InputError, match="redis:// or amqp://") as info:
        broker_url()
    assert "secret" not in str(info.value)
    monkeypatch.setenv("JUPITER_CELERY_QUEUE", "two words")
    with pytest.raises(InputError, match="not a queue name"):
        queue_name()
    monkeypatch.setenv("JUPITER_BROKER_VISIBILITY_TIMEOUT", "-1")
    with pytest.raises(InputError, match="positive number"):
        visibility_timeout()


def _work(**over: object) -> TargetWork:
    base: dict[str, object] = {
        "remediation_id": 3,
        "target_id": 7,
        "asset": "web-01",
        "stage": "deploy",
        "final": True,
        "blue_green": False,
        "only": ("T-APP",),
        "actor": "alice",
        "mark": 41,
    }
    base.update(over)
    return TargetWork(**base)  # type: ignore[arg-type]


def test_a_message_is_ids_and_parameters_and_round_trips() -> None:
    work = _work()
    message = work.to_message()
    assert set(message) == {
        "remediation_id",
        "target_id",
        "asset",
        "stage",
        "final",
        "blue_green",
        "only",
        "actor",
        "mark",
        "version",
    }
    assert TargetWork.from_message(json.loads(json.dumps(message))) == work
    with pytest.raises(InputError, match="same Jupiter version"):
        TargetWork.from_message({**message, "version": 99})
    with pytest.raises(InputError, match="malformed"):
        TargetWork.from_message({"version": 1, "target_id": 1})


@pytest.fixture
def done_fleet(tmp_path: Path) -> Iterator[tuple[Engine, int]]:
    """A remediation of N app targets, completed in process."""
    make_fleet(tmp_path, N, app=True)
    home = tmp_path / "home"
    eng = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="tester")
    use_app_plugin(eng)
    eng.import_assets(tmp_path / "assets.yaml")
    workflow(
        home,
        "wf",
        [{"kind": "snapshot"}, {"kind": "deploy", "strategy": {"type": "rolling", "batch": N}}],
    )
    made = eng.remediations.create(group="web", workflow="wf")
    assert made.remediation is not None
    rem_id = int(made.remediation.id.removeprefix("REM-"))
    try:
        yield eng, rem_id
    finally:
        eng.close()


def _work_of(eng: Engine, rem_id: int, asset: str, mark: int) -> TargetWork:
    ctx = Ctx(eng, rem_id, eng.actor)
    row = next(r for r in ctx.targets() if r.asset_id == asset)
    return TargetWork(rem_id, row.id, asset, "deploy", True, False, None, eng.actor, mark)


def test_a_redelivered_copy_of_finished_work_applies_nothing(
    done_fleet: tuple[Engine, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, rem_id = done_fleet
    mark = current_mark(eng.db, rem_id)
    assert eng.remediations.run(rem_id).status == "completed"
    runs = len(eng.list_runs())
    # The same message again (the dispatch's mark): its outcome is recorded.
    ctx = Ctx(eng, rem_id, eng.actor)
    again = execute(ctx, _work_of(eng, rem_id, "web-02", mark))
    assert again.status == "skipped"  # the remediation ended
    assert len(eng.list_runs()) == runs
    assert applies(eng) == {f"web-0{i}": 1 for i in range(1, N + 1)}


def test_a_copy_finds_the_recorded_outcome_before_applying(
    done_fleet: tuple[Engine, int],
) -> None:
    """Deploy one target, then hand the same work item in again (the broker
    redelivering it after the worker applied and died before its ack)."""
    eng, rem_id = done_fleet
    ctx = Ctx(eng, rem_id, eng.actor)
    from jupiter.executors.work import _execute_claimed

    mark = current_mark(eng.db, rem_id)
    work = _work_of(eng, rem_id, "web-01", mark)
    # Not driven by anyone (no lease): the work is left for the next driver.
    assert _execute_claimed(ctx, work).status == "skipped"
    assert applies(eng) == {}
    with Lease(ctx):  # driving it: deploy one target, then the copy comes
        first = InProcessExecutor().deploy(ctx, [work], 1)
        assert first[0].ok, first[0].detail
        second = _execute_claimed(ctx, work)
    assert second.status == "done"
    assert second.outcome is not None and second.outcome.run == first[0].run
    assert applies(eng) == {"web-01": 1}
    assert eng.audit_verify().ok


def test_the_celery_task_body_reloads_from_the_database(
    done_fleet: tuple[Engine, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Celery worker runs, called directly: it opens its own engine
    from the environment and applies nothing for a finished item."""
    from jupiter.executors import celery_app

    eng, rem_id = done_fleet
    mark = current_mark(eng.db, rem_id)
    ctx = Ctx(eng, rem_id, eng.actor)
    work = _work_of(eng, rem_id, "web-03", mark)
    lease = Lease(ctx).__enter__()
    InProcessExecutor().deploy(ctx, [work], 1)
    monkeypatch.setenv("JUPITER_HOME", str(eng.workspace.home))
    monkeypatch.setenv("JUPITER_DATABASE_URL", eng.workspace.database_url)
    monkeypatch.setattr(celery_app, "ENGINE_HOOKS", [use_app_plugin])
    monkeypatch.setattr(celery_app, "_engines", {})
    try:
        out = celery_app.deploy_target_task(json.loads(json.dumps(work.to_message())))
    finally:
        for opened in celery_app._engines.values():
            opened.close()
        lease.__exit__(None, None, None)
    assert out["status"] == "done", out
    assert applies(eng) == {"web-03": 1}


def test_worker_cli_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    missing = run_cli("worker", "--executor", "celery", home=home)
    assert missing.returncode == 2, missing.stderr
    assert "needs JUPITER_BROKER_URL" in missing.stderr
    bogus = run_cli("worker", "--executor", "dask", home=home)
    assert bogus.returncode == 2 and "inprocess" in bogus.stderr
    once = run_cli(
        "worker",
        "--executor",
        "celery",
        "--once",
        home=home,
        env={"JUPITER_BROKER_URL": "redis://127.0.0.1:6379/0"},
    )
    assert once.returncode == 2 and "no rounds" in once.stderr


def test_an_unexpected_error_is_recorded_for_the_waiting_driver(
    done_fleet: tuple[Engine, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupiter.executors.work import recorded_outcomes

    eng, rem_id = done_fleet
    ctx = Ctx(eng, rem_id, eng.actor)
    work = _work_of(eng, rem_id, "web-02", current_mark(eng.db, rem_id))

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire, password=hunter2")

    monkeypatch.setattr("jupiter.remediations.targets.deploy_target", boom)
    with Lease(ctx), pytest.raises(RuntimeError):
        execute(ctx, work)
    out = recorded_outcomes(eng.db, [work])[work.target_id]
    assert not out.ok and "RuntimeError: disk on fire" in out.detail
    assert "hunter2" not in out.detail
    assert next(r for r in ctx.targets() if r.asset_id == "web-02").status == "failed"
