"""The web console (server-rendered pages over the same Engine as the API).

``mount(app)`` adds its routes to the application from
:func:`jupiter.api.create_app`: pages at ``/`` (``/login``, ``/dashboard``,
``/findings``, ``/remediations``, ``/approvals``, ``/exceptions``,
``/audit``), static files at ``/static/console``. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = "/static/console"


class SecurityHeaders:
    """Pure ASGI middleware: every HTTP response gets the console's security
    headers (those it does not set itself), static files a cache lifetime.
    It only rewrites the response's start message: no extra task, stream or
    Request object per request (unlike ``@app.middleware("http")``)."""

    def __init__(self, app: ASGIApp) -> None:
        from jupiter.console.session import SECURITY_HEADERS

        self.app = app
        self.headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()
        ]
        self.static = [(b"cache-control", b"public, max-age=3600"), *self.headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.static if scope["path"].startswith(STATIC + "/") else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                for name, value in extra:
                    if name not in present:
                        headers.append((name, value))
                        present.add(name)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Add the console to ``app`` (once: a second call does nothing)."""
    if getattr(app.state, "console_mounted", False):
        return
    app.state.console_mounted = True

    from starlette.staticfiles import StaticFiles

    from jupiter.console.pages import router
    from jupiter.console.web import PACKAGE

    app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=str(PACKAGE / "static")), name="console-static")

    app.add_middleware(SecurityHeaders)


__all__ = ["SecurityHeaders", "mount"]
