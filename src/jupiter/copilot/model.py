"""The copilot's request and answer (the seed's ``Query`` and response)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Query:
    """One request: free text plus optional structured ``metadata``.
    ``user_id`` is the actor every engine action is checked against;
    ``session_id`` ties follow-up queries to what earlier ones touched."""

    message: str
    metadata: dict[str, Any] | None = None
    user_id: str | None = None
    session_id: str | None = None


@dataclass
class Response:
    """``ok`` is False when nothing was done (not understood, ambiguous,
    refused, not available); ``message`` says why in one sentence."""

    ok: bool
    intent: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "intent": self.intent, "message": self.message, "data": self.data}
