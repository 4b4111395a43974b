"""Jupiter's Celery application: configuration from the environment, the
task that executes one :class:`~jupiter.executors.work.TargetWork`, and
the worker ``jupiter worker --executor celery`` starts.

Settings (environment):

* ``JUPITER_BROKER_URL`` — ``redis://HOST:6379/0`` or ``amqp://USER:PASS@HOST:5672//``
  (required).
* ``JUPITER_CELERY_QUEUE`` — the queue Jupiter's tasks go to and its
  workers read (default ``jupiter``); give each installation its own.
* ``JUPITER_BROKER_VISIBILITY_TIMEOUT`` — Redis only: seconds after which a
  message a worker took but never acknowledged (it was killed) goes back
  to the queue (default 600). Keep it above the longest target deploy: a
  message redelivered while its first copy still runs is harmless (the
  copy finds the work in progress and does nothing) but wasted. RabbitMQ
  redelivers as soon as the dead worker's connection drops.

Messages are JSON (``accept_content`` refuses pickle), carry a work item's
ids and parameters only, are acknowledged *after* the task ran
(``acks_late``) and given back when the worker process dies
(``reject_on_worker_lost``); one message is prefetched per worker slot, so
a killed worker strands as little as possible. Results are not stored: the
database holds each target's outcome.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jupiter.errors import InputError

if TYPE_CHECKING:
    from celery import Celery

    from jupiter.engine import Engine

TASK_DEPLOY = "jupiter.deploy_target"
DEFAULT_QUEUE = "jupiter"
DEFAULT_VISIBILITY = 600.0
POOLS = ("prefork", "threads", "solo")

# Called on each Engine a worker opens (a test registers its plugin here).
ENGINE_HOOKS: list[Callable[[Engine], None]] = []


def broker_url() -> str:
    url = (os.environ.get("JUPITER_BROKER_URL") or "").strip()
    if not url:
        raise InputError(
            "the celery executor needs JUPITER_BROKER_URL, such as redis://127.0.0.1:6379/0 "
            "or amqp://guest:guest@127.0.0.1:5672//"
        )
    scheme = url.partition("://")[0].lower()
    if scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp"):
        raise InputError(
            f"JUPITER_BROKER_URL must start with redis:// or amqp://, not {scheme}://; "
            "Jupiter's Celery tasks run over Redis or RabbitMQ"
        )
    return url


def queue_name() -> str:
    name = (os.environ.get("JUPITER_CELERY_QUEUE") or DEFAULT_QUEUE).strip()
    if not name or any(c.isspace() for c in name):
        raise InputError(f"JUPITER_CELERY_QUEUE {name!r} is not a queue name (no spaces)")
    return name


def visibility_timeout() -> float:
    text = os.environ.get("JUPITER_BROKER_VISIBILITY_TIMEOUT")
    if not text:
        return DEFAULT_VISIBILITY
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise InputError(
            f"JUPITER_BROKER_VISIBILITY_TIMEOUT must be a positive number of seconds, not {text!r}"
        )
    return value


_apps: dict[tuple[str, str, float], Celery] = {}
_apps_lock = threading.Lock()


def app() -> Celery:
    """The Celery application for the current settings (one per settings)."""
    key = (broker_url(), queue_name(), visibility_timeout())
    with _apps_lock:
        if key not in _apps:
            _apps[key] = _make_app(*key)
        return _apps[key]


def _make_app(url: str, queue: str, visibility: float) -> Celery:
    from celery import Celery
    from kombu.entity import Queue

    made = Celery("jupiter", broker=url, set_as_current=False)
    transport: dict[str, Any] = {}
    if url.startswith(("redis", "rediss")):
        transport = {
            "visibility_timeout": visibility,
            # Sweep for a dead worker's messages often enough to honour a short timeout.
            "unacked_restore_interval": max(1, min(10, int(visibility // 2) or 1)),
            "unacked_restore_throttle": 1,
        }
    made.conf.update(
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=queue,
        task_queues=[Queue(queue, routing_key=queue)],  # type: ignore[no-untyped-call]
        task_routes={TASK_DEPLOY: {"queue": queue, "routing_key": queue}},
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_redirect_stdouts=False,
        enable_utc=True,
    )
    made.task(
        name=TASK_DEPLOY,
        bind=False,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )(deploy_target_task)
    return made


def close_apps() -> None:
    """Close the broker connections this process opened (a driver that
    sent work keeps producer and connection pools until then)."""
    from kombu import pools

    with _apps_lock:
        for made in _apps.values():
            if made._pool is not None:
                made._pool.force_close_all()
            made.close()
        _apps.clear()
        # Producer pools are kombu's, shared per broker URL: a later app for
        # the same URL must not get one whose connections were closed.
        pools.reset()  # type: ignore[no-untyped-call]


_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def _engine(actor: str) -> Engine:
    """One Engine per process and actor, opened from JUPITER_HOME and
    JUPITER_DATABASE_URL like the CLI's."""
    from jupiter.engine import Engine

    key = (os.getpid(), actor)
    with _engines_lock:
        if key not in _engines:
            engine = Engine.open(actor=actor)
            for hook in ENGINE_HOOKS:
                hook(engine)
            _engines[key] = engine
        return _engines[key]


def deploy_target_task(work: dict[str, Any]) -> dict[str, Any]:
    """The Celery task: execute one work item at most once (see
    :mod:`jupiter.executors.work`) and return what it did (for logs; the
    database holds the outcome)."""
    from jupiter.executors.work import TargetWork, execute
    from jupiter.remediations.context import Ctx

    item = TargetWork.from_message(work)
    engine = _engine(item.actor)
    ctx = Ctx(engine, item.remediation_id, item.actor)
    # Wait as long as another copy lives: acknowledging this message early
    # could lose the work if that copy's process dies afterwards.
    return execute(ctx, item, wait=float("inf")).to_json()


def worker_argv(
    *, pool: str, concurrency: int, loglevel: str = "INFO", hostname: str | None = None
) -> list[str]:
    """The argv of Celery's worker for Jupiter's queue."""
    if pool not in POOLS:
        raise InputError(f"pool {pool!r} is not one of {', '.join(POOLS)}")
    if concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    name = hostname or f"jupiter-{os.getpid()}@{socket.gethostname()}"
    return [
        "worker",
        "--queues",
        queue_name(),
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--hostname",
        name,
        # Workers coordinate through the database, not through each other.
        "--without-gossip",
        "--without-mingle",
    ]


def start_worker(*, pool: str = "prefork", concurrency: int = 2, loglevel: str = "INFO") -> None:
    """Run a Celery worker on Jupiter's queue until it is stopped (SIGTERM:
    finish the tasks in progress, then exit)."""
    argv = worker_argv(pool=pool, concurrency=concurrency, loglevel=loglevel)
    app().worker_main(argv=argv)
