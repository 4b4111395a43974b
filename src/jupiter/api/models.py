"""Request and response bodies of the REST API (they make the OpenAPI
document say what each route takes and returns).

Response models declare the fields a client relies on and let through the
rest (``extra="allow"``): the engine's JSON is the truth, these describe it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- meta ----------------------------------------------------------------------
class Health(Out):
    status: Literal["ok"]
    version: str


class Me(Out):
    name: str
    roles: list[str]
    grants: list[str]


# -- assets and findings ---------------------------------------------------------
class Asset(Out):
    id: str
    name: str | None = None
    kind: str | None = None
    environment: str | None = None
    criticality: int | None = None
    owner: str | None = None
    tags: list[str] = []
    group: str | None = None
    connection: str | None = None
    registered: bool | None = None


class Location(Out):
    path: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    package: str | None = None
    version: str | None = None


class FindingSource(Out):
    scanner: str
    rule_id: str
    first_seen: str


class Finding(Out):
    id: int
    fingerprint: str
    asset: str
    rule_id: str
    category: str
    title: str
    severity: str
    cvss_score: float | None = None
    cvss_vector: str | None = None
    aliases: list[str] = []
    cwe: list[str] = []
    fixed_versions: list[str] = []
    location: Location
    evidence: str | None = None
    first_seen: str
    last_seen: str
    status: str
    priority: float
    sources: list[FindingSource] = []


class FindingPage(BaseModel):
    items: list[Finding]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


class IngestedFile(Out):
    path: str
    format: str
    sha256: str


class IngestResult(Out):
    files: list[IngestedFile]
    results: int
    new_findings: int
    existing_findings: int


class ScanRequest(In):
    target: str = Field(
        min_length=1,
        max_length=2000,
        description="Path or connection string (local:PATH, ssh:USER@HOST:PATH) to scan.",
    )
    asset: str | None = Field(None, max_length=200, description="Asset id the target stands for.")


class ScanResult(Out):
    target: str
    asset: str
    detected: int
    new_findings: int
    reopened: list[int] = []
    excepted: list[int] = []
    errors: list[dict[str, Any]] = []


class PlanRequest(In):
    finding: str = Field(min_length=1, max_length=100, description="Finding id or fingerprint.")
    params: list[str] = Field(default=[], description="Remediator parameters as NAME=VALUE.")


class PlanResult(Out):
    finding: int
    remediator: str
    plan: dict[str, Any]


# -- runs (snapshots) ----------------------------------------------------------------
class Run(Out):
    id: int
    kind: str
    status: str
    asset: str | None = None
    target: str
    actor: str
    rollback_of: int | None = None
    summary: dict[str, Any] = {}
    started_at: str
    finished_at: str | None = None


class RunDetail(Run):
    steps: list[dict[str, Any]] = []


class RunRollbackRequest(In):
    paths: list[str] | None = Field(None, description="Only these paths (default: all).")
    force: bool = Field(False, description="Overwrite paths changed since the run.")


class Snapshot(Out):
    snapshot_id: str
    asset: str
    reason: str = ""
    taken_by: str
    taken_at: str
    files: int
    bytes: int
    restored_at: str | None = None
    restored_by: str | None = None


class SnapshotCreate(In):
    asset: str = Field(min_length=1, max_length=200, description="The asset to capture.")
    reason: str = Field("", max_length=4000)


class SnapshotRestore(In):
    paths: list[str] | None = Field(None, description="Only these paths (default: all).")
    reason: str = Field("", max_length=4000)
    dry_run: bool = Field(False, description="List what differs; write nothing.")


class SnapshotRestored(Out):
    snapshot_id: str
    asset: str
    status: str


# -- remediations -------------------------------------------------------------------
class Target(Out):
    asset: str
    role: str
    status: str
    batch: int
    plan_hash: str
    runs: list[int] = []
    rollback_run: int | None = None
    detail: str = ""
    steps: list[dict[str, Any]] = []
    snapshot: str | None = None


class Event(Out):
    stage: str
    name: str
    status: str
    target: str | None = None
    at: str
    duration: float | None = None
    detail: dict[str, Any] = {}


class Remediation(Out):
    id: str
    status: str
    workflow: str
    group: str | None = None
    plan_hash: str
    stage: str | None = None
    stage_index: int
    stages: list[str]
    actor: str
    reason: str
    created_at: str
    updated_at: str
    due_at: str | None = None
    facts: dict[str, Any] = {}
    findings: list[Any] = []
    targets: list[Target] = []
    timeline: list[Event] | None = None


class RemediationCreate(In):
    target: str | None = Field(None, max_length=2000, description="A path or connection.")
    asset: str | None = Field(None, max_length=200)
    group: str | None = Field(None, max_length=200)
    only: list[str] | None = Field(None, description="Only these rule ids.")
    findings: list[int] | None = Field(None, description="Only these finding ids.")
    batch: bool = False
    workflow: str | None = Field(None, max_length=200)
    strategy: Literal["rolling", "canary", "blue-green"] | None = None
    dry_run: bool = False
    params: list[str] | None = Field(None, description="Remediator parameters as NAME=VALUE.")


class CreateResult(Out):
    remediation: Remediation | None = None
    dry_run: bool
    status: str
    plan_hash: str
    targets: list[dict[str, Any]] = []


class ApproveRequest(In):
    plan_hash: str | None = Field(
        None, max_length=200, description="The plan reviewed (default: the current one)."
    )
    comment: str = Field("", max_length=4000)
    run: bool = Field(True, description="Deploy on once the quorum is met (else the worker does).")


class RejectRequest(In):
    comment: str = Field(min_length=1, max_length=4000, description="Why it is rejected.")


class AnswerRequest(In):
    fields: dict[str, str] = Field(description="The answers, one per field the question asks.")
    run: bool = True


class RemediationRollbackRequest(In):
    target: str | None = Field(None, max_length=200, description="Only this target (asset id).")
    paths: list[str] | None = Field(None, description="Only these paths.")
    force: bool = False


class Approval(Out):
    remediation: str
    status: str
    plan_hash: str
    requested_by: str
    outcome: str
    required: int
    approver_roles: list[str] = []
    checklist: list[dict[str, Any]] = []
    reasons: list[str] = []


# -- exceptions ------------------------------------------------------------------------
class Exception_(Out):
    id: int
    scope: str
    finding: int | None = None
    rule_id: str | None = None
    asset: str | None = None
    group: str | None = None
    reason: str
    ticket: str
    status: str
    requested_by: str
    approved_by: str | None = None
    requested_at: str
    expires_at: str


class ExceptionRequest(In):
    reason: str = Field(min_length=1, max_length=4000)
    ticket: str = Field(min_length=1, max_length=200)
    expires: str = Field(
        min_length=1, max_length=40, description="YYYY-MM-DD or a number of days such as 30d."
    )
    finding: str | None = Field(None, max_length=100)
    rule: str | None = Field(None, max_length=200)
    asset: str | None = Field(None, max_length=200)
    group: str | None = Field(None, max_length=200)


class CommentRequest(In):
    comment: str = Field("", max_length=4000)


# -- policies --------------------------------------------------------------------------
class PolicySource(Out):
    name: str
    text: str


class Policies(Out):
    policy_hash: str
    error: str | None = None
    decisions: list[str]
    sources: list[PolicySource]


class EvaluateRequest(In):
    decision: str = Field(min_length=1, max_length=100, description="priority, remediation, ...")
    input: dict[str, Any] = Field(description="The facts the decision is asked about.")


class Decision(Out):
    decision: str
    result: Any = None
    policy_hash: str
    error: str | None = None


class PolicyTests(Out):
    policy_hash: str
    passed: int
    failed: int
    cases: list[dict[str, Any]] = []


# -- audit -------------------------------------------------------------------------------
class AuditVerify(Out):
    ok: bool
    entries: int
    first_bad_entry: int | None = None
    problem: str = ""
