"""Running fixes and rollbacks: the durable walk of each finding through
plan → validate → snapshot → apply → verify, with automatic rollback.

The database row is the truth: each stage is committed *before* its side
effect starts (intent) and *after* it ends (outcome), each with its audit
entry. A step whose fix fails validation never touches the target; one that
fails to apply or to verify is restored from its snapshot at once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.applying import (
    CommandFailed,
    PartlyApplied,
    apply_plan,
    check_preconditions,
    outputs_text,
    still_applies,
)
from jupiter.errors import (
    ConflictError,
    HardLinkRefused,
    InputError,
    JupiterError,
    TargetError,
)
from jupiter.faults import checkpoint
from jupiter.git_delivery import GitDelivery, commit_message
from jupiter.models import FindingRecord, FindingStatus
from jupiter.plans import GenerateKey, Plan, RemoveFile, RunCommand
from jupiter.plugins.base import AnyRemediator
from jupiter.plugins.registry import Registry
from jupiter.preconditions import (
    MAX_ATTEMPTS,
    backoff,
    undo_expectations,
    with_basis,
)
from jupiter.redact import redact
from jupiter.snapshots import (
    BlobStore,
    ManifestEntry,
    capture,
    capture_tree,
    restore,
    verify_restored,
)
from jupiter.states import RunState, transition
from jupiter.states import StepState as S
from jupiter.store.db import Database
from jupiter.store.tables import FindingRow, RunRow, RunStepRow, SnapshotEntryRow, utcnow
from jupiter.targets.base import Target, TargetView, hard_link_refusal, normalise_relpath
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView

if TYPE_CHECKING:
    from jupiter.locks import TargetLock

# Step states (a step only moves forward: see jupiter.states).
PLANNED, APPLYING, VERIFIED, FAILED = S.PLANNED, S.APPLYING, S.VERIFIED, S.FAILED
ROLLED_BACK, NEEDS_MANUAL, ALREADY_FIXED = S.ROLLED_BACK, S.NEEDS_MANUAL, S.ALREADY_FIXED
# The target changed under the step and re-planning could not catch up (or
# would change the reviewed edit): nothing of the fix is on the target.
CONFLICT = S.CONFLICT


@dataclass
class StepResult:
    finding_id: int | None
    rule_id: str
    remediator: str
    status: S
    detail: str = ""
    diff: str = ""
    validations: list[dict[str, str]] = field(default_factory=list)
    risk: dict[str, Any] = field(default_factory=dict)
    step_id: int | None = None
    output: str = ""
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "finding": self.finding_id,
            "rule_id": self.rule_id,
            "remediator": self.remediator,
            "status": self.status,
            "detail": self.detail,
            "validations": self.validations,
            "risk": self.risk,
            "diff": self.diff,
            "output": self.output,
            "commit": self.commit,
        }


@dataclass
class Candidate:
    """A finding the run will try to fix, with the plugin that handles it."""

    record: FindingRecord
    finding_id: int | None
    remediator: AnyRemediator
    params: BaseModel


def parse_params(registry: Registry, raw: list[str]) -> dict[str, dict[str, object]]:
    """``REMEDIATOR.KEY=VALUE`` strings → per-remediator parameter dicts."""
    out: dict[str, dict[str, object]] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        name, dot, field_name = key.partition(".")
        if not sep or not dot or not field_name:
            raise InputError(
                f"parameter {item!r} is not REMEDIATOR.KEY=VALUE "
                "(e.g. sshd-hardening.level=baseline)"
            )
        registry.get(name)
        parsed: object = value
        if "," in value:
            parsed = [v.strip() for v in value.split(",") if v.strip()]
        out.setdefault(name, {})[field_name] = parsed
    return out


def params_for(plugin: AnyRemediator, raw: dict[str, dict[str, object]]) -> Any:
    try:
        return plugin.parse_params(raw.get(plugin.name))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(parameters)"
        raise InputError(
            f"remediator {plugin.name}, parameter {loc}: {err['msg']}; see "
            "`jupiter remediators list --json` for its parameters"
        ) from None


def make_plan(cand: Candidate, view: TargetView) -> Plan:
    """Ask the plugin for a plan and refuse one that leaves the target root."""
    plan = cand.remediator.plan(cand.record, view, cand.params)
    for change in plan.changes:
        if not isinstance(change, RunCommand):
            normalise_relpath(change.path)
    linked = hard_linked(plan, view)
    if linked and not plan.needs_manual:
        return plan.model_copy(update={"needs_manual": linked})
    return plan


def hard_linked(plan: Plan, view: TargetView) -> str | None:
    """Why ``plan`` must not be applied because it would change a file that
    has other hard links (its mode, owner or content would reach them, and
    they may lie outside the target), or ``None``. Removing a name is fine:
    the other names keep the file. Targets that cannot count links cheaply
    (SSH) refuse at apply time instead (:class:`HardLinkRefused`)."""
    paths: list[str] = []
    for change in plan.changes:
        if isinstance(change, RunCommand):
            paths.extend(change.paths)  # a command may rewrite them in place
        elif not isinstance(change, RemoveFile):
            paths.append(change.path)
    for path in dict.fromkeys(paths):
        state = view.stat(path)
        if state is not None and state.kind != "dir" and (state.nlink or 1) > 1:
            return str(hard_link_refusal(path, "the target", state.nlink or 1, "changing"))
    return None


def plan_chain(
    candidates: list[Candidate], view: TargetView
) -> list[tuple[Candidate, Plan | JupiterError]]:
    """Plan every candidate in order, each on the state the previous plans
    leave behind (what a real run would do), without touching the target.
    A candidate that cannot be planned carries its error instead."""
    out: list[tuple[Candidate, Plan | JupiterError]] = []
    current: TargetView = view
    for cand in candidates:
        try:
            plan = make_plan(cand, current)
        except JupiterError as exc:
            out.append((cand, exc))
            continue
        out.append((cand, plan))
        if plan.changes and not plan.needs_manual:  # a needs_manual plan is never applied
            current = OverlayView(current, plan)
    return out


def preview_step(cand: Candidate, plan: Plan | JupiterError) -> dict[str, Any]:
    """What a run would do for one candidate, as shown before asking."""
    base = {
        "finding": cand.finding_id,
        "rule_id": cand.record.rule_id,
        "remediator": cand.remediator.name,
        "title": cand.record.title,
    }
    if isinstance(plan, JupiterError):
        return {
            **base,
            "status": FAILED,
            "needs_manual": None,
            "changes": 0,
            "risk": {},
            "diff": "",
            "plan_hash": "",
            "detail": f"could not plan: {plan}",
        }
    status = NEEDS_MANUAL if plan.needs_manual else (PLANNED if plan.changes else ALREADY_FIXED)
    return {
        **base,
        "status": status,
        "needs_manual": plan.needs_manual,
        "changes": len(plan.changes),
        "risk": plan.risk.model_dump(mode="json"),
        "diff": plan.diff,
        "plan_hash": plan.plan_hash(),
        "detail": plan.needs_manual or "",
    }


class RunExecutor:
    """Executes one fix run against one target."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        target: Target,
        actor: str,
        on_step: Callable[[StepResult], None] | None = None,
        git: GitDelivery | None = None,
        lock: TargetLock | None = None,
    ) -> None:
        self.db, self.blobs, self.target, self.actor = db, blobs, target, actor
        self.on_step = on_step
        self.git = git
        self.lock = lock

    def start(self, asset_id: str | None, params: dict[str, Any]) -> int:
        with self.db.transaction() as s:
            run = RunRow(
                kind="fix",
                status=RunState.RUNNING,
                asset_id=asset_id,
                target=self.target.describe(),
                actor=self.actor,
                params=params,
                summary={},
                # Who runs it: `jupiter runs recover` refuses a run whose
                # process is still alive.
                holder_host=socket.gethostname(),
                holder_pid=os.getpid(),
                rollback_of=None,
                started_at=utcnow(),
                finished_at=None,
            )
            s.add(run)
            s.flush()
            audit.record(
                s,
                self.actor,
                "run.started",
                f"run:{run.id}",
                {
                    "target": run.target,
                    "asset": asset_id,
                    "params": params,
                    "lock_taken_over": self.lock.taken_over if self.lock else None,
                },
            )
            return run.id

    def finish(self, run_id: int, results: list[StepResult]) -> str:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        failed = counts.get(FAILED, 0) + counts.get(ROLLED_BACK, 0) + counts.get(CONFLICT, 0)
        status = RunState.FAILED if failed else RunState.SUCCEEDED
        with self.db.transaction() as s:
            run = s.get(RunRow, run_id)
            assert run is not None
            run.summary, run.finished_at = counts, utcnow()
            transition(
                s, run, status, actor=self.actor, subject=f"run:{run_id}", facts={"steps": counts}
            )
        return status

    def execute(
        self, run_id: int, seq: int, cand: Candidate, reviewed: Plan | None = None
    ) -> StepResult:
        """Walk one finding through the stages. ``reviewed`` is the plan shown
        to the user (dry run, confirmation): it is applied as is while the
        target still matches it. When the target changed (before the step or
        during its apply), the step is re-planned on top of the new content
        and retried, up to :data:`~jupiter.preconditions.MAX_ATTEMPTS` times,
        but only while the new plan makes the same edit as the reviewed one;
        otherwise the step stops as ``conflict`` with the other edit intact."""
        plugin = cand.remediator
        result = StepResult(cand.finding_id, cand.record.rule_id, plugin.name, PLANNED)
        if self.lock is not None and (lost := self.lock.lost()) is not None:
            result.status = FAILED
            result.detail = f"lost the lock on the target ({lost}); nothing applied"
            self._record_step(run_id, seq, cand, reviewed, result)
            return self._emit(result)
        try:
            plan = self._current_plan(cand, reviewed)
        except ConflictError as exc:
            result.status, result.detail = CONFLICT, f"{exc}; nothing was applied"
            self._record_step(run_id, seq, cand, reviewed, result)
            return self._emit(result)
        except JupiterError as exc:
            result.status, result.detail = FAILED, f"could not plan: {exc}"
            self._record_step(run_id, seq, cand, None, result, FindingStatus.FAILED)
            return self._emit(result)
        result.diff, result.risk = plan.diff, plan.risk.model_dump(mode="json")
        if plan.needs_manual:
            result.status, result.detail = NEEDS_MANUAL, plan.needs_manual
            self._record_step(run_id, seq, cand, plan, result)
            return self._emit(result)
        if plan.empty:
            result.status, result.detail = ALREADY_FIXED, "nothing to change"
            self._record_step(
                run_id, seq, cand, plan, result, finding_status=FindingStatus.VERIFIED
            )
            return self._emit(result)
        step_id = self._record_step(run_id, seq, cand, plan, result)
        result.step_id = step_id
        confirmed = reviewed or plan
        for attempt in range(1, MAX_ATTEMPTS + 1):
            outcome = self._attempt(step_id, cand, plan, result, attempt)
            if isinstance(outcome, StepResult):
                return outcome
            if attempt == MAX_ATTEMPTS:
                break
            backoff(attempt)
            try:
                plan = self._replan(step_id, cand, confirmed, outcome)
            except ConflictError as exc:
                outcome = exc
                break
            except JupiterError as exc:
                result.status, result.detail = FAILED, f"could not re-plan: {exc}"
                self._update_step(step_id, result, FindingStatus.FAILED)
                return self._emit(result)
            if plan.empty or plan.needs_manual:
                result.status = ALREADY_FIXED if plan.empty else NEEDS_MANUAL
                result.detail = plan.needs_manual or "fixed meanwhile by someone else"
                status = FindingStatus.VERIFIED if plan.empty else FindingStatus.OPEN
                self._update_step(step_id, result, status)
                return self._emit(result)
        result.status = CONFLICT
        result.detail = (
            f"{outcome}; stopped after {attempt} attempt(s): the other party's edit is intact "
            "and nothing of this fix was applied — run the fix again when the target is quiet"
        )
        self._update_step(step_id, result, FindingStatus.OPEN)
        return self._emit(result)

    def _current_plan(self, cand: Candidate, reviewed: Plan | None) -> Plan:
        """The reviewed plan while the target still matches it; else a new
        plan, accepted only if it makes the same edit."""
        if reviewed is None:
            return with_basis(make_plan(cand, self.target), self.target)
        if still_applies(self.target, reviewed):
            return with_basis(reviewed, self.target)
        fresh = make_plan(cand, self.target)
        if fresh.effect_hash() != reviewed.effect_hash():
            raise ConflictError(
                "the target changed after this plan was reviewed and the fix would now differ "
                "from the reviewed one"
            )
        return with_basis(fresh, self.target)

    def _replan(self, step_id: int, cand: Candidate, confirmed: Plan, why: ConflictError) -> Plan:
        fresh = with_basis(make_plan(cand, self.target), self.target)
        if not fresh.empty and fresh.effect_hash() != confirmed.effect_hash():
            raise ConflictError(
                f"{why}; re-planned on the new content, the fix would differ from the reviewed one"
            )
        with self.db.transaction() as s:
            step = s.get(RunStepRow, step_id)
            assert step is not None
            step.plan, step.plan_hash = redact(fresh.to_json()), fresh.plan_hash()
            audit.record(
                s,
                self.actor,
                "step.replanned",
                f"run:{step.run_id}/step:{step_id}",
                {"reason": str(why), "plan_hash": step.plan_hash},
            )
        return fresh

    def _attempt(
        self, step_id: int, cand: Candidate, plan: Plan, result: StepResult, attempt: int
    ) -> StepResult | ConflictError:
        """Validate, snapshot, apply and verify ``plan`` once. A conflict
        while applying comes back (after withdrawing whatever this attempt
        already wrote) so the caller may re-plan; all else is final."""
        plugin = cand.remediator
        result.diff, result.risk = plan.diff, plan.risk.model_dump(mode="json")
        try:
            validations = plugin.validate(plan, OverlayView(self.target, plan))
        except JupiterError as exc:
            result.status = FAILED
            result.detail = f"validation could not run, nothing applied: {exc}"
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)
        result.validations = [v.to_json() for v in validations]
        rejected = [v for v in validations if v.status == "failed"]
        if rejected:
            result.status = FAILED
            result.detail = "validation failed, nothing applied: " + "; ".join(
                f"{v.validator}: {v.detail}" for v in rejected
            )
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)

        try:
            entries = self._snapshot(plan)
        except JupiterError as exc:
            result.status, result.detail = FAILED, f"snapshot failed, nothing applied: {exc}"
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)
        result.status = APPLYING
        self._update_step(
            step_id, result, FindingStatus.IN_PROGRESS, entries, replace_snapshot=attempt > 1
        )
        checkpoint("fix.after_snapshot")

        try:
            check_preconditions(self.target, plan)
            outputs = apply_plan(self.target, plan)
            checkpoint("fix.after_apply")
            result.output = outputs_text(outputs)
            if plan.watches_tree:
                entries = self._check_undeclared(plan, entries)
            fixed = plugin.is_fixed(cand.record, self.target, cand.params)
        except _Undeclared as exc:
            return self._undo(step_id, exc.entries, result, str(exc), plan)
        except PartlyApplied as exc:
            return self._withdraw(step_id, entries, result, plan, exc)
        except ConflictError as exc:
            return exc  # nothing of this attempt was written
        except CommandFailed as exc:
            result.output = outputs_text(exc.outputs)
            return self._undo(step_id, entries, result, f"apply failed: {exc}", plan)
        except HardLinkRefused as exc:
            # Linked after planning, or a target that only tells at write time.
            return self._undo(step_id, entries, result, str(exc), plan, manual=True)
        except JupiterError as exc:
            return self._undo(step_id, entries, result, f"apply failed: {exc}", plan)
        except OSError as exc:
            return self._undo(step_id, entries, result, f"apply failed: {exc}", plan)
        if not fixed:
            return self._undo(
                step_id, entries, result, "the finding is still detected after the fix", plan
            )
        result.status, result.detail = VERIFIED, "fixed and verified by re-detection"
        if attempt > 1:
            result.detail += f" (re-planned {attempt - 1} time(s) on top of concurrent edits)"
        try:
            after = capture(self.target, plan.touched_paths(), self.blobs)
        except JupiterError as exc:
            return self._undo(step_id, entries, result, f"could not record the result: {exc}", plan)
        if self.git is not None:
            try:
                result.commit = self._commit(cand, plan, entries)
            except JupiterError as exc:
                return self._undo(
                    step_id, entries, result, f"could not commit the fix: {exc}", plan
                )
            result.detail += f"; committed {result.commit[:12]}"
        if plan.risk.services_to_reload:
            result.detail += f"; reload needed: {', '.join(plan.risk.services_to_reload)}"
        self._update_step(step_id, result, FindingStatus.VERIFIED, after=after)
        checkpoint("fix.after_step")
        return self._emit(result)

    def _withdraw(
        self,
        step_id: int,
        entries: list[ManifestEntry],
        result: StepResult,
        plan: Plan,
        exc: PartlyApplied,
    ) -> StepResult | ConflictError:
        """A later change of the plan met a concurrent edit after earlier
        ones were written: put those back (only while they are still ours),
        so the step can be re-planned from a clean state."""
        mine = undo_expectations(plan, entries)
        written = [e for e in entries if e.path in exc.written]
        try:
            restore(
                self.target,
                written,
                self.blobs,
                expect={p: mine[p] for p in exc.written if p in mine},
            )
        except JupiterError as err:
            result.status = FAILED
            result.detail = f"{exc}; withdrawing the part already written FAILED: {err}"
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)
        return exc

    def _commit(self, cand: Candidate, plan: Plan, entries: list[ManifestEntry]) -> str:
        """One commit per verified finding on the delivery branch."""
        assert self.git is not None
        rec = cand.record
        if any(isinstance(c, GenerateKey) for c in plan.changes):
            # A key made on the host must never land in a repository's history.
            raise InputError(
                "this fix generates a private key, which Jupiter never commits; apply it "
                "without --git-branch (or provide your own key and certificate)"
            )
        paths = plan.touched_paths()
        if plan.watches_tree:
            paths = sorted(set(paths) | set(self.git.dirty_paths()))
        message = commit_message(
            cand.finding_id,
            rec.rule_id,
            rec.title,
            rec.aliases,
            cand.remediator.name,
            "verified: the finding is no longer detected",
            plan.plan_hash(),
            path=rec.location.path,
        )
        return self.git.commit(paths, message)

    # -- helpers ---------------------------------------------------------
    def _snapshot(self, plan: Plan) -> list[ManifestEntry]:
        """Exactly the paths the plan touches; the whole tree for a command
        whose effects are not known in advance (``watch``)."""
        declared = capture(self.target, plan.touched_paths(), self.blobs)
        if not plan.watches_tree:
            return declared
        if isinstance(self.target, LocalTarget):
            tree = capture_tree(self.target, self.blobs)
        else:
            tree = capture(self.target, self.target.walk(), self.blobs)
        known = {e.path for e in declared}
        return declared + [e for e in tree if e.path not in known]

    def _check_undeclared(self, plan: Plan, entries: list[ManifestEntry]) -> list[ManifestEntry]:
        """Refuse a command that changed what it did not declare. Returns the
        entries extended with files it created, so that a restore removes them."""
        declared = set(plan.touched_paths())
        before = {e.path for e in entries}
        created = [p for p in self.target.walk() if p not in before]
        changed = verify_restored(self.target, entries) + created
        undeclared = sorted(p for p in changed if p not in declared)
        full = entries + [ManifestEntry.absent(p) for p in created]
        if undeclared:
            shown = ", ".join(undeclared[:5]) + (" ..." if len(undeclared) > 5 else "")
            raise _Undeclared(
                f"the command changed paths it did not declare ({shown}); declare them in "
                "its manifest or fix the script",
                full,
            )
        return full

    def _undo(
        self,
        step_id: int,
        entries: list[ManifestEntry],
        result: StepResult,
        why: str,
        plan: Plan | None = None,
        *,
        manual: bool = False,
    ) -> StepResult:
        expect = undo_expectations(plan, entries) if plan is not None else None
        try:
            restore(self.target, entries, self.blobs, expect=expect)
            mismatches = verify_restored(self.target, entries)
        except ConflictError as exc:
            result.status = FAILED
            result.detail = (
                f"{why}; NOT rolled back automatically, because {exc} — review the file, then "
                "use `jupiter rollback`"
            )
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)
        except JupiterError as exc:
            result.status = FAILED
            result.detail = f"{why}; AUTOMATIC ROLLBACK FAILED: {exc}"
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)
        proof = "verified by hash" if not mismatches else f"MISMATCH on {', '.join(mismatches)}"
        if manual and not mismatches:
            # Refused by the target: needs a person, not a failure of the fix.
            result.status = NEEDS_MANUAL
            result.detail = f"{why} (anything this step wrote was put back, {proof})"
            self._update_step(step_id, result, FindingStatus.OPEN)
            return self._emit(result)
        result.status = ROLLED_BACK
        result.detail = f"{why}; rolled back automatically ({proof})"
        self._update_step(step_id, result, FindingStatus.FAILED)
        return self._emit(result)

    def _emit(self, result: StepResult) -> StepResult:
        if self.on_step is not None:
            self.on_step(result)
        return result

    def _record_step(
        self,
        run_id: int,
        seq: int,
        cand: Candidate,
        plan: Plan | None,
        result: StepResult,
        finding_status: FindingStatus | None = None,
    ) -> int:
        now = utcnow()
        with self.db.transaction() as s:
            step = RunStepRow(
                run_id=run_id,
                seq=seq,
                finding_id=cand.finding_id,
                remediator=cand.remediator.name,
                rule_id=cand.record.rule_id,
                status=result.status,
                detail=result.detail,
                # Stored for review, redacted: a plan may carry a private key
                # it generated (PostgreSQL TLS); the live plan is applied.
                plan=redact(plan.to_json()) if plan else {},
                plan_hash=plan.plan_hash() if plan else "",
                validations=[],
                output="",
                started_at=now,
                finished_at=None if result.status == PLANNED else now,
            )
            s.add(step)
            s.flush()
            audit.record(
                s,
                self.actor,
                f"step.{result.status}",
                f"run:{run_id}/step:{step.id}",
                {
                    "finding": cand.finding_id,
                    "rule_id": cand.record.rule_id,
                    "remediator": cand.remediator.name,
                    "plan_hash": step.plan_hash,
                    "detail": result.detail,
                },
            )
            if finding_status is not None:
                _set_finding_status(s, cand.finding_id, finding_status, self.actor)
            return step.id

    def _update_step(
        self,
        step_id: int,
        result: StepResult,
        finding_status: FindingStatus,
        entries: list[ManifestEntry] | None = None,
        after: list[ManifestEntry] | None = None,
        *,
        replace_snapshot: bool = False,
    ) -> None:
        with self.db.transaction() as s:
            step = s.get(RunStepRow, step_id)
            assert step is not None
            if replace_snapshot:
                # A retried attempt: the earlier one wrote nothing (or put
                # it back), so its snapshot no longer describes "before".
                s.execute(
                    delete(SnapshotEntryRow).where(
                        SnapshotEntryRow.step_id == step_id, SnapshotEntryRow.phase == "before"
                    )
                )
            step.detail = result.detail
            step.validations = result.validations
            step.output = result.output
            step.commit = result.commit
            if result.status != APPLYING:
                step.finished_at = utcnow()
            if entries is not None:
                for e in entries:
                    s.add(SnapshotEntryRow(step_id=step_id, phase="before", **e.to_dict()))
            for e in after or []:
                s.add(SnapshotEntryRow(step_id=step_id, phase="after", **e.to_dict()))
            transition(
                s,
                step,
                result.status,
                actor=self.actor,
                subject=f"run:{step.run_id}/step:{step_id}",
                facts={
                    "detail": result.detail,
                    "validations": result.validations,
                    "snapshot": [e.to_dict() for e in entries] if entries else None,
                },
            )
            _set_finding_status(s, step.finding_id, finding_status, self.actor)


def _set_finding_status(
    s: Session, finding_id: int | None, status: FindingStatus, actor: str
) -> None:
    if finding_id is None:
        return
    row = s.get(FindingRow, finding_id)
    if row is None or row.status == status.value:
        return
    old, row.status = row.status, status.value
    audit.record(
        s, actor, "finding.status", f"finding:{finding_id}", {"from": old, "to": status.value}
    )


class _Undeclared(TargetError):
    retryable = False

    def __init__(self, message: str, entries: list[ManifestEntry]) -> None:
        super().__init__(message)
        self.entries = entries
