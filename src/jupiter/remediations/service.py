"""``engine.remediations``: create, list, show, approve, answer, resume,
cancel and roll back remediations (see docs/workflows.md)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from jupiter import audit
from jupiter.errors import InputError, NotFoundError, UnreachableError
from jupiter.models import Environment
from jupiter.permissions import ScopeKind, requires
from jupiter.remediations import bridges, planning
from jupiter.remediations.context import Ctx, label, subject
from jupiter.remediations.results import CreateResult, EventInfo, RemediationInfo
from jupiter.states import ENDED_REMEDIATION, RemediationState, TargetState, transition
from jupiter.store.tables import (
    AssetRow,
    FindingRow,
    RemediationEventRow,
    RemediationRow,
    RemediationTargetRow,
    utcnow,
)
from jupiter.targets.factory import pooled
from jupiter.workflows.definitions import BlueGreen, Canary, Rolling, Workflow

if TYPE_CHECKING:
    from jupiter.engine import Engine

M, T = RemediationState, TargetState
R = TypeVar("R")
_ENDED = {s.value for s in ENDED_REMEDIATION}
_STRATEGIES = {"rolling": Rolling, "canary": Canary, "blue-green": BlueGreen}


@dataclass
class Decision:
    ok: bool
    reason: str


def parse_ref(ref: str | int) -> int:
    text = str(ref).strip().upper().removeprefix("REM-")
    if not text.isdecimal():
        raise InputError(f"{ref!r} is not a remediation id such as REM-3")
    return int(text)


class Remediations:
    """The remediation workflows of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def actor(self) -> str:
        return self.engine.actor

    def _require(self, action: str, kind: ScopeKind = "none", ref: object = None) -> None:
        self.engine._require(action, kind, ref)

    # -- create -----------------------------------------------------------
    @requires("remediation.create", scope="asset", kind="asset")
    def create(
        self,
        target: str | None = None,
        *,
        asset: str | None = None,
        group: str | None = None,
        only: list[str] | None = None,
        findings: list[int] | None = None,
        batch: bool = False,
        workflow: str | None = None,
        strategy: str | None = None,
        dry_run: bool = False,
        raw_params: list[str] | None = None,
        forks: int | None = None,
    ) -> CreateResult:
        """Plan a remediation on a target, an asset or a group's production
        assets and store it (``planned``); ``dry_run`` stores nothing.
        ``forks`` targets are planned at a time (default: the deploy
        stage's concurrency)."""
        from jupiter.fixing import parse_params_for

        if sum(x is not None for x in (target, asset, group)) != 1:
            raise InputError("name exactly one of TARGET, --asset ID or --group NAME")
        if strategy is not None and strategy not in _STRATEGIES:
            raise InputError(f"unknown strategy {strategy!r}; use rolling, canary or blue-green")
        if batch and not findings and not only:
            raise InputError("--batch needs --finding or --only to say which rule to batch")
        chosen = self._targets(target, asset, group)
        params = parse_params_for(self.engine, raw_params) if raw_params else {}
        wanted, rules, category = self._findings(findings, batch, only)
        wf = self._workflow(workflow, category or (only[0] if only else None), strategy)
        if isinstance(wf.deploy().strategy, BlueGreen):
            from jupiter.remediations.slots import layout_of

            flat = [a for a, _, role in chosen if role == "production"]
            missing = [a for a in flat if layout_of(self.engine, a) is None]
            if missing:
                raise InputError(
                    f"asset {missing[0]!r} declares no blue_green layout, so it cannot be "
                    "deployed blue-green; add `blue_green: {link: current, slots: [blue, green]}` "
                    "or choose another --strategy"
                )
        _check_forks(forks)

        def plan(choice: tuple[str, str, str]) -> planning.PlannedTarget:
            a, conn, role = choice
            if role == "production" and len(chosen) > 1:
                try:
                    return planning.plan_target(
                        self.engine,
                        a,
                        conn,
                        role,
                        only=only,
                        findings=wanted,
                        rules=rules,
                        raw_params=params,
                    )
                except UnreachableError as exc:
                    # One host down does not hold the fleet back: it is
                    # reported unreachable and counts toward max_fail.
                    return planning.PlannedTarget(a, conn, role, unreachable=str(exc))
            return planning.plan_target(
                self.engine,
                a,
                conn,
                role,
                only=only,
                findings=wanted,
                rules=rules,
                raw_params=params,
            )

        with pooled():
            planned = _parallel(plan, chosen, forks or wf.deploy().concurrency)
        prod = [p for p in planned if p.role == "production" and p.steps]
        plan_hash = planning.remediation_hash(planned)
        preview = [
            {
                "asset": p.asset,
                "role": p.role,
                "plan_hash": p.plan_hash,
                "steps": [s.public() for s in p.steps],
                "skipped": p.skipped,
                **({"unreachable": p.unreachable} if p.unreachable else {}),
            }
            for p in planned
        ]
        if prod:
            self._check_health(wf, prod)
        if dry_run or not prod:
            status = "dry_run" if dry_run else "nothing_to_do"
            return CreateResult(None, dry_run, status, plan_hash, preview)
        rem_id = self._store(planned, wf, group, findings or [], plan_hash, params, only, batch)
        return CreateResult(
            self.show(rem_id, timeline=False), False, M.PLANNED.value, plan_hash, preview
        )

    def _check_health(self, wf: Workflow, prod: list[planning.PlannedTarget]) -> None:
        """Refuse, before anything is stored or deployed, a health
        configuration the judge cannot use or a probe that cannot work."""
        from jupiter.store.assets import asset_spec

        with self.engine.db.reading() as s:
            rows = {p.asset: s.get(AssetRow, p.asset) for p in prod}
        targets = [
            (p.asset, p.connection.partition(":")[2], asset_spec(row).probes if row else [])
            for p, row in ((p, rows[p.asset]) for p in prod)
        ]
        bridges.check_health(wf.health, targets)

    def _targets(
        self, target: str | None, asset: str | None, group: str | None
    ) -> list[tuple[str, str, str]]:
        if target is not None:
            opened, asset_id = self.engine._open_target(target, asset)
            opened.close()
            with self.engine.db.reading() as s:
                row = s.get(AssetRow, asset_id)
                assert row is not None and row.connection is not None
                return [(asset_id, row.connection, "production")]
        with self.engine.db.reading() as s:
            if asset is not None:
                row = s.get(AssetRow, asset)
                if row is None:
                    raise NotFoundError(f"no asset {asset!r}; see `jupiter assets list`")
                rows = [row]
            else:
                rows = list(
                    s.scalars(
                        select(AssetRow).where(AssetRow.group_name == group).order_by(AssetRow.id)
                    )
                )
                if not rows:
                    raise NotFoundError(
                        f"no asset is in group {group!r}; set `group:` in assets.yaml and import it"
                    )
        no_conn = [r.id for r in rows if not r.connection]
        if no_conn:
            raise InputError(
                f"asset {no_conn[0]!r} has no connection; set `connection: local:PATH` (or "
                "ssh:...) in assets.yaml"
            )
        if asset is not None:
            return [(rows[0].id, rows[0].connection or "", "production")]
        prod = [r for r in rows if r.environment == Environment.PROD.value]
        if not prod:
            raise InputError(
                f"group {group!r} has no production asset (environment: prod); nothing to deploy to"
            )
        staging = [r for r in rows if r.environment == Environment.STAGING.value]
        return [(r.id, r.connection or "", "production") for r in prod] + [
            (r.id, r.connection or "", "staging") for r in staging
        ]

    def _findings(
        self, ids: list[int] | None, batch: bool, only: list[str] | None
    ) -> tuple[set[int] | None, set[str] | None, str | None]:
        if not ids:
            return None, None, None
        with self.engine.db.reading() as s:
            rows = {i: s.get(FindingRow, i) for i in ids}
        missing = [str(i) for i, r in rows.items() if r is None]
        if missing:
            raise NotFoundError(f"no finding {', '.join(missing)}; see `jupiter findings list`")
        found = [r for r in rows.values() if r is not None]
        rules = {r.rule_id for r in found} if batch else None
        return set(ids), rules, found[0].category

    def _workflow(self, name: str | None, category: str | None, strategy: str | None) -> Workflow:
        home = self.engine.workspace.home
        if name is not None:
            wf = bridges.workflow_named(name, home)
        else:
            wf = bridges.workflow_for_category(category or "default", home)
        if strategy is not None:
            stages = []
            for st in wf.stages:
                if st.kind == "deploy":
                    st = st.model_copy(update={"strategy": _STRATEGIES[strategy]()})
                stages.append(st)
            wf = wf.model_copy(update={"stages": stages})
        return wf

    def _store(
        self,
        planned: list[planning.PlannedTarget],
        wf: Workflow,
        group: str | None,
        findings: list[int],
        plan_hash: str,
        params: dict[str, dict[str, object]],
        only: list[str] | None,
        batch: bool,
    ) -> int:
        from jupiter.keys import KeyStore

        key = KeyStore(self.engine.workspace.home).workspace_key()
        now = utcnow()
        with self.engine.db.transaction() as s:
            rem = RemediationRow(
                status=M.PLANNED.value,
                workflow=wf.name,
                definition=wf.model_dump(mode="json"),
                group_name=group,
                findings=findings,
                params={"only": only, "batch": batch, "params": params},
                plan_hash=plan_hash,
                stage_index=0,
                actor=self.actor,
                facts={},
                reason="",
                due_at=now,
                created_at=now,
                updated_at=now,
            )
            s.add(rem)
            s.flush()
            for p in planned:
                s.add(
                    RemediationTargetRow(
                        remediation_id=rem.id,
                        asset_id=p.asset,
                        role=p.role,
                        status=_initial(p).value,
                        batch=0,
                        connection=p.connection,
                        run_ids=[],
                        plan_sealed=planning.seal_steps(key, rem.id, p.asset, p.steps),
                        plan_hash=p.plan_hash,
                        steps=[st.public() for st in p.steps],
                        snapshot=None,
                        detail=_initial_detail(p),
                    )
                )
            audit.record(
                s,
                self.actor,
                "remediation.created",
                subject(rem.id),
                {
                    "workflow": wf.name,
                    "group": group,
                    "plan_hash": plan_hash,
                    "targets": {p.asset: p.plan_hash for p in planned},
                    "to": M.PLANNED.value,
                },
            )
            return rem.id

    # -- reading ------------------------------------------------------------
    @requires("remediations.read")
    def listing(self, status: str | None = None) -> list[RemediationInfo]:
        with self.engine.db.reading() as s:
            q = select(RemediationRow).order_by(RemediationRow.id.desc())
            if status is not None:
                q = q.where(RemediationRow.status == status)
            rows = list(s.scalars(q))
            return [RemediationInfo.of(r, self._target_rows(s, r.id)) for r in rows]

    @requires("remediations.read")
    def show(self, ref: str | int, timeline: bool = True) -> RemediationInfo:
        rem_id = parse_ref(ref)
        with self.engine.db.reading() as s:
            row = self._get(s, rem_id)
            events = None
            if timeline:
                events = list(
                    s.scalars(
                        select(RemediationEventRow)
                        .where(RemediationEventRow.remediation_id == rem_id)
                        .order_by(RemediationEventRow.id)
                    )
                )
            return RemediationInfo.of(row, self._target_rows(s, rem_id), events)

    def _get(self, s: Any, rem_id: int) -> RemediationRow:
        row = s.get(RemediationRow, rem_id)
        if row is None:
            raise NotFoundError(f"no remediation {label(rem_id)}; see `jupiter remediations list`")
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _target_rows(s: Any, rem_id: int) -> list[RemediationTargetRow]:
        return list(
            s.scalars(
                select(RemediationTargetRow)
                .where(RemediationTargetRow.remediation_id == rem_id)
                .order_by(RemediationTargetRow.role, RemediationTargetRow.asset_id)
            )
        )

    # -- driving ------------------------------------------------------------
    @requires("remediation.deploy")
    def run(
        self,
        ref: str | int,
        progress: Callable[[EventInfo], None] | None = None,
        now: datetime | None = None,
        forks: int | None = None,
    ) -> RemediationInfo:
        """Drive the remediation on as far as it goes now (see :mod:`.runner`);
        ``progress`` sees each timeline event as it is recorded; ``now`` is
        the worker round's clock (windows are judged by it); ``forks``
        bounds the targets deployed at a time (default: the stage's
        ``concurrency``)."""
        from jupiter.remediations.runner import drive

        _check_forks(forks)
        rem_id = parse_ref(ref)
        ctx = Ctx(self.engine, rem_id, self.actor)
        ctx.progress = progress
        ctx.forks = forks
        if now is not None:
            ctx.skew = now - utcnow()
        drive(ctx)
        return self.show(rem_id)

    @requires("remediation.deploy")
    def resume(
        self,
        ref: str | int,
        progress: Callable[[EventInfo], None] | None = None,
        forks: int | None = None,
    ) -> RemediationInfo:
        rem_id = parse_ref(ref)
        info = self.show(rem_id, timeline=False)
        if info.status in _ENDED:
            raise InputError(
                f"{info.id} is {info.status}; only a remediation still under way can be resumed"
            )
        return self.run(rem_id, progress, forks=forks)

    # -- people ------------------------------------------------------------
    def _approval_decision(self, rem: RemediationRow, actor: str) -> Decision:
        """Whether ``actor`` may approve ``rem``. For now any actor may; the
        governance rules (roles, quorum, policy) replace this one method."""
        return Decision(True, f"approved by {actor}")

    @requires("remediation.approve")
    def approve(self, ref: str | int, *, run: bool = True) -> RemediationInfo:
        """Move a remediation past its approval stage. People approve through
        :meth:`jupiter.engine.Engine.approve_remediation` (the CLI's
        ``remediations approve`` and ``approvals approve``), which applies
        the roles, separation of duties and the policy's quorum and calls
        this once they are met."""
        rem_id = parse_ref(ref)
        with self.engine.db.transaction() as s:
            row = self._get(s, rem_id)
            if row.status != M.AWAITING_APPROVAL.value:
                raise InputError(f"{label(rem_id)} is {row.status}, not awaiting_approval")
            decision = self._approval_decision(row, self.actor)
            if not decision.ok:
                raise InputError(f"{label(rem_id)} cannot be approved: {decision.reason}")
            stage = row.definition["stages"][row.stage_index]
            stage_label = stage.get("name") or stage["kind"]
            approval = {"actor": self.actor, "at": utcnow().isoformat(), "reason": decision.reason}
            row.facts = {
                **row.facts,
                "approvals": {**row.facts.get("approvals", {}), stage_label: approval},
            }
            row.due_at = utcnow()
            transition(
                s,
                row,
                M.APPROVED,
                actor=self.actor,
                subject=subject(rem_id),
                facts={"plan_hash": row.plan_hash, **approval},
            )
        return self.run(rem_id) if run else self.show(rem_id)

    @requires("remediation.deploy")
    def answer(
        self, ref: str | int, fields: dict[str, str], *, run: bool = True
    ) -> RemediationInfo:
        """Answer the manual question the remediation waits on; each value is
        checked against its declared type (bool, int, str)."""
        rem_id = parse_ref(ref)
        with self.engine.db.transaction() as s:
            row = self._get(s, rem_id)
            waiting = row.facts.get("waiting")
            if row.status != M.WAITING_MANUAL.value or not waiting:
                raise InputError(f"{label(rem_id)} is {row.status}; it waits for no answer")
            declared: dict[str, str] = waiting["fields"]
            unknown = sorted(set(fields) - set(declared))
            missing = sorted(set(declared) - set(fields))
            if unknown or missing:
                asked = ", ".join(f"{k} ({v})" for k, v in declared.items())
                raise InputError(
                    f"{label(rem_id)} asks for {asked}; give each once with --field NAME=VALUE"
                )
            typed = {k: _typed(k, fields[k], declared[k]) for k in declared}
            row.facts = {
                **row.facts,
                "answers": {**row.facts.get("answers", {}), waiting["stage"]: typed},
                "waiting": None,
            }
            row.due_at = utcnow()
            back = M(waiting.get("resume_state") or M.PLANNED.value)
            if back is M.WAITING_MANUAL:
                back = M.PLANNED
            transition(
                s,
                row,
                back,
                actor=self.actor,
                subject=subject(rem_id),
                action="remediation.answered",
                facts={"stage": waiting["stage"], "answer": typed},
            )
            stop = str(waiting["stage"]).endswith(":inconclusive") and not typed.get("continue")
        if stop:
            from jupiter.remediations.context import Trigger
            from jupiter.remediations.runner import Lease, roll_back_all

            ctx = Ctx(self.engine, rem_id, self.actor)
            with Lease(ctx):
                roll_back_all(ctx, Trigger("a person judged the inconclusive health unfit"))
            return self.show(rem_id)
        return self.run(rem_id) if run else self.show(rem_id)

    @requires("remediation.deploy")
    def cancel(self, ref: str | int) -> RemediationInfo:
        """Stop a remediation; what it already changed is rolled back first."""
        from jupiter.remediations.runner import Lease
        from jupiter.remediations.targets import changed, rollback_target

        rem_id = parse_ref(ref)
        info = self.show(rem_id, timeline=False)
        if info.status in _ENDED:
            raise InputError(f"{info.id} is {info.status}; there is nothing to cancel")
        ctx = Ctx(self.engine, rem_id, self.actor)
        with Lease(ctx):
            results = [rollback_target(ctx, t.id) for t in ctx.targets(None) if changed(t)]
            ok = all(r["ok"] for r in results)
            with ctx.write() as (_, row):
                row.due_at = None
            ctx.move(
                M.CANCELLED if ok else M.FAILED,
                facts={"rolled_back": [r["asset"] for r in results]},
                reason=f"cancelled by {self.actor}",
            )
        return self.show(rem_id)

    @requires("remediation.deploy")
    def rollback(
        self,
        ref: str | int,
        *,
        target: str | None = None,
        paths: list[str] | None = None,
        force: bool = False,
    ) -> RemediationInfo:
        """Roll back what the remediation changed: everything, or one target
        (``target``), or some paths (``paths``), proven by hashes."""
        from jupiter.remediations.runner import Lease
        from jupiter.remediations.targets import changed, rollback_target

        rem_id = parse_ref(ref)
        info = self.show(rem_id, timeline=False)
        ctx = Ctx(self.engine, rem_id, self.actor)
        rows = ctx.targets(None)
        if target is not None:
            rows = [r for r in rows if r.asset_id == target]
            if not rows:
                raise InputError(f"{info.id} has no target {target!r}")
        rows = [r for r in rows if changed(r) or (paths and r.status == T.DEPLOYED.value)]
        if not rows:
            raise InputError(f"{info.id} changed nothing that can be rolled back")
        if paths:
            known = {p for r in rows for st in r.steps for p in st.get("paths", [])}
            unknown: list[str] = sorted(set(paths) - known)
            if unknown:
                raise InputError(
                    f"{info.id} did not change {', '.join(unknown)}; it changed: "
                    f"{', '.join(sorted(known))}"
                )
        with pooled(), Lease(ctx):
            results = [rollback_target(ctx, r.id, paths, force) for r in rows]
            remaining = [t for t in ctx.targets(None) if changed(t)]
            facts = {"manual_rollback": results, "by": self.actor}
            if not remaining and all(r["ok"] for r in results):
                rem = ctx.rem()
                if M.ROLLED_BACK.value != rem.status and rem.status not in (M.CANCELLED.value,):
                    with ctx.write() as (_, row):
                        row.due_at = None
                    ctx.move(M.ROLLED_BACK, facts=facts, reason="rolled back by hand")
            else:
                ctx.audit("remediation.partially_rolled_back", facts)
        return self.show(rem_id)


def _typed(name: str, value: str, kind: str) -> bool | int | str:
    text = value.strip()
    if kind == "bool":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise InputError(f"field {name} must be true or false, not {value!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InputError(f"field {name} must be a whole number, not {value!r}") from None
    return value


def due(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """The worker's part: drive every remediation whose time has come (a
    window opened, a bake or pause ended, a lease whose holder died)."""
    from jupiter.errors import ConflictError
    from jupiter.remediations.runner import _takeable

    waiting = {M.AWAITING_APPROVAL.value, M.WAITING_MANUAL.value, M.TEST_FAILED.value}
    with engine.db.reading() as s:
        rows = list(
            s.scalars(select(RemediationRow).where(RemediationRow.status.not_in(_ENDED | waiting)))
        )
    out: list[dict[str, Any]] = []
    for row in rows:
        due_now = row.due_at is not None and row.due_at <= now
        # A lease whose holder died (kill -9) or expired: take the work over.
        orphaned = row.lease_holder is not None and _takeable(row, now)
        if not (due_now or orphaned):
            continue
        try:
            info = engine.remediations.run(row.id, now=now)
            out.append({"remediation": info.id, "status": info.status})
        except ConflictError as exc:
            out.append({"remediation": label(row.id), "status": row.status, "skipped": str(exc)})
    return out


def _check_forks(forks: int | None) -> None:
    if forks is not None and not 1 <= forks <= 256:
        raise InputError(f"--forks {forks} is out of range; give 1 to 256 targets at a time")


def _parallel(fn: Callable[[Any], R], items: list[Any], forks: int) -> list[R]:
    """``fn`` over ``items``, ``forks`` at a time, results in order (each
    call in a copy of this context, so it shares the connection pool)."""
    if forks <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(forks, len(items))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, i) for i in items]
        return [f.result() for f in futures]


def _initial(p: planning.PlannedTarget) -> TargetState:
    if p.unreachable:
        return T.FAILED
    return T.PENDING if p.steps else T.SKIPPED


def _initial_detail(p: planning.PlannedTarget) -> str:
    if p.unreachable:
        return f"unreachable when planned: {p.unreachable}"
    return "" if p.steps else "nothing to change here"
