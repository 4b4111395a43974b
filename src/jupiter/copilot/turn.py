"""One query being answered: the engine acting as the query's user, the
parsed intent, the session's context and what this query touches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupiter.copilot.intents import Parsed
from jupiter.copilot.model import Query, Response
from jupiter.copilot.resolve import resolve_asset
from jupiter.engine import Engine
from jupiter.errors import InputError


class Refusal(InputError):
    """The copilot cannot do this (one sentence); ``data`` goes to the response."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data or {}


@dataclass
class Turn:
    engine: Engine
    query: Query
    parsed: Parsed
    context: dict[str, Any]
    touched: dict[str, Any] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return self.query.metadata or {}

    def first(self, *keys: str) -> Any:
        """The first of ``keys`` given in the metadata, else in the message."""
        for key in keys:
            value = self.meta.get(key)
            if value not in (None, ""):
                return value
        for key in keys:
            value = self.parsed.params.get(key)
            if value not in (None, ""):
                return value
        return None

    def ok(self, message: str, data: dict[str, Any]) -> Response:
        return Response(True, self.parsed.intent, message, data)

    def fail(self, message: str, data: dict[str, Any] | None = None) -> Response:
        return Response(False, self.parsed.intent, message, data or {})

    # -- references ---------------------------------------------------------
    def asset(self, required: bool = True) -> str | None:
        """The asset the query names (metadata ``asset_id``/``asset``, the
        message's "for X"), else the one the session last touched."""
        ref = self.first("asset_id", "asset", "asset_ref")
        if ref is None:
            ref = self.context.get("asset")
            if ref is None:
                if required:
                    raise Refusal(
                        "which asset? name it (e.g. 'for web-01' or metadata asset_id); this "
                        "session has not touched one yet"
                    )
                return None
        found = resolve_asset(self.engine.list_assets(), str(ref))
        self.touched["asset"] = found["id"]
        return str(found["id"])

    def remediation(self) -> str:
        """The remediation the query means: metadata ``remediation_id`` or
        ``script_id`` (a script is a remediation's reviewed plan), the
        message's REM-n, else the session's."""
        ref = self.first("remediation_id", "script_id", "remediation")
        if ref is None:
            ref = self.context.get("remediation")
        if ref is None:
            raise Refusal(
                "which remediation? this session has not generated a script yet; generate one "
                "first or name it (REM-n)"
            )
        text = str(ref).strip().upper()
        for prefix in ("SCRIPT-", "DEPLOY-"):
            text = text.removeprefix(prefix)
        if text.isdigit():
            text = f"REM-{text}"
        self.touched["remediation"] = text
        return text
