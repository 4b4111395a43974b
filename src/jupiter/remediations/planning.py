"""The reviewed plan of every target of a remediation: planned once, at
creation, on each target's current content; stored sealed under the
workspace key (a plan may carry a generated secret, which must never reach
the database, the audit trail or a diff in the clear); applied later,
exactly as reviewed, through the fix runs' one path (:class:`RunExecutor`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from jupiter.errors import JupiterError
from jupiter.plans import Plan
from jupiter.redact import redact

if TYPE_CHECKING:
    from jupiter.engine import Engine
    from jupiter.runs import Candidate
    from jupiter.sealing import WorkspaceKey


@dataclass
class StepPlan:
    """One finding's reviewed plan on one target."""

    finding_id: int | None
    rule_id: str
    remediator: str
    params: dict[str, object]
    plan: dict[str, Any]  # Plan.to_json(), secrets included: sealed at rest

    @property
    def plan_hash(self) -> str:
        return str(self.plan.get("hash") or to_plan(self.plan).plan_hash())

    def to_sealed(self) -> dict[str, Any]:
        return {
            "finding": self.finding_id,
            "rule_id": self.rule_id,
            "remediator": self.remediator,
            "params": self.params,
            "plan": self.plan,
        }

    def public(self) -> dict[str, Any]:
        """What a reviewer sees: redacted, with the plan's hash."""
        return {
            "finding": self.finding_id,
            "rule_id": self.rule_id,
            "remediator": self.remediator,
            "plan_hash": self.plan_hash,
            "title": self.plan.get("title", ""),
            "diff": redact(self.plan.get("diff", "")),
            "paths": sorted(to_plan(self.plan).touched_paths()),
        }


@dataclass
class PlannedTarget:
    asset: str
    connection: str
    role: str  # production | staging
    steps: list[StepPlan] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    # Why the host could not be reached to plan it (then it has no steps;
    # it is stored failed and counts toward max_fail).
    unreachable: str | None = None

    @property
    def plan_hash(self) -> str:
        return digest([s.plan_hash for s in self.steps])

    def paths(self) -> list[str]:
        out: set[str] = set()
        for s in self.steps:
            out.update(to_plan(s.plan).touched_paths())
        return sorted(out)


def digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def remediation_hash(targets: list[PlannedTarget]) -> str:
    """One hash over every target's plans: what a person approves."""
    return digest(sorted((t.asset, t.role, t.plan_hash) for t in targets))


def to_plan(data: dict[str, Any]) -> Plan:
    return Plan.model_validate({k: v for k, v in data.items() if k != "hash"})


def plan_target(
    engine: Engine,
    asset: str,
    connection: str,
    role: str,
    *,
    only: list[str] | None,
    findings: set[int] | None,
    rules: set[str] | None,
    raw_params: dict[str, dict[str, object]],
) -> PlannedTarget:
    """Scan ``asset`` and plan every fixable finding chosen by ``only`` /
    ``findings`` / ``rules``, each on the state the previous plans leave."""
    from jupiter.remediations.slots import files
    from jupiter.runs import plan_chain

    out = PlannedTarget(asset, connection, role)
    with files(engine, asset, connection) as target:
        # A remediation of some rules or categories surveys the target with
        # the remediators that can fix them only (over SSH, each survey costs
        # round trips).
        engine._scan(target, asset, raw_params, only=only)
        unhandled: list[dict[str, Any]] = []
        candidates = engine._candidates(asset, raw_params, only, unhandled)
        if findings is not None and rules is None:
            candidates = [c for c in candidates if c.finding_id in findings]
        if rules is not None:
            candidates = [c for c in candidates if c.record.rule_id in rules]
        for cand, plan in plan_chain(candidates, target):
            if isinstance(plan, JupiterError):
                out.skipped.append(_skip(cand, f"could not plan: {plan}"))
            elif plan.needs_manual:
                out.skipped.append(_skip(cand, plan.needs_manual))
            elif not plan.changes:
                out.skipped.append(_skip(cand, "already fixed"))
            else:
                out.steps.append(
                    StepPlan(
                        cand.finding_id,
                        cand.record.rule_id,
                        cand.remediator.name,
                        raw_params.get(cand.remediator.name, {}),
                        plan.to_json(),
                    )
                )
    return out


def _skip(cand: Candidate, why: str) -> dict[str, Any]:
    return {"finding": cand.finding_id, "rule_id": cand.record.rule_id, "reason": why}


def seal_steps(key: WorkspaceKey, rem_id: int, asset: str, steps: list[StepPlan]) -> bytes:
    data = orjson.dumps([s.to_sealed() for s in steps])
    return key.seal(data, _context(rem_id, asset))


def unseal_steps(key: WorkspaceKey, rem_id: int, asset: str, blob: bytes) -> list[StepPlan]:
    items = orjson.loads(key.unseal(blob, _context(rem_id, asset)))
    return [
        StepPlan(i["finding"], i["rule_id"], i["remediator"], i["params"], i["plan"]) for i in items
    ]


def _context(rem_id: int, asset: str) -> str:
    return f"remediation:{rem_id}/target:{asset}/plan"


def candidates(engine: Engine, steps: list[StepPlan]) -> list[tuple[Candidate, Plan]]:
    """The runs' candidates and reviewed plans for stored steps."""
    from jupiter.runs import Candidate, params_for
    from jupiter.store import findings as finding_repo
    from jupiter.store.tables import FindingRow

    out: list[tuple[Candidate, Plan]] = []
    with engine.db.reading() as s:
        rows = {st.finding_id: s.get(FindingRow, st.finding_id) for st in steps if st.finding_id}
    for st in steps:
        plugin = engine.registry.get(st.remediator)
        row = rows.get(st.finding_id) if st.finding_id is not None else None
        if row is None:
            raise JupiterError(f"finding {st.finding_id} of the plan no longer exists")
        record = finding_repo.row_to_record(row)
        if record.rule_id != st.rule_id:
            record = record.model_copy(update={"rule_id": st.rule_id})
        params = params_for(plugin, {st.remediator: st.params})
        out.append((Candidate(record, st.finding_id, plugin, params), to_plan(st.plan)))
    return out
