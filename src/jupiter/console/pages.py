"""The console's pages. Each one is a thin view over Engine methods called
as the logged-in user: the Engine checks the role (and separation of
duties), the page only shows what came back or why it was refused."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from jupiter.api.app import server_of
from jupiter.console import charts
from jupiter.console import session as sessions
from jupiter.console.web import Ctx, error_page, handle, render, safe_next
from jupiter.errors import PermissionDenied

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
#: At most this many rows on one page (the CLI and the API page further).
PAGE = 500
AUDIT_PAGE = 200
_ENDED = {"completed", "rolled_back", "failed", "cancelled"}


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# -- login ---------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    token = sessions.new_login_csrf()
    response = render(request, "login.html", login_csrf=token, next=safe_next(next), error=None)
    _set_login_csrf(request, response, token)
    return response


def _set_login_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        sessions.LOGIN_CSRF_COOKIE,
        token,
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )


@router.post("/login")
def login(
    request: Request, token: FormStr = "", csrf: FormStr = "", next: FormStr = ""
) -> Response:
    server = server_of(request)
    if not sessions.same_value(csrf, request.cookies.get(sessions.LOGIN_CSRF_COOKIE)):
        return error_page(
            request,
            403,
            "Form refused",
            "the login form's security token is missing or stale; reload the login page",
        )
    fresh = sessions.new_login_csrf()

    def again(message: str) -> Response:
        page = render(
            request, "login.html", 401, login_csrf=fresh, next=safe_next(next), error=message
        )
        _set_login_csrf(request, page, fresh)
        return page

    if not token.strip():
        return again("paste an API token (create one with `jupiter users token create`)")
    engine = server.engine(token=token.strip())
    try:
        who = engine.whoami()
    except PermissionDenied as exc:
        return again(str(exc))
    finally:
        engine.close()
    _, cookie = sessions.issue(server, who.name, token.strip().split("_")[1])
    response = _see(safe_next(next))
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=sessions.MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf: FormStr = "") -> Response:
    def work(ctx: Ctx) -> Response:
        response = _see("/login")
        response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return handle(request, work, csrf=csrf, post=True)


@router.get("/")
def home() -> Response:
    return _see("/dashboard")


# -- dashboard -----------------------------------------------------------
@router.get("/dashboard")
def dashboard(request: Request) -> Response:
    def work(ctx: Ctx) -> Response:
        stats = ctx.engine.statistics()
        findings = ctx.engine.list_findings()
        severity = Counter(f["severity"] for f in findings if f["status"] == "open")
        status = Counter(f["status"] for f in findings)
        compliance = ctx.engine.compliance_report()
        totals: Counter[str] = Counter()
        for a in compliance:
            totals.update(a["summary"])
        order = ["critical", "high", "medium", "low", "info"]
        mttr = stats.get("mttr_hours_by_severity") or {}
        open_by_age = stats.get("open_by_age") or {}
        return ctx.render(
            "dashboard.html",
            stats=stats,
            compliance=compliance,
            severity_chart=charts.bar_chart(
                "Open findings by severity", [(s, severity[s]) for s in order if severity[s]]
            ),
            status_chart=charts.bar_chart("Findings by status", sorted(status.items())),
            compliance_chart=charts.stacked_bar(
                "Compliance controls (latest evaluation)",
                {k: totals[k] for k in ("pass", "fail", "excepted")},
            ),
            mttr_chart=charts.bar_chart(
                "Mean time to remediate", [(k, float(v)) for k, v in mttr.items() if v], " h"
            ),
            age_chart=charts.bar_chart(
                "Open findings by age (days)", [(k, float(v)) for k, v in open_by_age.items()]
            ),
        )

    return handle(request, work)


# -- findings ------------------------------------------------------------
@router.get("/findings")
def findings(
    request: Request,
    status: str = "",
    severity: str = "",
    category: str = "",
    asset: str = "",
    q: str = "",
) -> Response:
    def work(ctx: Ctx) -> Response:
        filters = {
            "status": status or None,
            "severity": severity or None,
            "category": category or None,
            "asset": asset or None,
        }
        rows = ctx.engine.list_findings(**filters)
        if q.strip():
            needle = q.strip().lower()
            rows = [
                f
                for f in rows
                if needle in f["title"].lower()
                or needle in f["rule_id"].lower()
                or needle in (f["location"]["path"] or "").lower()
            ]
        return ctx.render(
            "findings.html",
            findings=rows[:PAGE],
            total=len(rows),
            page=PAGE,
            filters={**{k: v or "" for k, v in filters.items()}, "q": q},
            statuses=["open", "fixed", "verified", "excepted", "suppressed"],
            severities=["critical", "high", "medium", "low", "info"],
            assets=[a["id"] for a in ctx.engine.list_assets()],
        )

    return handle(request, work)


# -- remediations --------------------------------------------------------
@router.get("/remediations")
def remediations(request: Request, status: str = "") -> Response:
    def work(ctx: Ctx) -> Response:
        rows = ctx.engine.remediations.listing(status or None)
        return ctx.render("remediations.html", remediations=rows, status_filter=status)

    return handle(request, work)


def _paths(info: Any) -> list[str]:
    return sorted({p for t in info.targets for st in t.steps for p in st.get("paths", [])})


@router.get("/remediations/{ref}")
def remediation(request: Request, ref: str) -> Response:
    def work(ctx: Ctx) -> Response:
        info = ctx.engine.remediations.show(ref)
        # Each target's fix and rollback runs: per fix, its status and the
        # validators' and re-detection's verdicts (the check results).
        runs = {
            t.asset: [
                ctx.engine.show_run(r)
                for r in [*t.runs, *([t.rollback_run] if t.rollback_run else [])]
            ]
            for t in info.targets
        }
        return ctx.render(
            "remediation.html",
            rem=info,
            runs=runs,
            paths=_paths(info),
            ended=info.status in _ENDED,
            rollbackable=any(t.status in ("deployed", "verified") for t in info.targets),
        )

    return handle(request, work)


@router.post("/remediations/{ref}/rollback")
def rollback(
    request: Request,
    ref: str,
    csrf: FormStr = "",
    path: Annotated[list[str] | None, Form()] = None,
    target: FormStr = "",
) -> Response:
    def work(ctx: Ctx) -> Response:
        chosen = [p for p in (path or []) if p]
        info = ctx.engine.remediations.rollback(ref, target=target or None, paths=chosen or None)
        return _see(f"/remediations/{info.id}")

    return handle(request, work, csrf=csrf, post=True)


# -- approvals -----------------------------------------------------------
@router.get("/approvals")
def approvals(request: Request) -> Response:
    def work(ctx: Ctx) -> Response:
        return ctx.render("approvals.html", approvals=ctx.engine.list_approvals())

    return handle(request, work)


@router.get("/approvals/{ref}")
def approval(request: Request, ref: str) -> Response:
    def work(ctx: Ctx) -> Response:
        a = ctx.engine.show_approval(ref)
        info = ctx.engine.remediations.show(ref)
        return ctx.render("approval.html", a=a, rem=info)

    return handle(request, work)


@router.post("/approvals/{ref}/approve")
def approve(
    request: Request, ref: str, csrf: FormStr = "", plan_hash: FormStr = "", comment: FormStr = ""
) -> Response:
    def work(ctx: Ctx) -> Response:
        # The plan hash the page showed: a plan changed since is refused.
        done = ctx.engine.approve_remediation(ref, plan_hash or None, comment)
        if done["status"] == "awaiting_approval":
            return _see(f"/approvals/{done['remediation']}")
        return _see(f"/remediations/{done['remediation']}")

    return handle(request, work, csrf=csrf, post=True)


@router.post("/approvals/{ref}/reject")
def reject(request: Request, ref: str, csrf: FormStr = "", comment: FormStr = "") -> Response:
    def work(ctx: Ctx) -> Response:
        done = ctx.engine.reject_remediation(ref, comment)
        return _see(f"/remediations/{done['remediation']}")

    return handle(request, work, csrf=csrf, post=True)


# -- exceptions ----------------------------------------------------------
@router.get("/exceptions")
def exceptions(request: Request, status: str = "") -> Response:
    def work(ctx: Ctx) -> Response:
        rows = ctx.engine.list_exceptions(status or None)
        return ctx.render("exceptions.html", exceptions=rows, status_filter=status)

    return handle(request, work)


@router.post("/exceptions")
def request_exception(
    request: Request,
    csrf: FormStr = "",
    reason: FormStr = "",
    ticket: FormStr = "",
    expires: FormStr = "",
    finding: FormStr = "",
    rule: FormStr = "",
    asset: FormStr = "",
) -> Response:
    def work(ctx: Ctx) -> Response:
        ctx.engine.request_exception(
            reason, ticket, expires, finding=finding or None, rule=rule or None, asset=asset or None
        )
        return _see("/exceptions")

    return handle(request, work, csrf=csrf, post=True)


@router.post("/exceptions/{waiver_id}/{verdict}")
def decide_exception(
    request: Request, waiver_id: int, verdict: str, csrf: FormStr = "", comment: FormStr = ""
) -> Response:
    def work(ctx: Ctx) -> Response:
        if verdict == "approve":
            ctx.engine.approve_exception(waiver_id, comment)
        elif verdict == "revoke":
            ctx.engine.revoke_exception(waiver_id, comment)
        else:
            return error_page(request, 404, "Not found", f"no exception action {verdict!r}")
        return _see("/exceptions")

    return handle(request, work, csrf=csrf, post=True)


# -- audit ---------------------------------------------------------------
@router.get("/audit")
def audit(request: Request, action: str = "", actor: str = "", verify: str = "") -> Response:
    def work(ctx: Ctx) -> Response:
        verified = ctx.engine.audit_verify().to_json() if verify else None
        try:
            entries = _audit_tail(ctx.engine.audit_export(), action, actor)
            refused = None
        except PermissionDenied as exc:  # viewers may verify the chain, not read it
            entries, refused = [], str(exc)
        return ctx.render(
            "audit.html",
            entries=entries,
            action=action,
            actor=actor,
            verified=verified,
            refused=refused,
            page=AUDIT_PAGE,
        )

    return handle(request, work)


def _audit_tail(entries: Iterator[dict[str, Any]], action: str, actor: str) -> list[dict[str, Any]]:
    """The newest ``AUDIT_PAGE`` entries that match, newest first (the
    export runs oldest first: keep a bounded tail while streaming)."""
    tail: deque[dict[str, Any]] = deque(maxlen=AUDIT_PAGE)
    for e in entries:
        if (not action or e["action"].startswith(action)) and (not actor or e["actor"] == actor):
            tail.append(e)
    return list(reversed(tail))
