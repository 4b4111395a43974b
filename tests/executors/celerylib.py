"""Helpers for the Celery executor tests: the brokers on this machine (a
missing one skips, or fails under JUPITER_REQUIRE_SERVICES=1), worker
processes started and stopped by pid, and a queue of its own per test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, need_service

BROKERS = {
    "redis": os.environ.get("JUPITER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "amqp": os.environ.get("JUPITER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
_PORTS = {"redis": 6379, "amqp": 5672}


def need_broker(kind: str) -> str:
    """The broker URL of ``kind`` once it answers on its port."""
    port = _PORTS[kind]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            up = True
    except OSError:
        up = False
    name = "Redis" if kind == "redis" else "RabbitMQ"
    need_service(up, f"{name} is not listening on 127.0.0.1:{port}")
    return BROKERS[kind]


def unique_queue() -> str:
    return f"jupiter-test-{uuid.uuid4().hex[:12]}"


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.pid} exited early:\n{self.text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker {self.pid} not ready in {timeout} s:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers; by pid only."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_worker(
    env: dict[str, str],
    log: Path,
    *,
    pool: str = "threads",
    concurrency: int = 2,
    cli: bool = False,
) -> WorkerProc:
    """The test's worker (knows AppFix), or with ``cli`` the real
    ``jupiter worker --executor celery``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("JUPITER_")}
    full.update(env)
    handle = log.open("wb")
    argv = ["-m", "tests.executors.celery_worker", pool, str(concurrency)]
    if cli:
        argv = ["-m", "jupiter.cli.app", "worker", "--executor", "celery", "--pool", pool]
        argv += ["--concurrency", str(concurrency)]
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=full,
        cwd=ROOT,
    )
    handle.close()
    # Reap it the moment it dies: a killed worker left a zombie would still
    # look alive to the liveness checks (kill(pid, 0)) of the other worker.
    threading.Thread(target=proc.wait, daemon=True).start()
    return WorkerProc(proc, log)


@contextlib.contextmanager
def workers(
    envs: list[dict[str, str]], logs: Path, *, ready: bool = True, **options: object
) -> Iterator[list[WorkerProc]]:
    """Start one worker per environment, wait until each consumes (unless
    ``ready=False``: the caller waits), stop them all."""
    logs.mkdir(parents=True, exist_ok=True)
    started: list[WorkerProc] = []
    try:
        for i, env in enumerate(envs):
            started.append(start_worker(env, logs / f"worker-{i}.log", **options))  # type: ignore[arg-type]
        for w in started:
            if ready:
                w.wait_ready()
        yield started
    finally:
        for w in started:
            w.stop()


def delete_queue(broker: str, queue: str) -> None:
    """Drop the test's queue (RabbitMQ keeps durable queues otherwise)."""
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(broker, connect_timeout=5) as conn:
        conn.default_channel.queue_delete(queue)
