"""A Celery worker process for the executor tests: Jupiter's own worker
(:func:`jupiter.executors.celery_app.start_worker`, the same one
``jupiter worker --executor celery`` runs) whose engines also know the
test fleet's AppFix remediator.

    python -m tests.executors.celery_worker POOL CONCURRENCY

Settings come from the environment (JUPITER_HOME, JUPITER_DATABASE_URL,
JUPITER_BROKER_URL, JUPITER_CELERY_QUEUE, JUPITER_FAULT, ...)."""

from __future__ import annotations

import sys

from jupiter.executors import celery_app
from tests.remediations.fleetlib import use_app_plugin


def main(argv: list[str]) -> None:
    celery_app.ENGINE_HOOKS.append(use_app_plugin)
    celery_app.start_worker(pool=argv[0], concurrency=int(argv[1]), loglevel="INFO")


if __name__ == "__main__":
    main(sys.argv[1:])
