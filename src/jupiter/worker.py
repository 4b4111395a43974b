"""The worker: runs what is due (scheduled scans, waiting deploys, bakes,
resumptions) once per round; ``jupiter worker`` loops, ``--once`` runs one
round (for tests and cron).

A *source* of due work registers a function ``fn(engine, now) -> list[dict]``
with :func:`register_due`; each round calls every source with the same
``now``. A source that raises does not stop the others: its error is
recorded in the audit trail (``worker.source_failed``) and in the round's
result, and it is called again next round.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupiter.engine import Engine

DueFn = Callable[["Engine", datetime], list[dict[str, Any]]]

_SOURCES: dict[str, DueFn] = {}
# Modules whose import registers a source; one not installed (yet) is skipped.
SOURCE_MODULES: tuple[str, ...] = (
    "jupiter.schedules",
    "jupiter.remediations",
    "jupiter.integrations.due",
    "jupiter.waivers",
    "jupiter.approvals",
    "jupiter.pull_requests",
)
_loaded = False


def register_due(name: str, fn: DueFn) -> None:
    """Call ``fn(engine, now)`` in every worker round; registering a name
    again replaces its function."""
    if not name or not callable(fn):
        raise ValueError("register_due needs a name and a callable")
    _SOURCES[name] = fn


def unregister_due(name: str) -> None:
    _SOURCES.pop(name, None)


def sources() -> dict[str, DueFn]:
    """The registered sources, by name (after importing :data:`SOURCE_MODULES`)."""
    _load_source_modules()
    return dict(sorted(_SOURCES.items()))


def run_once(engine: Engine, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """One round: every source, in name order, with one ``now`` (UTC).

    A failing source's entry is ``[{"error": sentence, "failed": True}]``."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("run_once needs a timezone-aware now, such as datetime.now(UTC)")
    out: dict[str, list[dict[str, Any]]] = {}
    for problem in _load_source_modules():
        out[problem[0]] = [{"error": problem[1], "failed": True}]
    for name, fn in sorted(_SOURCES.items()):
        try:
            out[name] = list(fn(engine, now))
        except Exception as exc:  # noqa: BLE001 - one source must not stop the others
            message = _sentence(exc)
            _record_failure(engine, name, message)
            out[name] = [{"error": message, "failed": True}]
    return out


def failed(result: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Names of the sources that failed in a round's result."""
    return [name for name, items in result.items() if any(i.get("failed") for i in items)]


_import_errors: list[tuple[str, str]] = []


def _load_source_modules() -> list[tuple[str, str]]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in SOURCE_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    _import_errors.append((f"import:{module}", _sentence(exc)))
            except Exception as exc:  # noqa: BLE001 - report a broken module, run the rest
                _import_errors.append((f"import:{module}", _sentence(exc)))
    return list(_import_errors)


def _sentence(exc: BaseException) -> str:
    from jupiter.errors import JupiterError
    from jupiter.limits import shorten_message
    from jupiter.redact import redact_text

    text = exc.message if isinstance(exc, JupiterError) else f"{type(exc).__name__}: {exc}"
    return shorten_message(redact_text(text))


def _record_failure(engine: Engine, name: str, message: str) -> None:
    from jupiter import audit

    try:
        with engine.db.transaction() as s:
            audit.record(
                s, engine.actor, "worker.source_failed", f"worker:{name}", {"error": message}
            )
    except Exception:  # noqa: BLE001, S110 - the round's result still carries the error
        pass
