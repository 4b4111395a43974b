"""The REST API, version 1 (``/api/v1``): each route a thin layer over one
:class:`jupiter.engine.Engine` method, which checks the caller's role.

Responses pass through :func:`jupiter.redact.redact` (findings are redacted
as they are stored and again as they are shaped). Lists of findings page by
cursor (keyset): a page stays correct while findings are added.
"""

from __future__ import annotations

import asyncio
import base64
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from jupiter.api.app import (
    EngineDep,
    FieldError,
    bearer_scheme,
    bearer_token,
    server_of,
)
from jupiter.api.models import (
    AnswerRequest,
    Approval,
    ApproveRequest,
    Asset,
    AuditVerify,
    CommentRequest,
    CreateResult,
    Decision,
    EvaluateRequest,
    Exception_,
    ExceptionRequest,
    Finding,
    FindingPage,
    Health,
    IngestResult,
    Me,
    PlanRequest,
    PlanResult,
    Policies,
    PolicyTests,
    RejectRequest,
    Remediation,
    RemediationCreate,
    RemediationRollbackRequest,
    Run,
    RunDetail,
    RunRollbackRequest,
    ScanRequest,
    ScanResult,
    Snapshot,
    SnapshotCreate,
    SnapshotRestore,
    SnapshotRestored,
)
from jupiter.engine import Engine
from jupiter.errors import InputError, NotFoundError
from jupiter.redact import redact
from jupiter.states import ENDED_REMEDIATION
from jupiter.store import findings as finding_repo

__all__ = ["Health", "metrics_router", "router"]

router = APIRouter(prefix="/api/v1", dependencies=[Security(bearer_scheme)])
metrics_router = APIRouter(dependencies=[Security(bearer_scheme)])

#: How often the live timeline (SSE) looks for new events, in seconds.
POLL_SECONDS = 0.5

_ENDED = {s.value for s in ENDED_REMEDIATION}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

Cursor = Annotated[
    str | None,
    Query(max_length=400, description="The `next_cursor` of the previous page."),
]


def _out(value: Any) -> Any:
    """No secret leaves in a response."""
    return redact(value)


# -- meta ----------------------------------------------------------------------
@router.get("/me", tags=["meta"], response_model=Me)
def me(engine: EngineDep) -> Me:
    """The user the token stands for and its grants."""
    who = engine.whoami()
    return Me(name=who.name, roles=who.roles, grants=[g.label() for g in who.grants])


@metrics_router.get(
    "/metrics",
    tags=["meta"],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(engine: EngineDep) -> PlainTextResponse:
    """Prometheus metrics of the workspace (fix runs, rollbacks, open
    findings, outbox); scrape with a bearer token."""
    return PlainTextResponse(
        engine.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


# -- assets --------------------------------------------------------------------
@router.get("/assets", tags=["assets"], response_model=list[Asset])
def list_assets(engine: EngineDep) -> Any:
    """Every asset of the workspace."""
    return _out(engine.list_assets())


@router.get("/assets/{asset_id}", tags=["assets"], response_model=Asset)
def get_asset(asset_id: str, engine: EngineDep) -> Any:
    for asset in engine.list_assets():
        if asset["id"] == asset_id:
            return _out(asset)
    raise NotFoundError(f"no asset {asset_id!r}; see GET /api/v1/assets")


# -- findings -------------------------------------------------------------------
def _encode_cursor(sort: str, finding: dict[str, Any]) -> str:
    raw = orjson.dumps([sort, finding_repo.sort_value(finding, sort), finding["id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    bad = FieldError(
        "the cursor is not one this API gave out for this sort; start again without it",
        "cursor",
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, last_id = orjson.loads(raw)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise bad from None
    if made_for != sort or not isinstance(last_id, int) or isinstance(last_id, bool):
        raise bad
    key = sort.removeprefix("-")
    try:
        if key in ("first_seen", "last_seen"):
            value = datetime.fromisoformat(value)
        elif key in ("severity", "id"):
            value = int(value)
        else:
            value = float(value)
    except (ValueError, TypeError):
        raise bad from None
    return value, last_id


@router.get("/findings", tags=["findings"], response_model=FindingPage)
def list_findings(
    engine: EngineDep,
    asset: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
    severity: Annotated[str | None, Query(max_length=40)] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    sort: Annotated[
        str,
        Query(
            pattern=r"^-?(priority|severity|last_seen|first_seen|id)$",
            description="priority, severity, last_seen, first_seen or id; - for descending.",
        ),
    ] = "-priority",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
) -> Any:
    """Findings matching the filters, one page at a time (highest priority
    first by default); follow `next_cursor` for the next page."""
    after = _decode_cursor(cursor, sort) if cursor else None
    rows = engine.list_findings(
        asset=asset,
        status=status,
        severity=severity,
        category=category,
        sort=sort,
        after=after,
        limit=limit + 1,
    )
    page, more = rows[:limit], len(rows) > limit
    body = {"items": page, "next_cursor": _encode_cursor(sort, page[-1]) if more else None}
    # The engine's findings are already redacted and shaped as `FindingPage`
    # says (a test checks it): sent as they are, a page costs no validation.
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/findings/{finding_id}", tags=["findings"], response_model=Finding)
def get_finding(finding_id: str, engine: EngineDep) -> Any:
    """One finding by id or fingerprint."""
    return engine.get_finding(finding_id)


# -- ingest ----------------------------------------------------------------------------
@router.post(
    "/ingest",
    tags=["findings"],
    response_model=IngestResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A scanner report: the raw JSON body, or multipart/form-data "
            "with the report in the field `file`.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def ingest(
    request: Request,
    asset: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[str, Query(max_length=40, description="auto or a report format")] = "auto",
    filename: Annotated[str, Query(max_length=200)] = "report.json",
) -> Any:
    """Upload a scanner report (SARIF, Bandit, Checkov, Trivy, ...) and store
    its findings, all or nothing."""
    server = server_of(request)
    user = await run_in_threadpool(server.authenticate, bearer_token(request))
    name = filename
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise FieldError("send the report as a file in the multipart field `file`", "file")
            data = await upload.read()
            name = upload.filename or name
    else:
        data = await request.body()
    if not data.strip():
        raise FieldError("the upload is empty; send a scanner report", "file")
    engine = server.engine(actor=user)
    try:
        return await run_in_threadpool(_ingest_bytes, engine, data, name, asset, format)
    finally:
        server.done(engine)


def _ingest_bytes(
    engine: Engine, data: bytes, name: str, asset: str | None, fmt: str
) -> dict[str, Any]:
    safe = _SAFE_NAME.sub("_", Path(name).name)[:100].lstrip(".") or "report.json"
    with tempfile.TemporaryDirectory(prefix="jupiter-upload-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        try:
            report = engine.ingest([path], asset=asset, fmt=fmt)
        except NotFoundError:
            raise
        except InputError as exc:
            raise FieldError(str(exc).replace(f"{tmp}/", ""), "file") from None
        out = report.to_json()
        for f in out["files"]:
            f["path"] = safe
        return dict(_out(out))


# -- scans and plans --------------------------------------------------------------------
@router.post("/scans", tags=["findings"], response_model=ScanResult)
def scan(body: ScanRequest, engine: EngineDep) -> Any:
    """Run the built-in detectors over a target and store the findings."""
    return _out(engine.scan(body.target, asset=body.asset).to_json())


@router.post("/plans", tags=["remediations"], response_model=PlanResult)
def plan(body: PlanRequest, engine: EngineDep) -> Any:
    """The plan (with its diff) for one finding; touches nothing."""
    return _out(engine.plan(body.finding, body.params or None))


# -- runs and their snapshots ---------------------------------------------------------------
def _run_id(value: str) -> int:
    if not value.isdecimal() or len(value) > 18:
        raise NotFoundError(f"no run {value!r}; run ids are numbers (GET /api/v1/runs)")
    return int(value)


@router.get("/runs", tags=["runs"], response_model=list[Run])
def list_runs(engine: EngineDep) -> Any:
    """Fix and rollback runs, newest first."""
    return _out(engine.list_runs())


@router.get("/runs/{run_id}", tags=["runs"], response_model=RunDetail)
def show_run(run_id: str, engine: EngineDep) -> Any:
    """One run with its steps (plans, diffs, validations)."""
    return _out(engine.show_run(_run_id(run_id)))


@router.get("/snapshots", tags=["snapshots"], response_model=list[Snapshot])
def list_snapshots(
    engine: EngineDep, asset: Annotated[str | None, Query(max_length=200)] = None
) -> Any:
    """Rollback points of whole assets, newest first (each fix run also
    snapshots what it changes: `POST /runs/{id}/rollback`)."""
    return _out(engine.list_rollback_points(asset))


@router.post("/snapshots", tags=["snapshots"], response_model=Snapshot, status_code=201)
def create_snapshot(body: SnapshotCreate, engine: EngineDep) -> Any:
    """Capture every file under an asset's root as a rollback point."""
    return _out(engine.create_rollback_point(body.asset, body.reason))


@router.post(
    "/snapshots/{snapshot_id}/restore", tags=["snapshots"], response_model=SnapshotRestored
)
def restore_snapshot(snapshot_id: str, body: SnapshotRestore, engine: EngineDep) -> Any:
    """Put the asset's files (or some paths) back as the rollback point
    holds them, each re-hashed against its manifest."""
    return _out(
        engine.restore_rollback_point(
            snapshot_id, paths=body.paths, reason=body.reason, dry_run=body.dry_run
        )
    )


@router.post("/runs/{run_id}/rollback", tags=["runs"])
def rollback_run(run_id: str, body: RunRollbackRequest, engine: EngineDep) -> Any:
    """Restore what a fix run changed (all, or some paths) and prove it by hashes."""
    return _out(engine.rollback(_run_id(run_id), paths=body.paths, force=body.force))


# -- remediations -------------------------------------------------------------------------
def _rem(info: Any) -> Any:
    return _out(info.to_json())


@router.get("/remediations", tags=["remediations"], response_model=list[Remediation])
def list_remediations(
    engine: EngineDep, status: Annotated[str | None, Query(max_length=40)] = None
) -> Any:
    return [_rem(r) for r in engine.remediations.listing(status)]


@router.post("/remediations", tags=["remediations"], response_model=CreateResult, status_code=201)
def create_remediation(body: RemediationCreate, engine: EngineDep) -> Any:
    """Plan a remediation on a target, an asset or a group and store it."""
    result = engine.remediations.create(
        body.target,
        asset=body.asset,
        group=body.group,
        only=body.only,
        findings=body.findings,
        batch=body.batch,
        workflow=body.workflow,
        strategy=body.strategy,
        dry_run=body.dry_run,
        raw_params=body.params,
    )
    return _out(result.to_json())


@router.get("/remediations/{ref}", tags=["remediations"], response_model=Remediation)
def show_remediation(ref: str, engine: EngineDep) -> Any:
    """One remediation with its targets and timeline."""
    return _rem(engine.remediations.show(ref))


@router.post("/remediations/{ref}/approve", tags=["remediations"], response_model=Approval)
def approve_remediation(ref: str, body: ApproveRequest, engine: EngineDep) -> Any:
    """Approve the reviewed plan; the remediation goes on once the policy's
    quorum is met (separation of duties applies)."""
    return _out(engine.approve_remediation(ref, body.plan_hash, body.comment, body.run))


@router.post("/remediations/{ref}/reject", tags=["remediations"], response_model=Approval)
def reject_remediation(ref: str, body: RejectRequest, engine: EngineDep) -> Any:
    return _out(engine.reject_remediation(ref, body.comment))


@router.post("/remediations/{ref}/answer", tags=["remediations"], response_model=Remediation)
def answer_remediation(ref: str, body: AnswerRequest, engine: EngineDep) -> Any:
    """Answer the manual question the remediation waits on."""
    return _rem(engine.remediations.answer(ref, body.fields, run=body.run))


@router.post("/remediations/{ref}/resume", tags=["remediations"], response_model=Remediation)
def resume_remediation(ref: str, engine: EngineDep) -> Any:
    return _rem(engine.remediations.resume(ref))


@router.post("/remediations/{ref}/cancel", tags=["remediations"], response_model=Remediation)
def cancel_remediation(ref: str, engine: EngineDep) -> Any:
    """Stop a remediation; what it changed is rolled back first."""
    return _rem(engine.remediations.cancel(ref))


@router.post("/remediations/{ref}/rollback", tags=["remediations"], response_model=Remediation)
def rollback_remediation(ref: str, body: RemediationRollbackRequest, engine: EngineDep) -> Any:
    """Roll back everything, one target or some paths, proven by hashes."""
    return _rem(
        engine.remediations.rollback(ref, target=body.target, paths=body.paths, force=body.force)
    )


@router.get(
    "/remediations/{ref}/events",
    tags=["remediations"],
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `timeline` (one per timeline event, its "
            "index as id) and `status` (the remediation's state); the stream ends when "
            "the remediation does. Send `Last-Event-ID` to resume.",
        }
    },
)
async def remediation_events(request: Request, ref: str) -> EventSourceResponse:
    """Live progress of a remediation."""

    server = server_of(request)
    token = bearer_token(request)

    def show() -> Any:
        engine = server.engine(actor=server.authenticate(token))
        try:
            return engine.remediations.show(ref)
        finally:
            server.done(engine)

    first = await run_in_threadpool(show)  # 401/403/404 before the stream starts
    last = request.headers.get("last-event-id", "")
    sent = int(last) + 1 if last.isdecimal() else 0

    async def stream() -> AsyncIterator[ServerSentEvent]:
        nonlocal sent
        info, status = first, None
        while True:
            timeline = info.timeline or []
            for index in range(sent, len(timeline)):
                yield ServerSentEvent(
                    orjson.dumps(_out(timeline[index].to_json())).decode(),
                    event="timeline",
                    id=str(index),
                )
            sent = max(sent, len(timeline))
            if info.status != status:
                status = info.status
                data = {"id": info.id, "status": info.status, "stage": info.stage}
                yield ServerSentEvent(orjson.dumps(data).decode(), event="status")
            if info.status in _ENDED or await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)
            info = await run_in_threadpool(show)

    return EventSourceResponse(stream(), ping=15)


# -- approvals ------------------------------------------------------------------------------
@router.get("/approvals", tags=["approvals"], response_model=list[Approval])
def list_approvals(engine: EngineDep) -> Any:
    """Remediations awaiting approval, with where each stands."""
    return _out(engine.list_approvals())


@router.get("/approvals/{ref}", tags=["approvals"], response_model=Approval)
def show_approval(ref: str, engine: EngineDep) -> Any:
    """One remediation's approval: rules, verdicts, checklist, plan hash."""
    return _out(engine.show_approval(ref))


# -- exceptions ------------------------------------------------------------------------------
def _waiver_id(value: str) -> int:
    if not value.isdecimal() or len(value) > 18:
        raise NotFoundError(f"no exception {value!r}; exception ids are numbers")
    return int(value)


@router.get("/exceptions", tags=["exceptions"], response_model=list[Exception_])
def list_exceptions(
    engine: EngineDep, status: Annotated[str | None, Query(max_length=40)] = None
) -> Any:
    return _out(engine.list_exceptions(status))


@router.post("/exceptions", tags=["exceptions"], response_model=Exception_, status_code=201)
def request_exception(body: ExceptionRequest, engine: EngineDep) -> Any:
    """Ask for a waiver of a finding, or of a rule on an asset or a group."""
    return _out(
        engine.request_exception(
            body.reason,
            body.ticket,
            body.expires,
            finding=body.finding,
            rule=body.rule,
            asset=body.asset,
            group=body.group,
        )
    )


@router.post("/exceptions/{waiver_id}/approve", tags=["exceptions"], response_model=Exception_)
def approve_exception(waiver_id: str, body: CommentRequest, engine: EngineDep) -> Any:
    return _out(engine.approve_exception(_waiver_id(waiver_id), body.comment))


@router.post("/exceptions/{waiver_id}/revoke", tags=["exceptions"], response_model=Exception_)
def revoke_exception(waiver_id: str, body: CommentRequest, engine: EngineDep) -> Any:
    return _out(engine.revoke_exception(_waiver_id(waiver_id), body.comment))


# -- policies ------------------------------------------------------------------------------------
@router.get("/policies", tags=["policies"], response_model=Policies)
def show_policies(engine: EngineDep) -> Any:
    """The workspace's policies (Rego sources), their hash and compile error."""
    return _out(engine.policy_show())


@router.get("/policies/tests", tags=["policies"], response_model=PolicyTests)
def test_policies(engine: EngineDep) -> Any:
    """Run the policies' own test cases."""
    return _out(engine.policy_test())


@router.post("/policies/evaluate", tags=["policies"], response_model=Decision)
def evaluate_policy(body: EvaluateRequest, engine: EngineDep) -> Any:
    """The policy's decision on the given facts (logged with the policy hash)."""
    from jupiter.policy import DECISIONS

    if body.decision not in DECISIONS:
        raise FieldError(
            f"unknown decision {body.decision!r}; use one of: {', '.join(sorted(DECISIONS))}",
            "decision",
        )
    engine.policies.check()
    return _out(engine.decide(body.decision, body.input, "api evaluate").to_json())


# -- audit ----------------------------------------------------------------------------------------
@router.get("/audit/verify", tags=["audit"], response_model=AuditVerify)
def audit_verify(engine: EngineDep) -> Any:
    """Walk the tamper-evident chain and say whether it is intact."""
    return engine.audit_verify().to_json()


@router.get(
    "/audit/export",
    tags=["audit"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One audit entry per line (JSON), oldest first.",
        }
    },
)
def audit_export(engine: EngineDep) -> StreamingResponse:
    """The whole audit trail as a stream of JSON lines."""
    rows = engine.audit_export()
    head = next(rows, None)  # checks the role and opens the read now

    def lines() -> Iterator[bytes]:
        for row in chain([] if head is None else [head], rows):
            yield orjson.dumps(row) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


# -- statistics ------------------------------------------------------------------------------------
@router.get("/stats", tags=["stats"])
def statistics(
    engine: EngineDep,
    since: Annotated[
        str | None, Query(max_length=40, description="A window such as 30d, or a date.")
    ] = None,
    group: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Remediation statistics: success rate, durations, SLA."""
    return dict(_out(engine.statistics(since=since, group=group)))
