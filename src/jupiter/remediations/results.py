"""Typed results of the remediation service (each with ``to_json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupiter.store.tables import RemediationEventRow, RemediationRow, RemediationTargetRow


@dataclass
class TargetInfo:
    asset: str
    role: str
    status: str
    batch: int
    plan_hash: str
    runs: list[int]
    rollback_run: int | None
    detail: str
    steps: list[dict[str, Any]]
    snapshot: str | None

    @classmethod
    def of(cls, row: RemediationTargetRow) -> TargetInfo:
        return cls(
            asset=row.asset_id,
            role=row.role,
            status=row.status,
            batch=row.batch,
            plan_hash=row.plan_hash,
            runs=list(row.run_ids),
            rollback_run=row.rollback_run_id,
            detail=row.detail,
            steps=list(row.steps),
            snapshot=(row.snapshot or {}).get("id"),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EventInfo:
    stage: str
    name: str
    status: str
    target: str | None
    at: str
    duration: float | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: RemediationEventRow) -> EventInfo:
        return cls(
            row.stage,
            row.name,
            row.status,
            row.target,
            row.started_at.isoformat(),
            row.duration,
            dict(row.detail),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RemediationInfo:
    id: str
    status: str
    workflow: str
    group: str | None
    plan_hash: str
    stage: str | None
    stage_index: int
    stages: list[str]
    actor: str
    reason: str
    created_at: str
    updated_at: str
    due_at: str | None
    facts: dict[str, Any]
    findings: list[Any]
    targets: list[TargetInfo] = field(default_factory=list)
    timeline: list[EventInfo] | None = None

    @classmethod
    def of(
        cls,
        row: RemediationRow,
        targets: list[RemediationTargetRow],
        events: list[RemediationEventRow] | None = None,
    ) -> RemediationInfo:
        stages = [s.get("name") or s["kind"] for s in row.definition.get("stages", [])]
        facts = {k: v for k, v in row.facts.items() if k != "baseline"}
        return cls(
            id=f"REM-{row.id}",
            status=row.status,
            workflow=row.workflow,
            group=row.group_name,
            plan_hash=row.plan_hash,
            stage=stages[row.stage_index] if row.stage_index < len(stages) else None,
            stage_index=row.stage_index,
            stages=stages,
            actor=row.actor,
            reason=row.reason,
            created_at=row.created_at.isoformat(),
            updated_at=row.updated_at.isoformat(),
            due_at=row.due_at.isoformat() if row.due_at else None,
            facts=facts,
            findings=list(row.findings),
            targets=[TargetInfo.of(t) for t in targets],
            timeline=None if events is None else [EventInfo.of(e) for e in events],
        )

    @property
    def result(self) -> dict[str, Any] | None:
        """The seed's result shape after a rollback (status, reason, ...)."""
        res = self.facts.get("result")
        return dict(res) if isinstance(res, dict) else None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("targets", "timeline")}
        out["targets"] = [t.to_json() for t in self.targets]
        if self.timeline is not None:
            out["timeline"] = [e.to_json() for e in self.timeline]
        return out


@dataclass
class CreateResult:
    """``remediate``: the remediation made (or, with dry_run, what it would be)."""

    remediation: RemediationInfo | None
    dry_run: bool
    status: str
    plan_hash: str
    targets: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "remediation": self.remediation.to_json() if self.remediation else None,
            "dry_run": self.dry_run,
            "status": self.status,
            "plan_hash": self.plan_hash,
            "targets": self.targets,
        }
