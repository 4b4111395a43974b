"""SQLAlchemy 2.0 typed tables. Schema changes go through Alembic migrations
(``store/migrations``); a test checks the models and the migrations agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: UTCDateTime}


class AssetRow(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    criticality: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSON)
    group_name: Mapped[str | None] = mapped_column(String(200), index=True)
    connection: Mapped[str | None] = mapped_column(String(1000))
    registered: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the remediation workflows read (probes, tests, blue_green, window).
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    cvss_score: Mapped[float | None] = mapped_column(Float)
    cvss_vector: Mapped[str | None] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(JSON)
    cwe: Mapped[list[str]] = mapped_column(JSON)
    fixed_versions: Mapped[list[str]] = mapped_column(JSON)
    path: Mapped[str | None] = mapped_column(Text)
    start_line: Mapped[int | None] = mapped_column(Integer)
    end_line: Mapped[int | None] = mapped_column(Integer)
    package: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))
    evidence: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
    identity: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[float] = mapped_column(Float, index=True)


class FindingSourceRow(Base):
    """One scanner (and rule) that reported a finding."""

    __tablename__ = "finding_sources"
    __table_args__ = (UniqueConstraint("finding_id", "scanner", "rule_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No index of its own: the unique constraint's index leads with finding_id.
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    scanner: Mapped[str] = mapped_column(String(100))
    rule_id: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class AuditRow(Base):
    """One link of the tamper-evident audit chain (see ``jupiter.audit``)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The newest link, updated with every append: lets ``verify`` notice a
    truncated tail and serialises concurrent appenders (row lock)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class WorkspaceInfoRow(Base):
    """Facts about the workspace itself (one row, ``id == 1``): its random
    ``workspace_id`` names it in signed audit checkpoints, so a checkpoint of
    one workspace is never taken for another's."""

    __tablename__ = "workspace_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    workspace_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # fix | rollback
    status: Mapped[str] = mapped_column(String(24), index=True)
    asset_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id"))
    target: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    rollback_of: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    # The process running it: `jupiter runs recover` refuses a run whose
    # process is still alive on its host.
    holder_host: Mapped[str | None] = mapped_column(String(255))
    holder_pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class RunStepRow(Base):
    """One finding's walk through a run: plan → snapshot → validate → apply → verify."""

    __tablename__ = "run_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id"))
    remediator: Mapped[str] = mapped_column(String(100))
    rule_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan_hash: Mapped[str] = mapped_column(String(64))
    validations: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    output: Mapped[str] = mapped_column(Text, default="")
    commit: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class SnapshotEntryRow(Base):
    """Manifest of what a step's paths were before it changed them
    (``phase`` "before") and what it left them as ("after", so a rollback can
    tell whether someone changed them since)."""

    __tablename__ = "snapshot_entries"
    __table_args__ = (UniqueConstraint("step_id", "phase", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("run_steps.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(8), default="before")
    path: Mapped[str] = mapped_column(Text)
    existed: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str | None] = mapped_column(String(16))
    mode: Mapped[int | None] = mapped_column(Integer)
    uid: Mapped[int | None] = mapped_column(Integer)
    gid: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))


class TargetLeaseRow(Base):
    """Who holds a target's exclusive lock (see ``jupiter.locks``): one row
    per locked target, kept alive by heartbeats; a row whose lease expired
    (or whose process is gone) may be taken over, with an audit entry."""

    __tablename__ = "target_leases"

    target: Mapped[str] = mapped_column(String(1000), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32))  # fix | rollback | recover | deploy
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]


# -- governance: identities, policy decisions, exceptions, compliance -------


class UserRow(Base):
    """Someone (or some service) who acts on the workspace."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class RoleGrantRow(Base):
    """A role held by a user, for the whole workspace or scoped to an asset
    group and/or environment."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    group_name: Mapped[str | None] = mapped_column(String(200))
    environment: Mapped[str | None] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime]


class ApiTokenRow(Base):
    """An API token: only its argon2 hash is kept (the secret is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class PolicyDecisionRow(Base):
    """The decision log: every policy decision with its input, the policy
    version (hash) and the result, so it can be replayed."""

    __tablename__ = "policy_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decided_at: Mapped[datetime]
    query: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    policy_hash: Mapped[str] = mapped_column(String(64))
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class WaiverRow(Base):
    """A policy exception (waiver): a finding, a rule on an asset or a rule
    on a group is accepted as is until ``expires_at``."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))  # finding | rule_asset | rule_group
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    rule_id: Mapped[str | None] = mapped_column(String(200))
    asset_id: Mapped[str | None] = mapped_column(String(200))
    group_name: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    ticket: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]


class ComplianceResultRow(Base):
    """One evaluation of one control on one asset."""

    __tablename__ = "compliance_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    control_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # pass | fail | excepted
    findings: Mapped[list[str]] = mapped_column(JSON)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    evaluated_at: Mapped[datetime]


class RemediationRow(Base):
    """One reviewed change across an asset group (``REM-<id>``): the
    workflow it follows (a frozen copy), where it stands, and who drives it
    (a lease kept alive by heartbeats; a dead holder's lease is taken over)."""

    __tablename__ = "remediations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    workflow: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    group_name: Mapped[str | None] = mapped_column(String(200))
    findings: Mapped[list[Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan_hash: Mapped[str] = mapped_column(String(64))
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(200))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    lease_holder: Mapped[str | None] = mapped_column(String(300))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the worker should look again (bake or pause over, window open).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RemediationTargetRow(Base):
    """One asset of a remediation: its role, batch, state, the fix and
    rollback runs, and its reviewed plan — sealed under the workspace key
    (a plan may carry a generated secret), with its hash in the clear."""

    __tablename__ = "remediation_targets"
    __table_args__ = (UniqueConstraint("remediation_id", "asset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    remediation_id: Mapped[int] = mapped_column(
        ForeignKey("remediations.id", ondelete="CASCADE"), index=True
    )
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    role: Mapped[str] = mapped_column(String(16))  # production | staging
    status: Mapped[str] = mapped_column(String(24))
    batch: Mapped[int] = mapped_column(Integer, default=0)
    connection: Mapped[str] = mapped_column(String(1000))
    fix_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    rollback_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    run_ids: Mapped[list[Any]] = mapped_column(JSON)
    plan_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    plan_hash: Mapped[str] = mapped_column(String(64))
    # The reviewable (redacted) steps: finding, rule, remediator, plan hash, diff.
    steps: Mapped[list[Any]] = mapped_column(JSON)
    # The rollback point: path -> sha256 (None: absent) before anything ran.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None]


class RemediationEventRow(Base):
    """The timeline of a remediation: each stage, target and check, with
    when it started, ended and how long it took."""

    __tablename__ = "remediation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    remediation_id: Mapped[int] = mapped_column(
        ForeignKey("remediations.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(24))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration: Mapped[float | None] = mapped_column(Float)


class ScheduleRow(Base):
    """Continuous detection: scan an asset or a group, or run the team's
    scanner and ingest its report, every N seconds or on a cron expression
    (see ``jupiter.schedules``). ``next_run_at`` is claimed by the worker
    that runs it, so two workers never run one schedule twice."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id"))
    group_name: Mapped[str | None] = mapped_column(String(200))
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    cron: Mapped[str | None] = mapped_column(String(200))
    zone: Mapped[str] = mapped_column(String(64), default="UTC")
    scan: Mapped[bool] = mapped_column(Boolean)
    ingest_argv: Mapped[list[str] | None] = mapped_column(JSON)
    ingest_format: Mapped[str] = mapped_column(String(32), default="auto")
    timeout: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_run_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    runs: Mapped[int] = mapped_column(Integer, default=0)


class OutboxRow(Base):
    """One event to deliver to one channel (see ``jupiter.integrations``):
    written in the transaction of the audit entry that raised it, delivered
    at least once by the dispatcher. ``key`` (audit seq, event, channel) is
    the idempotency key receivers see on every attempt. Holds the channel's
    name only, never its URL or token."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    audit_seq: Mapped[int] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claim: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class PullRequestRow(Base):
    """One pull/merge request Jupiter delivered (see :mod:`jupiter.pull_requests`),
    keyed by forge, repository and grouping key, so a re-run updates it
    instead of opening another. ``state``: open | declined (closed unmerged:
    not reopened while ``fingerprints`` stay the same) | merged | obsolete
    (closed by Jupiter: the findings went away by other means). Never holds
    a token."""

    __tablename__ = "pull_requests"
    __table_args__ = (UniqueConstraint("forge", "repo", "group_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    forge: Mapped[str] = mapped_column(String(16))
    repo: Mapped[str] = mapped_column(String(300))
    group_key: Mapped[str] = mapped_column(String(500))
    branch: Mapped[str] = mapped_column(String(255))
    base_branch: Mapped[str] = mapped_column(String(255))
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    fingerprints: Mapped[list[str]] = mapped_column(JSON)
    finding_ids: Mapped[list[Any]] = mapped_column(JSON)
    head_sha: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    remediation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    ci_status: Mapped[str | None] = mapped_column(String(16))
    ci_detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    checked_at: Mapped[datetime | None]


class RollbackPointRow(Base):
    """A rollback point of one asset (``SNAP-YYYY-MM-DD-NNN``): the manifest
    of every regular file under its root, blobs by sha256 in the workspace
    (see ``jupiter.rollback_points``)."""

    __tablename__ = "rollback_points"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    connection: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    entries: Mapped[list[Any]] = mapped_column(JSON)
    files: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime]
    restored_at: Mapped[datetime | None]
    restored_by: Mapped[str | None] = mapped_column(String(200))


class CopilotSessionRow(Base):
    """What one copilot session of one user last touched (asset, rollback
    point, remediation, finding), so a follow-up query may name nothing."""

    __tablename__ = "copilot_sessions"

    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
