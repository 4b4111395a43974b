"""``jupiter serve``: the REST API (and the web console) over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (keep 127.0.0.1 behind a proxy).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    max_body: Annotated[
        int | None,
        typer.Option(
            "--max-body",
            min=0,
            help="Largest request body in bytes (a report upload); larger ones get 413. "
            "Default 64 MiB or JUPITER_API_MAX_BODY.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes (each with its own connection pool); about one per core.",
        ),
    ] = 1,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn's log level (info, warning, ...).")
    ] = "info",
) -> None:
    """Serve the REST API under /api/v1 (OpenAPI at /docs and /openapi.json),
    /metrics, /healthz and the web console. Every API call authenticates
    with a bearer token from `jupiter users token create`."""
    import os

    import uvicorn

    from jupiter.api import create_app

    # Built here first even with workers: a bad workspace or limit fails now,
    # in this process, with one sentence (and the database is migrated once).
    app = create_app(state.home(), max_body=max_body)
    state.console(stderr=True).print(
        f"Jupiter API on http://{host}:{port}/api/v1 (docs: http://{host}:{port}/docs); "
        "Ctrl-C stops it"
    )
    try:
        if workers == 1:
            uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)
            return
        os.environ["JUPITER_HOME"] = str(app.state.server.workspace.home)
        os.environ["JUPITER_DATABASE_URL"] = app.state.server.workspace.database_url
        os.environ["JUPITER_API_MAX_BODY"] = str(app.state.max_body)
        uvicorn.run(
            "jupiter.api.app:app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
            proxy_headers=False,
        )
    finally:
        app.state.server.close()
