"""SIGKILL at each durable transition of outbox delivery (after the claim,
after the channel answered but before the row is settled, after settling),
then the next dispatcher pass: every event is delivered, with one
idempotency key, and a settled row is never sent again."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from jupiter.integrations.dispatch import Dispatcher
from jupiter.store.tables import utcnow
from tests.conftest import ROOT
from tests.integrations.helpers import engine_with, outbox_rows, raise_event
from tests.integrations.servers import http_server
from tests.integrations.test_dispatch import webhook_config
from tests.reliability.counts import count


@pytest.mark.parametrize(
    "point", ["outbox.after_claim", "outbox.after_deliver", "outbox.after_settle"]
)
def test_kill_during_delivery_then_the_next_pass(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "k")
    with http_server(lambda _r: (200, b"ok")) as rec:
        config = webhook_config(rec.url, lease=60)
        with engine_with(tmp_path, config) as engine:
            raise_event(engine, "run.failed")
            raise_event(engine, "rollback.failed")
        env = {**os.environ, "JUPITER_HOME": str(tmp_path / "home"), "HOOK_SECRET": "k"}
        env["JUPITER_FAULT"] = point
        env.pop("JUPITER_DATABASE_URL", None)
        proc = subprocess.run(
            [sys.executable, "-m", "jupiter.cli.app", "outbox", "dispatch", "--once"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode == -9, proc.stderr
        count("crash trials")
        count("faults injected")
        with engine_with(tmp_path, config) as engine:
            rows = outbox_rows(engine)
            settled = point == "outbox.after_settle"
            assert {r.status for r in rows} == ({"delivered"} if settled else {"pending"})
            dispatcher = Dispatcher(engine.db, engine.routing)
            later = dispatcher.dispatch_once(utcnow() + timedelta(seconds=61))
            assert later.delivered == (0 if settled else 2)
            assert {r.status for r in outbox_rows(engine)} == {"delivered"}
            assert engine.audit_verify().ok
        keys = [r.headers["x-jupiter-delivery"] for r in rec.requests]
        sent_before = 0 if point == "outbox.after_claim" else 2
        assert len(keys) == sent_before + (0 if settled else 2)
        assert len(set(keys)) == 2  # redelivery reuses the key: receivers drop the duplicate
