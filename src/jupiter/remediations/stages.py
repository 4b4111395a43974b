"""The stages a remediation walks, as registered objects: each kind has a
``run(ctx, stage)`` that returns whether the runner goes on (``NEXT``) or
waits for a person, a window or the worker (``WAIT``), and declares its
compensation beside it — what undoes its effect when a later stage triggers
a rollback. Every ``run`` may be entered again after a crash: it reads what
is already done from the store and does only the rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Any, ClassVar

from jupiter.errors import UnreachableError
from jupiter.remediations import bridges, deploy, health
from jupiter.remediations.context import Ctx, Stop, Trigger
from jupiter.remediations.slots import files
from jupiter.states import RemediationState, TargetState
from jupiter.store.tables import utcnow
from jupiter.workflows import definitions as d

M, T = RemediationState, TargetState


class Next(Enum):
    NEXT = "next"
    WAIT = "wait"


NEXT, WAIT = Next.NEXT, Next.WAIT


class StageKind:
    """One kind of stage. ``compensation`` names what undoes it."""

    kind: ClassVar[str]
    compensation: ClassVar[str] = "nothing to undo"

    def run(self, ctx: Ctx, stage: Any) -> Next:  # pragma: no cover - interface
        raise NotImplementedError


REGISTRY: dict[str, StageKind] = {}


def register(cls: type[StageKind]) -> type[StageKind]:
    REGISTRY[cls.kind] = cls()
    return cls


def stage_kind(kind: str) -> StageKind:
    return REGISTRY[kind]


@register
class Snapshot(StageKind):
    """Record the rollback point: every path any plan touches, per target."""

    kind = "snapshot"
    compensation = "nothing: the snapshot is what the others are undone to"

    def run(self, ctx: Ctx, stage: d.SnapshotStage) -> Next:
        from jupiter.remediations.planning import to_plan
        from jupiter.snapshots import BlobStore, capture

        blobs = BlobStore(ctx.engine.workspace.blobs)

        def take(trow: Any) -> None:
            started = time.monotonic()
            paths = sorted({p for st in ctx.steps(trow) for p in to_plan(st.plan).touched_paths()})
            try:
                with files(ctx.engine, trow.asset_id, trow.connection) as target:
                    entries = capture(target, paths, blobs)
            except UnreachableError as exc:
                _unreachable(ctx, stage.label, trow.id, started, exc)
                return
            snap = {
                "id": f"SNAP-{ctx.label}-{trow.asset_id}",
                "entries": [e.to_dict() for e in entries],
                "taken_at": utcnow().isoformat(),
            }
            with ctx.db.transaction() as s:
                ctx.target(s, trow.id).snapshot = snap
                ctx.event(
                    stage.label,
                    "snapshot",
                    "ok",
                    target=trow.asset_id,
                    started=started,
                    detail={"id": snap["id"], "paths": paths},
                    s=s,
                )

        todo = [
            trow
            for trow in ctx.targets(None)
            if trow.snapshot is None and trow.status not in (T.SKIPPED.value, T.FAILED.value)
        ]
        ctx.fan_out(take, todo)
        ctx.set_facts(rollback_snapshot=f"SNAP-{ctx.label}")
        return NEXT


def _unreachable(ctx: Ctx, stage: str, tid: int, started: float, exc: Exception) -> None:
    """A production target the snapshot cannot reach: reported ``unreachable``
    and failed (it counts toward ``max_fail``); the rest go on. A staging
    target cannot be skipped like that."""
    with ctx.db.transaction() as s:
        trow = ctx.target(s, tid)
        if trow.role != "production":
            raise exc
        detail = f"unreachable: {exc}"
        ctx.move_target(s, trow, T.FAILED, detail=detail, facts={"unreachable": True})
        ctx.event(
            stage,
            "snapshot",
            "unreachable",
            target=trow.asset_id,
            started=started,
            detail={"error": str(exc)},
            s=s,
        )


@register
class Test(StageKind):
    """Apply the plans in staging (or a throw-away copy) and run the checks."""

    kind = "test"
    compensation = "the staging test undoes its own changes (rollback rehearsal)"

    def run(self, ctx: Ctx, stage: d.TestStage) -> Next:
        tested = ctx.rem().facts.get("test")
        if tested is not None:
            return NEXT if tested.get("ready_for_production") else WAIT
        ctx.move(M.TESTING)
        started = time.monotonic()
        result = staging_test(ctx, stage)
        ready = bool(result.get("ready_for_production"))
        ctx.event(stage.label, "test", "ok" if ready else "failed", started=started, detail=result)
        ctx.set_facts(test=result, **checklist_facts(result))
        if not ready:
            raise Stop(M.TEST_FAILED, "the staging test failed; see `jupiter remediations show`")
        ctx.move(M.TESTED, facts={"tests_run": result.get("tests_run")})
        return NEXT


def checklist_facts(result: dict[str, Any]) -> dict[str, bool]:
    """What the staging test measured for the approval checklist: the
    rollback rehearsal, and performance (its health check). A check that was
    skipped measured nothing and adds no fact."""
    out: dict[str, bool] = {}
    for check in result.get("checks") or []:
        outcome = check.get("outcome")
        if outcome not in ("passed", "failed"):
            continue
        key = {"rollback_rehearsal": "rollback_rehearsed", "health": "performance_ok"}.get(
            check.get("name", "")
        )
        if key is not None:
            # Several staging targets: every one must have passed.
            out[key] = out.get(key, True) and outcome == "passed"
    return out


def staging_test(ctx: Ctx, stage: d.TestStage) -> dict[str, Any]:
    """The staging test (:mod:`jupiter.workflows.staging`), called in one
    place: the group's staging assets (or a throw-away copy of a production
    target) get the remediation's rules with its parameters."""
    rem = ctx.rem()
    stored = rem.params or {}
    result = bridges.run_staging_test(
        engine=ctx.engine,
        production_assets=[t.asset_id for t in ctx.targets("production")],
        staging_assets=[t.asset_id for t in ctx.targets("staging")],
        finding_rules=_test_rules(ctx, rem.findings, stored.get("only")),
        raw_params=stored.get("params") or {},
        checks=list(stage.checks),
        health=ctx.workflow.health,
        timeout=stage.timeout,
        subject=ctx.subject,
    )
    to_json: Callable[[], dict[str, Any]] | None = getattr(result, "to_json", None)
    return to_json() if to_json is not None else dict(result)


def _test_rules(ctx: Ctx, findings: list[Any], only: list[str] | None) -> list[str] | None:
    """What the staging test fixes: the rules of the remediation's chosen
    findings (their ids are production's), else its ``--only``, else all."""
    if findings:
        from jupiter.store.tables import FindingRow

        with ctx.db.reading() as s:
            rows = [s.get(FindingRow, int(f)) for f in findings]
        return sorted({r.rule_id for r in rows if r is not None})
    return list(only) if only else None


@register
class Approval(StageKind):
    """Wait for `jupiter remediations approve` (its decision is swappable)."""

    kind = "approval"

    def run(self, ctx: Ctx, stage: d.ApprovalStage) -> Next:
        if stage.label in ctx.rem().facts.get("approvals", {}):
            return NEXT
        ctx.move(M.AWAITING_APPROVAL, facts={"stage": stage.label})
        return WAIT


@register
class Manual(StageKind):
    """Wait for a person's typed answer; an answer other than ``expect`` stops."""

    kind = "manual"

    def run(self, ctx: Ctx, stage: d.ManualStage) -> Next:
        rem = ctx.rem()
        answer = rem.facts.get("answers", {}).get(stage.label)
        if answer is None:
            if rem.status == M.WAITING_MANUAL.value:
                return WAIT
            waiting = {
                "stage": stage.label,
                "question": stage.question,
                "fields": stage.fields,
                "resume_state": rem.status,
            }
            with ctx.write() as (_, row):
                row.facts = {**row.facts, "waiting": waiting}
            ctx.move(M.WAITING_MANUAL, facts={"question": stage.question})
            return WAIT
        wrong = {k: v for k, v in stage.expect.items() if answer.get(k) != v}
        if wrong:
            reason = f"manual check '{stage.label}' answered {answer}, expected {stage.expect}"
            if any(t.status != T.PENDING.value for t in ctx.targets("production")):
                raise Trigger(reason, measured={"answer": answer, "expect": stage.expect})
            raise Stop(M.FAILED, reason)
        return NEXT


@register
class Deploy(StageKind):
    kind = "deploy"
    compensation = "roll back every changed target from its snapshot, proven by hashes"

    def run(self, ctx: Ctx, stage: d.DeployStage | d.MitigateStage) -> Next:
        rows = ctx.targets("production")
        window = getattr(stage, "window", None) or ctx.workflow.window or asset_window(ctx, rows)
        untouched = all(r.status in (T.PENDING.value, T.SKIPPED.value) for r in rows)
        if window and untouched:
            when = bridges.next_open(window, ctx.now())
            if when is not None:
                rem = ctx.rem()
                if rem.status in (M.PLANNED.value, M.TESTED.value):
                    ctx.move(M.APPROVED, facts={"waiting_for_window": window})
                with ctx.write() as (_, row):
                    row.due_at = when
                    row.facts = {**row.facts, "window": {"window": window, "opens": str(when)}}
                ctx.event(stage.label, "window", "waiting", detail={"opens": when.isoformat()})
                return WAIT
        ctx.set_due(None)
        ctx.move(M.DEPLOYING)
        if isinstance(stage, d.DeployStage) and stage.deliver == "pull_request":
            from jupiter.remediations.pull_request import deliver_stage

            # Merging the request is the deployment; the worker's poll ends it.
            return NEXT if deliver_stage(ctx, stage) else WAIT
        deploy.run(ctx, stage)
        return NEXT


def asset_window(ctx: Ctx, rows: list[Any]) -> str | None:
    """The production assets' own window (``window:`` in assets.yaml), when
    they agree on one; assets with different windows cannot share a deploy."""
    from jupiter.errors import InputError
    from jupiter.store.tables import AssetRow

    with ctx.db.reading() as s:
        found = {
            ((a.settings or {}).get("window") if a is not None else None)
            for a in (s.get(AssetRow, r.asset_id) for r in rows)
        }
    found.discard(None)
    if len(found) > 1:
        raise InputError(
            f"the assets of {ctx.label} have different maintenance windows "
            f"({', '.join(sorted(str(w) for w in found))}); set one window on the workflow"
        )
    return next(iter(found), None)


@register
class Mitigate(Deploy):
    kind = "mitigate"


@register
class Verify(StageKind):
    """Detect again on every deployed target: each finding must be gone."""

    kind = "verify"

    def run(self, ctx: Ctx, stage: d.VerifyStage) -> Next:
        from jupiter.remediations.planning import candidates
        from jupiter.remediations.targets import done_steps

        ctx.move(M.VERIFYING)

        def redetect(trow: Any) -> list[str]:
            started = time.monotonic()
            steps = ctx.steps(trow)
            if trow.status == T.DEPLOYING.value:
                # After a mitigation: only what it applied so far.
                done = done_steps(ctx, trow.asset_id)
                steps = [st for st in steps if (st.finding_id, st.rule_id) in done]
            with files(ctx.engine, trow.asset_id, trow.connection) as target:
                still = [
                    c.record.rule_id
                    for c, _ in candidates(ctx.engine, steps)
                    if not c.remediator.is_fixed(c.record, target, c.params)
                ]
            ctx.event(
                stage.label,
                "re-detect",
                "failed" if still else "ok",
                target=trow.asset_id,
                started=started,
                detail={"still_detected": still},
            )
            return still

        rows = [
            trow
            for trow in ctx.targets("production")
            if trow.status in (T.DEPLOYED.value, T.DEPLOYING.value)
        ]
        # Every target is re-detected (``--forks`` at a time); the first one
        # (by asset) whose finding is still there triggers the rollback.
        for trow, still in zip(rows, ctx.fan_out(redetect, rows), strict=True):
            if still:
                raise Trigger(
                    "Validation tests failed after deployment",
                    target=trow.asset_id,
                    measured={"still_detected": still},
                )
        return NEXT


@register
class Health(StageKind):
    """Sample the probes of the changed targets and judge them against the baseline."""

    kind = "health"

    def run(self, ctx: Ctx, stage: d.HealthStage) -> Next:
        ctx.move(M.VERIFYING)
        answers = ctx.rem().facts.get("answers", {})
        if answers.get(f"{stage.label}:inconclusive", {}).get("continue") is True:
            return NEXT  # a person looked at the inconclusive verdict and said go on
        rows = [r for r in ctx.targets("production") if r.status == T.DEPLOYED.value]
        if not health.has_probes(ctx, rows):
            ctx.event(stage.label, "health", "skipped", detail={"reason": "no probes"})
            return NEXT
        cfg = ctx.workflow.health
        if stage.samples:
            cfg = cfg.model_copy(update={"samples": stage.samples})
        started = time.monotonic()
        verdict = health.watch(ctx, rows, [], cfg.samples * cfg.interval, cfg)
        ctx.event(stage.label, "health", verdict.status, started=started, detail=verdict.to_json())
        if verdict.status == "fail":
            raise Trigger(verdict.reason, target=verdict.target, measured=verdict.measured)
        if verdict.status == "inconclusive":
            raise deploy.Inconclusive(verdict.reason, verdict.to_json())
        return NEXT


@register
class Notify(StageKind):
    """Emit an event (an audit entry ``event.<name>``; delivery comes later)."""

    kind = "notify"

    def run(self, ctx: Ctx, stage: d.NotifyStage) -> Next:
        rem = ctx.rem()
        ctx.audit(
            f"event.{stage.event}",
            {"status": rem.status, "plan_hash": rem.plan_hash, "workflow": rem.workflow},
        )
        ctx.event(stage.label, stage.event, "sent")
        return NEXT
