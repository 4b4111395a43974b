"""``CopilotEngine``: the conversational face (the seed's workflow guide).
A thin layer: it parses a query into an intent, resolves what it refers to
(by id, name, description or the session's context) and calls the one
:class:`jupiter.engine.Engine` acting as the query's user, whose methods
check that user's role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupiter.copilot import llm, outputs, validate, workflow
from jupiter.copilot import session as sessions
from jupiter.copilot.intents import CAPABILITIES, Parsed, help_text, parse
from jupiter.copilot.model import Query, Response
from jupiter.copilot.resolve import Ambiguous
from jupiter.copilot.turn import Refusal, Turn
from jupiter.engine import Engine, default_actor
from jupiter.errors import JupiterError, PermissionDenied
from jupiter.redact import redact, redact_text
from jupiter.workspace import Workspace

Handler = Callable[[Turn], Response]

HANDLERS: dict[str, Handler] = {
    "create_rollback_point": workflow.create_rollback_point,
    "generate_script": workflow.generate_script,
    "test_staging": workflow.test_staging,
    "approve": workflow.approve,
    "deploy": workflow.deploy,
    "validate": validate.validate,
    "rollback": workflow.rollback,
    "send_siem": outputs.send_siem,
    "update_ticket": outputs.update_ticket,
    "generate_config": outputs.generate_config,
    "statistics": outputs.statistics,
    "list_findings": outputs.list_findings,
}
assert set(HANDLERS) == set(CAPABILITIES)


def _redacted(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` through :func:`jupiter.redact.redact`, except an exported
    script's content and a generated configuration's files: the engine makes
    them secret-free by construction (a generated key is made on the host
    when the script runs; a configuration holds no credential), and the
    heuristic would corrupt them (``password = %s`` in a fixed query)."""
    exempt = {"script": "content", "config": "files"}
    kept: dict[str, Any] = {}
    for section, key in exempt.items():
        part = data.get(section)
        if isinstance(part, dict) and key in part:
            kept[section] = part.pop(key)
    out: dict[str, Any] = redact(data)
    for section, value in kept.items():
        out[section][exempt[section]] = value
    return out


class CopilotEngine:
    """Answers :class:`Query` objects against one workspace
    (``home``, else ``JUPITER_HOME``, else ``./.jupiter``)."""

    def __init__(self, home: Path | str | None = None, database_url: str | None = None) -> None:
        self.workspace = Workspace.resolve(Path(home) if home else None, database_url)
        self._base = Engine(self.workspace)

    def close(self) -> None:
        self._base.close()

    def __enter__(self) -> CopilotEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _engine(self, user: str | None) -> Engine:
        # One migrated database (and one loaded plugin registry) for every
        # query; an Engine per query, acting as its user.
        engine = Engine(self.workspace, actor=user or default_actor(), db=self._base.db)
        engine._registry = self._base._registry
        return engine

    def process_query(self, query: Query) -> Response:
        """Do what ``query`` asks, or say in one sentence why not (``ok=False``)."""
        parsed = parse(query.message, query.metadata)
        engine = self._engine(query.user_id)
        user = engine.actor
        if parsed.intent == "unknown" and llm.configured():
            try:
                parsed = llm.interpret(query.message)
            except JupiterError as exc:
                return Response(False, "unknown", str(exc), {"error": "llm"})
        if parsed.intent == "unknown":
            return self._unknown(query, parsed)
        context = sessions.load(engine.db, query.session_id, user)
        turn = Turn(engine, query, parsed, context)
        try:
            response = HANDLERS[parsed.intent](turn)
        except Ambiguous as exc:
            return Response(
                False,
                parsed.intent,
                str(exc),
                {"question": str(exc), "candidates": [a["id"] for a in exc.candidates]},
            )
        except Refusal as exc:
            return Response(False, parsed.intent, redact_text(str(exc)), redact(exc.data))
        except PermissionDenied as exc:
            said = redact_text(str(exc))
            return Response(False, parsed.intent, said, {"error": "permission_denied"})
        except JupiterError as exc:
            said = redact_text(str(exc))
            return Response(False, parsed.intent, said, {"error": type(exc).__name__})
        finally:
            if engine._registry is not None:
                self._base._registry = engine._registry
        sessions.save(engine.db, query.session_id, user, turn.touched)
        response.data = _redacted(response.data)
        response.message = redact_text(response.message)
        return response

    def _unknown(self, query: Query, parsed: Parsed) -> Response:
        said = ", ".join(parsed.understood) or "nothing I can act on"
        return Response(
            False,
            "unknown",
            f"I could not tell what to do with {query.message!r} (I understood: {said}); "
            f"I can {help_text()}",
            {"understood": parsed.params, "capabilities": list(CAPABILITIES)},
        )

    def get_statistics(self, user_id: str | None = None) -> dict[str, Any]:
        """Remediation statistics (``jupiter stats``) with the seed's keys:
        ``remediations_performed``, ``remediation_success_rate`` (%),
        ``avg_remediation_time`` (minutes), ``rollbacks_performed``,
        ``vulnerabilities_fixed``."""
        return self._engine(user_id).statistics()
