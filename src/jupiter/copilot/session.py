"""Session context, stored in the workspace database (``copilot_sessions``)
per (session, user): what the session last touched, so "Validate that the
vulnerability is fixed" knows which remediation it means."""

from __future__ import annotations

from typing import Any

from jupiter.redact import redact
from jupiter.store.db import Database
from jupiter.store.tables import CopilotSessionRow, utcnow

#: The keys a session remembers.
KEYS = ("asset", "snapshot_id", "remediation", "findings", "vulnerability_type", "component")


def load(db: Database, session_id: str | None, user: str) -> dict[str, Any]:
    if not session_id:
        return {}
    with db.reading() as s:
        row = s.get(CopilotSessionRow, (session_id, user))
        return dict(row.context) if row is not None else {}


def save(db: Database, session_id: str | None, user: str, touched: dict[str, Any]) -> None:
    """Merge what a query touched into the session (nothing without a session id)."""
    if not session_id or not touched:
        return
    update = {k: v for k, v in redact(touched).items() if k in KEYS and v is not None}
    with db.transaction() as s:
        row = s.get(CopilotSessionRow, (session_id, user))
        if row is None:
            s.add(
                CopilotSessionRow(
                    session_id=session_id, user_id=user, context=update, updated_at=utcnow()
                )
            )
        else:
            row.context = {**row.context, **update}
            row.updated_at = utcnow()
