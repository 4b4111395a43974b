"""The dispatcher: at least once, same idempotency key on every attempt,
backoff with jitter, dead after the retry limit, a down channel never
touches the remediation, kill -9 mid-delivery loses nothing."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from jupiter.integrations.config import DispatchSettings
from jupiter.integrations.dispatch import Dispatcher, backoff
from jupiter.store.tables import utcnow
from tests.conftest import ROOT
from tests.integrations.helpers import engine_with, outbox_rows, raise_event
from tests.integrations.servers import (
    Request,
    closed_port,
    failing_first,
    http_server,
    wait_for,
)


def webhook_config(url: str, attempts: int = 4, lease: float = 300) -> str:
    return f"""
channels:
  hook: {{type: webhook, url: "{url}/jupiter", secret_env: HOOK_SECRET}}
routes:
  - {{events: ["*"], channels: [hook]}}
dispatch:
  {{max_attempts: {attempts}, backoff_base_s: 1, backoff_max_s: 8, timeout_s: 2, lease_s: {lease}}}
"""


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    s = DispatchSettings(backoff_base_s=10, backoff_max_s=100)
    rng = random.Random(7)
    waits = [[backoff(a, s, rng) for _ in range(200)] for a in (1, 2, 3, 4, 8)]
    for (lo, hi), got in zip(
        ((5, 10), (10, 20), (20, 40), (40, 80), (50, 100)), waits, strict=True
    ):
        assert lo <= min(got) and max(got) <= hi
        assert len({round(w, 6) for w in got}) > 150  # jittered, not one value


def test_a_receiver_down_twice_gets_the_event_once_with_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hmac-key-1")
    with (
        http_server(failing_first(2)) as rec,
        engine_with(tmp_path, webhook_config(rec.url)) as engine,
    ):
        raise_event(engine, "run.failed")
        dispatcher = Dispatcher(engine.db, engine.routing)
        now = utcnow()
        first = dispatcher.dispatch_once(now)
        assert (first.claimed, first.retrying) == (1, 1)
        row = outbox_rows(engine)[0]
        assert row.status == "pending" and row.attempts == 1
        assert "HTTP 503" in (row.last_error or "")
        assert timedelta(seconds=0.5) <= row.next_attempt_at - now <= timedelta(seconds=2)
        assert dispatcher.dispatch_once(now).claimed == 0  # not due yet: backing off
        dispatcher.dispatch_once(now + timedelta(minutes=1))
        third = dispatcher.dispatch_once(now + timedelta(minutes=2))
        assert third.delivered == 1
        # Delivered rows are never sent again.
        assert dispatcher.dispatch_once(now + timedelta(hours=1)).claimed == 0
        assert len(rec.requests) == 3
        keys = {r.headers["x-jupiter-delivery"] for r in rec.requests}
        assert keys == {outbox_rows(engine)[0].key}
        last = rec.requests[-1]
        assert verify_signature(last, "hmac-key-1")
        body = last.json()
        assert body["event"] == "fix.failed" and body["id"] == row.key
        row = outbox_rows(engine)[0]
        assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)


def verify_signature(req: Request, secret: str) -> bool:
    stamp = req.headers["x-jupiter-timestamp"]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(req.headers["x-jupiter-signature"], f"sha256={mac}")


def test_a_down_channel_rows_go_dead_and_retry_puts_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "k")
    url = f"http://127.0.0.1:{closed_port()}"
    with engine_with(tmp_path, webhook_config(url, attempts=3)) as engine:
        raise_event(engine, "run.failed")
        dispatcher = Dispatcher(engine.db, engine.routing)
        now = utcnow()
        for i in range(3):
            dispatcher.dispatch_once(now + timedelta(minutes=5 * i))
        row = outbox_rows(engine)[0]
        assert row.status == "dead" and row.attempts == 3
        assert "cannot be reached" in (row.last_error or "")
        assert dispatcher.dispatch_once(now + timedelta(days=1)).claimed == 0
        assert engine.outbox_retry([], all_dead=True) == [row.id]
        row = outbox_rows(engine)[0]
        assert (row.status, row.attempts) == ("pending", 0)


@pytest.mark.soak
def test_a_down_channel_never_fails_a_real_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    monkeypatch.setenv("HOOK_SECRET", "k")
    url = f"http://127.0.0.1:{closed_port()}"
    with engine_with(tmp_path, webhook_config(url, attempts=2)) as engine:
        result = engine.fix(str(host), only=["config.ssh"])
        assert result["status"] == "succeeded"
        rows = outbox_rows(engine)
        assert [r.event for r in rows] == ["fix.succeeded"]
        assert rows[0].payload["context"]["steps"]
        dispatcher = Dispatcher(engine.db, engine.routing)
        now = utcnow()
        for i in range(2):
            dispatcher.dispatch_once(now + timedelta(minutes=5 * i))
        assert outbox_rows(engine)[0].status == "dead"
        assert engine.show_run(result["run"])["status"] == "succeeded"
        assert engine.audit_verify().ok


def test_kill_9_mid_delivery_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "k")
    release = threading.Event()
    hang = {"on": True}

    def handler(_req: Request) -> tuple[int, bytes]:
        if hang["on"]:
            release.wait(30)
        return 200, b"ok"

    with http_server(handler) as rec:
        config = webhook_config(rec.url, lease=60)
        with engine_with(tmp_path, config) as engine:
            raise_event(engine, "rollback.failed")
        env = {**os.environ, "JUPITER_HOME": str(tmp_path / "home"), "HOOK_SECRET": "k"}
        env.pop("JUPITER_DATABASE_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupiter.cli.app", "outbox", "dispatch", "--once"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: len(rec.requests) == 1, timeout=30)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        hang["on"] = False
        release.set()
        with engine_with(tmp_path, config) as engine:
            row = outbox_rows(engine)[0]
            assert row.status == "pending" and row.attempts == 1 and row.claim
            dispatcher = Dispatcher(engine.db, engine.routing)
            now = utcnow()
            assert dispatcher.dispatch_once(now).claimed == 0  # its lease still holds
            assert dispatcher.dispatch_once(now + timedelta(seconds=61)).delivered == 1
        keys = [r.headers["x-jupiter-delivery"] for r in rec.requests]
        assert len(keys) == 2 and keys[0] == keys[1]  # redelivered with the same key


def test_the_worker_round_delivers_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupiter import worker

    monkeypatch.setenv("HOOK_SECRET", "k")
    assert "outbox" in worker.sources()
    with (
        http_server(lambda _r: (200, b"ok")) as rec,
        engine_with(tmp_path, webhook_config(rec.url)) as engine,
    ):
        raise_event(engine, "run.failed")
        raise_event(engine, "rollback.failed")
        out = worker.run_once(engine)
        assert out["outbox"] == [
            {"claimed": 2, "delivered": 2, "retrying": 0, "dead": 0, "errors": {}}
        ]
        assert worker.run_once(engine)["outbox"] == []
    assert len(rec.requests) == 2


def test_a_down_channel_costs_one_attempt_per_pass_not_one_per_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "k")
    url = f"http://127.0.0.1:{closed_port()}"
    with engine_with(tmp_path, webhook_config(url)) as engine:
        for _ in range(3):
            raise_event(engine, "run.failed")
        result = Dispatcher(engine.db, engine.routing).dispatch_once()
        assert (result.claimed, result.retrying) == (3, 3)
        errors = {r.last_error for r in outbox_rows(engine)}
        assert len(errors) == 1 and "cannot be reached" in errors.pop()  # type: ignore[operator]
