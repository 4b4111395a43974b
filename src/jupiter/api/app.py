"""The ASGI application: one migrated database per process, one Engine per
request, acting as the user the request authenticated as.

Routers plug in here: the REST API under ``/api/v1`` and the web console
(``jupiter.console``) at ``/``. Errors leave in one JSON shape::

    {"error": {"code": "not_found", "message": "...", "field": null}}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from jupiter.engine import Engine
from jupiter.errors import (
    ConflictError,
    InputError,
    JupiterError,
    NotFoundError,
    PermissionDenied,
)
from jupiter.redact import redact
from jupiter.workspace import Workspace

#: HTTP status and error code for each kind of Jupiter error (most specific first).
ERROR_STATUS: list[tuple[type[JupiterError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (PermissionDenied, 403, "forbidden"),
    (ConflictError, 409, "conflict"),
    (InputError, 422, "invalid"),
]


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": redact(message), "field": field}}


class Server:
    """What one server process shares between requests: the workspace and its
    migrated database."""

    def __init__(self, home: Path | None = None, database_url: str | None = None) -> None:
        self.workspace = Workspace.resolve(home, database_url)
        bootstrap = Engine(self.workspace, actor="jupiter-server")
        self.db = bootstrap.db  # created and migrated once, here

    def engine(self, actor: str | None = None, token: str | None = None) -> Engine:
        """An Engine for one request, sharing the process's database."""
        return Engine(self.workspace, actor=actor, token=token, db=self.db)

    def close(self) -> None:
        self.db.dispose()


def server_of(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def create_app(home: Path | None = None, database_url: str | None = None) -> FastAPI:
    """The application ``jupiter serve`` runs, bound to one workspace."""
    from jupiter import __version__

    app = FastAPI(
        title="Jupiter",
        version=__version__,
        summary="From scanner findings to verified, reversible, audited fixes.",
    )
    app.state.server = Server(home, database_url)

    @app.exception_handler(JupiterError)
    async def _jupiter_error(_request: Request, exc: JupiterError) -> JSONResponse:
        for kind, status, code in ERROR_STATUS:
            if isinstance(exc, kind):
                return JSONResponse(error_body(code, str(exc)), status_code=status)
        return JSONResponse(error_body("failed", str(exc)), status_code=500)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers and its database is reachable."""
        return {"status": "ok"}

    return app


def bearer_engine(request: Request) -> Iterator[Engine]:
    """FastAPI dependency: the Engine of the caller's bearer token (the REST
    API's only authentication; a missing token is refused with 401 by the
    route layer)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    engine = server_of(request).engine(token=token) if token else None
    if engine is None:
        raise PermissionDenied("send an API token as `Authorization: Bearer jpt_…`")
    try:
        yield engine
    finally:
        engine.close()


EngineDep = Annotated[Engine, Depends(bearer_engine)]
