"""Process-wide CLI state (global options) and output helpers."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from jupiter.engine import Engine


@dataclass
class _State:
    home: Path | None = None
    actor: str | None = None
    debug: bool = False
    engine: Engine | None = None


_state = _State()


def configure(home: Path | None, actor: str | None, debug: bool) -> None:
    _state.home, _state.actor, _state.debug = home, actor, debug


def engine() -> Engine:
    if _state.engine is None:
        import os

        from jupiter.engine import Engine

        token = os.environ.get("JUPITER_TOKEN") or None
        _state.engine = Engine.open(home=_state.home, actor=_state.actor, token=token)
    return _state.engine


def actor() -> str | None:
    """The ``--actor`` given (None: JUPITER_ACTOR, else the OS user)."""
    return _state.actor


def home() -> Path:
    """The workspace folder the global options name (nothing is opened)."""
    from jupiter.workspace import Workspace

    return Workspace.resolve(_state.home).home


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Machine-readable output: stable field names, documented in docs/cli.md."""
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def report_error(exc: BaseException) -> int:
    """Print one sentence for ``exc`` on stderr and return the exit code."""
    from jupiter.errors import JupiterError

    if isinstance(exc, JupiterError):
        code, message = exc.exit_code, exc.message
    elif isinstance(exc, KeyboardInterrupt):
        code, message = 130, "interrupted; completed steps are recorded in `jupiter runs list`"
    else:
        code = 70
        message = (
            f"internal error: {type(exc).__name__}: {exc}; run again with --debug and report it"
        )
    from jupiter.limits import shorten_message
    from jupiter.redact import redact_text

    if _state.debug:
        traceback.print_exception(exc, file=sys.stderr)
    # Shortened last: a message quoting a huge input stays a sentence.
    sys.stderr.write(f"error: {shorten_message(redact_text(message))}\n")
    if _state.engine is not None:
        _state.engine.close()
    return code
