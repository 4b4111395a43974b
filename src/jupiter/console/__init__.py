"""The web console (server-rendered pages over the same Engine as the API).

``mount(app)`` adds its routes to the application from
:func:`jupiter.api.create_app`: pages at ``/`` (``/login``, ``/dashboard``,
``/findings``, ``/remediations``, ``/approvals``, ``/exceptions``,
``/audit``), static files at ``/static/console``. See docs/console.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

STATIC = "/static/console"


def mount(app: FastAPI) -> None:
    """Add the console to ``app`` (once: a second call does nothing)."""
    if getattr(app.state, "console_mounted", False):
        return
    app.state.console_mounted = True

    from starlette.staticfiles import StaticFiles

    from jupiter.console.pages import router
    from jupiter.console.web import PACKAGE, apply_security_headers

    app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=str(PACKAGE / "static")), name="console-static")

    @app.middleware("http")
    async def _security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith(STATIC + "/"):
            response.headers.setdefault("cache-control", "public, max-age=3600")
        apply_security_headers(response)
        return response


__all__ = ["mount"]
