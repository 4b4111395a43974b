"""The plumbing every console page shares: templates, the logged-in user's
Engine, CSRF checks on POST, error pages and the security headers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from jupiter.api.app import server_of
from jupiter.console import session as sessions
from jupiter.engine import Engine
from jupiter.errors import InputError, JupiterError, NotFoundError, PermissionDenied
from jupiter.redact import redact

PACKAGE = Path(str(files("jupiter.console")))
templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
templates.env.autoescape = True


def _when(value: object) -> str:
    """An ISO timestamp as ``2026-12-05 18:21:25`` (UTC, to the second)."""
    text = str(value or "")
    return text[:19].replace("T", " ") if len(text) >= 19 else text


templates.env.filters["when"] = _when

#: The pages in the navigation bar: (path, label).
NAV = [
    ("/dashboard", "Dashboard"),
    ("/findings", "Findings"),
    ("/remediations", "Remediations"),
    ("/approvals", "Approvals"),
    ("/exceptions", "Exceptions"),
    ("/audit", "Audit"),
]


@dataclass
class Ctx:
    request: Request
    session: sessions.ConsoleSession
    engine: Engine

    def render(self, name: str, status: int = 200, **data: Any) -> HTMLResponse:
        return render(self.request, name, status, session=self.session, **data)


def render(
    request: Request,
    name: str,
    status: int = 200,
    session: sessions.ConsoleSession | None = None,
    **data: Any,
) -> HTMLResponse:
    context = {
        "nav": NAV,
        "path": request.url.path,
        "user": session.user if session else None,
        "csrf": session.csrf if session else "",
        **data,
    }
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(
    request: Request, status: int, title: str, message: str, session: Any = None
) -> HTMLResponse:
    return render(
        request, "error.html", status, session=session, title=title, message=redact(message)
    )


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = "/dashboard"
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def safe_next(value: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/approvals"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/approvals"
    return value


def same_origin(request: Request) -> bool:
    """False for a POST another site's page sent (browsers name the origin
    of cross-site form posts); the session's CSRF token is checked too,
    whatever this says, so a missing or opaque (``null``) origin passes here."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def handle(
    request: Request,
    work: Callable[[Ctx], Response],
    *,
    csrf: str | None = None,
    post: bool = False,
) -> Response:
    """Run one page: the session (else to the login page), the CSRF check
    on a POST, an Engine acting as the user, errors as clear pages."""
    server = server_of(request)
    session = sessions.read(server, request.cookies.get(sessions.COOKIE))
    if session is None:
        return login_redirect(request)
    if post and (not same_origin(request) or not session.check_csrf(csrf)):
        return error_page(
            request,
            403,
            "Form refused",
            "the form's security token is missing or does not match your session; "
            "reload the page and submit it again",
            session,
        )
    engine = server.engine(actor=session.user)
    try:
        return work(Ctx(request, session, engine))
    except PermissionDenied as exc:
        return error_page(request, 403, "Not allowed", str(exc), session)
    except NotFoundError as exc:
        return error_page(request, 404, "Not found", str(exc), session)
    except InputError as exc:
        return error_page(request, 422, "Cannot do that", str(exc), session)
    except JupiterError as exc:
        return error_page(request, 409, "It did not work", str(exc), session)
    finally:
        engine.close()
