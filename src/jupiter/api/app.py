"""The ASGI application: one migrated database per process, one Engine per
request, acting as the user the request authenticated as.

Routers plug in here: the REST API under ``/api/v1`` (:mod:`jupiter.api.v1`)
and the web console (``jupiter.console.mount(app)``, when it exists) at
``/``. Errors leave in one JSON shape::

    {"error": {"code": "not_found", "message": "...", "field": null}}
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jupiter.engine import Engine
from jupiter.errors import (
    ConflictError,
    InputError,
    JupiterError,
    NotFoundError,
    PermissionDenied,
    StoreBusy,
)
from jupiter.redact import redact
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from jupiter.plugins.registry import Registry

log = logging.getLogger("jupiter.api")

#: The largest request body accepted (a scanner report upload), in bytes;
#: ``JUPITER_API_MAX_BODY`` overrides it. Larger requests get 413.
DEFAULT_MAX_BODY = 64 * 1024 * 1024

#: How long a verified token is trusted without hashing it again (its row is
#: still read on every request, so a revocation takes effect at once).
TOKEN_CACHE_SECONDS = 300.0


class Unauthenticated(PermissionDenied):
    """No API token, or one that is malformed, unknown, revoked or expired."""


#: HTTP status and error code for each kind of Jupiter error (most specific first).
ERROR_STATUS: list[tuple[type[JupiterError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (NotFoundError, 404, "not_found"),
    (PermissionDenied, 403, "forbidden"),
    (ConflictError, 409, "conflict"),
    (StoreBusy, 503, "busy"),
    (InputError, 422, "invalid"),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": redact(message), "field": field}}


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def jupiter_error_response(exc: JupiterError) -> JSONResponse:
    field = getattr(exc, "field", None)
    for kind, status, code in ERROR_STATUS:
        if isinstance(exc, kind):
            return error_response(status, code, str(exc), field)
    # A deliberate refusal that is not about the request's shape (a target
    # unreachable, a check that failed, a snapshot that does not match).
    return error_response(409, "failed", str(exc), field)


class FieldError(InputError):
    """Bad input that names the request field it is about."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(NotFoundError):
    """An unknown id in the request's path."""

    def __init__(self, message: str, field: str = "path") -> None:
        super().__init__(message)
        self.field = field


class Server:
    """What one server process shares between requests: the workspace, its
    migrated database and the tokens it has verified."""

    def __init__(self, home: Path | None = None, database_url: str | None = None) -> None:
        self.workspace = Workspace.resolve(home, database_url)
        bootstrap = Engine(self.workspace, actor="jupiter-server")
        self.db = bootstrap.db  # created and migrated once, here
        self._tokens: dict[bytes, tuple[str, str, str, float]] = {}
        self._tokens_lock = threading.Lock()
        #: The plugin registry, loaded by the first request that needs it and
        #: shared by the later ones (loading it takes seconds).
        self.registry: Registry | None = None

    def engine(self, actor: str | None = None, token: str | None = None) -> Engine:
        """An Engine for one request, sharing the process's database (and
        plugin registry, once loaded: hand the Engine back to :meth:`done`)."""
        engine = Engine(self.workspace, actor=actor, token=token, db=self.db)
        engine._registry = self.registry
        return engine

    def done(self, engine: Engine) -> None:
        """The request is over: keep the registry it loaded, close it."""
        if self.registry is None and engine._registry is not None:
            self.registry = engine._registry
        engine.close()

    def authenticate(self, token: str) -> str:
        """The user an API token stands for (raises :class:`Unauthenticated`).

        The first use of a token verifies it through the engine (argon2, its
        last use recorded, a refusal audited); later requests within
        :data:`TOKEN_CACHE_SECONDS` compare a SHA-256 of it and re-read the
        token's row, so revoking or expiring it takes effect at once."""
        from jupiter import identities
        from jupiter.store.tables import ApiTokenRow, utcnow

        key = hashlib.sha256(token.encode()).digest()
        with self._tokens_lock:
            hit = self._tokens.get(key)
        if hit is not None:
            name, token_id, secret_hash, verified_at = hit
            if time.monotonic() - verified_at < TOKEN_CACHE_SECONDS:
                with self.db.reading() as s:
                    row = s.get(ApiTokenRow, token_id)
                    if (
                        row is not None
                        and row.revoked_at is None
                        and row.secret_hash == secret_hash
                        and (row.expires_at is None or row.expires_at > utcnow())
                    ):
                        return name
            with self._tokens_lock:
                self._tokens.pop(key, None)
        engine = self.engine(token=token)
        try:
            name = engine.whoami().name
        except PermissionDenied as exc:
            raise Unauthenticated(str(exc)) from None
        finally:
            engine.close()
        m = identities.TOKEN.match(token.strip())
        assert m is not None  # whoami accepted it
        with self.db.reading() as s:
            row = s.get(ApiTokenRow, m.group(1))
            assert row is not None
            entry = (name, row.id, row.secret_hash, time.monotonic())
        with self._tokens_lock:
            if len(self._tokens) >= 4096:
                self._tokens.clear()
            self._tokens[key] = entry
        return name

    def close(self) -> None:
        self.db.dispose()


def server_of(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send an API token in the Authorization header (the bearer scheme); "
            "create one with `jupiter users token create`"
        )
    return token.strip()


async def bearer_engine(request: Request) -> AsyncGenerator[Engine, None]:
    """FastAPI dependency: an Engine acting as the user of the caller's
    bearer token (the REST API's only authentication): 401 without a valid
    token; the engine's own checks answer 403 for a role that may not.

    Async, so a request pays one worker-thread hop for the token check (it
    reads the database) instead of two: handing the Engine back does no I/O."""
    server = server_of(request)
    name = await run_in_threadpool(server.authenticate, bearer_token(request))
    engine = server.engine(actor=name)
    try:
        yield engine
    finally:
        server.done(engine)


EngineDep = Annotated[Engine, Depends(bearer_engine)]

#: Declares the bearer token in the OpenAPI document (the check itself is
#: :func:`bearer_engine`'s).
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API token from `jupiter users token create` (jpt_<id>_<secret>).",
)


def _validation_field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header") and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413,
    by its Content-Length before reading anything, or as soon as a streamed
    body crosses the limit (the route then fails before it acts)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                response = error_response(413, "too_large", _too_large(self.limit))
                await response(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than the server accepts ({limit} bytes); "
        "send a smaller report or raise JUPITER_API_MAX_BODY"
    )


def _max_body() -> int:
    raw = os.environ.get("JUPITER_API_MAX_BODY")
    if raw is None:
        return DEFAULT_MAX_BODY
    try:
        value = int(raw)
    except ValueError:
        raise InputError(
            f"JUPITER_API_MAX_BODY={raw!r} is not a number of bytes; set it to e.g. 67108864"
        ) from None
    if value < 0:
        raise InputError("JUPITER_API_MAX_BODY must be zero or more bytes")
    return value


def create_app(
    home: Path | None = None, database_url: str | None = None, max_body: int | None = None
) -> FastAPI:
    """The application ``jupiter serve`` runs, bound to one workspace: the
    REST API under ``/api/v1``, ``/metrics``, ``/healthz`` and (when
    :mod:`jupiter.console` provides ``mount``) the web console."""
    from jupiter import __version__
    from jupiter.api import v1

    limit = _max_body() if max_body is None else max_body
    app = FastAPI(
        title="Jupiter",
        version=__version__,
        summary="From scanner findings to verified, reversible, audited fixes.",
        description=(
            "Every route acts as the user of the bearer API token "
            "(`Authorization: Bearer jpt_…`, from `jupiter users token create`) and is "
            "checked against that user's roles (docs/roles.md). Errors have one shape: "
            '`{"error": {"code", "message", "field"}}`.'
        ),
    )
    app.add_middleware(BodyLimit, limit=limit)
    app.state.server = Server(home, database_url)
    app.state.max_body = limit

    @app.exception_handler(JupiterError)
    async def _jupiter_error(_request: Request, exc: JupiterError) -> JSONResponse:
        return jupiter_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _validation_field(first.get("loc", ()))
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        message = f"{field}: {msg}; fix the request and send it again"
        return error_response(422, "invalid", message, field)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 413:
            message = _too_large(limit)
        elif exc.status_code == 404:
            message = "no such route; see /docs or docs/openapi.json for the API's routes"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while serving a request")
        return error_response(
            500, "internal", f"the server failed unexpectedly ({type(exc).__name__}); see its log"
        )

    @app.get("/healthz", tags=["meta"], response_model=v1.Health)
    def healthz(request: Request) -> v1.Health:
        """Liveness: the process answers and its database is reachable."""
        from sqlalchemy import text

        with server_of(request).db.reading() as s:
            s.execute(text("SELECT 1"))
        return v1.Health(status="ok", version=__version__)

    app.include_router(v1.metrics_router)
    app.include_router(v1.router)
    _mount_console(app)
    return app


def app_from_env() -> FastAPI:
    """The application for one uvicorn worker process (``jupiter serve
    --workers N``): the workspace comes from JUPITER_HOME and
    JUPITER_DATABASE_URL, the body limit from JUPITER_API_MAX_BODY."""
    return create_app()


def _mount_console(app: FastAPI) -> None:
    """Let the web console add its pages, once it provides ``mount(app)``."""
    import jupiter.console as console

    mount = getattr(console, "mount", None)
    if callable(mount):
        mount(app)
