"""Console sessions: a sealed cookie, a CSRF token, the security headers.

The session cookie holds the user, the id of the API token they logged in
with, a per-session CSRF token and the login time, sealed (AES-GCM,
authenticated) under the workspace key (:mod:`jupiter.keys`), so a server
restart or a second worker process reads it too and nobody can forge or
read one. Every request checks again that the token is neither revoked nor
expired and that the user is enabled: revoking the token ends the session.

Every POST carries the session's CSRF token in a hidden ``csrf`` field; the
login form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import select

from jupiter.errors import JupiterError
from jupiter.store.tables import ApiTokenRow, UserRow, utcnow

if TYPE_CHECKING:
    from jupiter.api.app import Server
    from jupiter.sealing import WorkspaceKey

COOKIE = "jupiter_session"
LOGIN_CSRF_COOKIE = "jupiter_login_csrf"
#: A session ends this long after login, whatever happens.
MAX_AGE = 8 * 3600
_CONTEXT = "jupiter-console-session-v1"

#: Sent with every console response. Scripts and styles only from this
#: origin (no inline script, no eval), no framing, no referrer to other sites.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Not no-referrer: with it Chromium sends ``Origin: null`` on the
    # console's own form posts, and the same-origin check needs the origin.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSession:
    user: str
    token_id: str
    csrf: str
    issued_at: int

    def check_csrf(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), (sent or "").encode())


def _key(server: Server) -> WorkspaceKey:
    from jupiter.keys import KeyStore

    key = getattr(server, "_console_key", None)
    if key is None:
        server.workspace.ensure()
        key = KeyStore(server.workspace.home).workspace_key()
        server._console_key = key  # type: ignore[attr-defined]
    return key


def issue(server: Server, user: str, token_id: str) -> tuple[ConsoleSession, str]:
    """A new session and its cookie value."""
    session = ConsoleSession(user, token_id, secrets.token_urlsafe(32), int(time.time()))
    payload = orjson.dumps(
        {"u": session.user, "t": session.token_id, "c": session.csrf, "i": session.issued_at}
    )
    sealed = _key(server).seal(payload, _CONTEXT)
    return session, base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def read(server: Server, cookie: str | None) -> ConsoleSession | None:
    """The session a cookie stands for, or None when it is missing, forged,
    too old, or its token or user no longer valid."""
    if not cookie or len(cookie) > 4096:
        return None
    try:
        blob = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
        data = orjson.loads(_key(server).unseal(blob, _CONTEXT))
        session = ConsoleSession(str(data["u"]), str(data["t"]), str(data["c"]), int(data["i"]))
    except (JupiterError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
    if not 0 <= time.time() - session.issued_at <= MAX_AGE:
        return None
    with server.db.reading() as s:
        row = s.execute(
            select(ApiTokenRow.revoked_at, ApiTokenRow.expires_at, UserRow.name, UserRow.disabled)
            .join(UserRow, UserRow.id == ApiTokenRow.user_id)
            .where(ApiTokenRow.id == session.token_id)
        ).first()
    if row is None:
        return None
    revoked_at, expires_at, name, disabled = row
    if revoked_at is not None or disabled or name != session.user:
        return None
    if expires_at is not None and expires_at <= utcnow():
        return None
    return session


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def same_value(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest((a or "").encode(), (b or "").encode())
