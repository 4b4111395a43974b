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
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import (
    ConflictError,
    InputError,
    JupiterError,
    NotFoundError,
    TargetError,
)
from jupiter.git_delivery import GitDelivery, commit_message
from jupiter.keygen import materialise
from jupiter.models import FindingRecord, FindingStatus
from jupiter.plans import (
    GenerateKey,
    IssueCertificate,
    Plan,
    RemoveFile,
    RunCommand,
    SetMode,
    WriteFile,
    sha256_bytes,
)
from jupiter.plugins.base import AnyRemediator
from jupiter.plugins.registry import Registry
from jupiter.redact import redact
from jupiter.snapshots import (
    BlobStore,
    ManifestEntry,
    capture,
    capture_tree,
    restore,
    verify_restored,
)
from jupiter.store.db import Database
from jupiter.store.tables import FindingRow, RunRow, RunStepRow, SnapshotEntryRow, utcnow
from jupiter.targets.base import CommandResult, Target, TargetView, normalise_relpath
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView

# Step states. A step only ever moves forward through these.
PLANNED, APPLYING, VERIFIED, FAILED = "planned", "applying", "verified", "failed"
ROLLED_BACK, NEEDS_MANUAL, ALREADY_FIXED = "rolled_back", "needs_manual", "already_fixed"


@dataclass
class StepResult:
    finding_id: int | None
    rule_id: str
    remediator: str
    status: str
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
    return plan


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
        if plan.changes:
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
    ) -> None:
        self.db, self.blobs, self.target, self.actor = db, blobs, target, actor
        self.on_step = on_step
        self.git = git

    def start(self, asset_id: str | None, params: dict[str, Any]) -> int:
        with self.db.transaction() as s:
            run = RunRow(
                kind="fix",
                status="running",
                asset_id=asset_id,
                target=self.target.describe(),
                actor=self.actor,
                params=params,
                # Who runs it: `jupiter runs recover` refuses a run whose
                # process is still alive.
                summary={"host": socket.gethostname(), "pid": os.getpid()},
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
                {"target": run.target, "asset": asset_id, "params": params},
            )
            return run.id

    def finish(self, run_id: int, results: list[StepResult]) -> str:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        failed = counts.get(FAILED, 0) + counts.get(ROLLED_BACK, 0)
        status = "failed" if failed else "succeeded"
        with self.db.transaction() as s:
            run = s.get(RunRow, run_id)
            assert run is not None
            run.status, run.summary, run.finished_at = status, counts, utcnow()
            audit.record(s, self.actor, f"run.{status}", f"run:{run_id}", {"steps": counts})
        return status

    def execute(
        self, run_id: int, seq: int, cand: Candidate, reviewed: Plan | None = None
    ) -> StepResult:
        """Walk one finding through the stages. ``reviewed`` is the plan shown
        to the user (dry run, confirmation): it is applied as is while the
        target still matches it, so what was reviewed is what lands."""
        plugin = cand.remediator
        result = StepResult(cand.finding_id, cand.record.rule_id, plugin.name, PLANNED)
        try:
            plan = (
                reviewed if reviewed is not None and _still_applies(self.target, reviewed) else None
            )
            plan = plan or make_plan(cand, self.target)
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
        self._update_step(step_id, result, FindingStatus.IN_PROGRESS, entries)

        try:
            check_preconditions(self.target, plan)
            outputs = apply_plan(self.target, plan)
            result.output = _outputs_text(outputs)
            if plan.watches_tree:
                entries = self._check_undeclared(plan, entries)
            fixed = plugin.is_fixed(cand.record, self.target, cand.params)
        except _Undeclared as exc:
            return self._undo(step_id, exc.entries, result, str(exc))
        except CommandFailed as exc:
            result.output = _outputs_text(exc.outputs)
            return self._undo(step_id, entries, result, f"apply failed: {exc}")
        except JupiterError as exc:
            return self._undo(step_id, entries, result, f"apply failed: {exc}")
        except OSError as exc:
            return self._undo(step_id, entries, result, f"apply failed: {exc}")
        if not fixed:
            return self._undo(
                step_id, entries, result, "the finding is still detected after the fix"
            )
        result.status, result.detail = VERIFIED, "fixed and verified by re-detection"
        try:
            after = capture(self.target, plan.touched_paths(), self.blobs)
        except JupiterError as exc:
            return self._undo(step_id, entries, result, f"could not record the result: {exc}")
        if self.git is not None:
            try:
                result.commit = self._commit(cand, plan, entries)
            except JupiterError as exc:
                return self._undo(step_id, entries, result, f"could not commit the fix: {exc}")
            result.detail += f"; committed {result.commit[:12]}"
        if plan.risk.services_to_reload:
            result.detail += f"; reload needed: {', '.join(plan.risk.services_to_reload)}"
        self._update_step(step_id, result, FindingStatus.VERIFIED, after=after)
        return self._emit(result)

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
        self, step_id: int, entries: list[ManifestEntry], result: StepResult, why: str
    ) -> StepResult:
        try:
            restore(self.target, entries, self.blobs)
            mismatches = verify_restored(self.target, entries)
        except JupiterError as exc:
            result.status = FAILED
            result.detail = f"{why}; AUTOMATIC ROLLBACK FAILED: {exc}"
            self._update_step(step_id, result, FindingStatus.FAILED)
            return self._emit(result)
        result.status = ROLLED_BACK
        proof = "verified by hash" if not mismatches else f"MISMATCH on {', '.join(mismatches)}"
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
    ) -> None:
        with self.db.transaction() as s:
            step = s.get(RunStepRow, step_id)
            assert step is not None
            step.status, step.detail = result.status, result.detail
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
            audit.record(
                s,
                self.actor,
                f"step.{result.status}",
                f"run:{step.run_id}/step:{step_id}",
                {
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


class CommandFailed(TargetError):
    """A plan's command failed; carries every command result so far."""

    retryable = False

    def __init__(self, message: str, outputs: list[CommandResult]) -> None:
        super().__init__(message)
        self.outputs = outputs


class _Undeclared(TargetError):
    retryable = False

    def __init__(self, message: str, entries: list[ManifestEntry]) -> None:
        super().__init__(message)
        self.entries = entries


def _outputs_text(outputs: list[CommandResult]) -> str:
    """Command output for the run record: redacted and bounded."""
    parts = []
    for res in outputs:
        status = f"exit {res.returncode}" + (", timed out" if res.timed_out else "")
        parts.append(
            f"$ {' '.join(res.argv)}\n[{status}]\n{res.stdout[-4000:]}{res.stderr[-4000:]}"
        )
    return str(redact("\n".join(parts)))


def _still_applies(target: TargetView, plan: Plan) -> bool:
    try:
        check_preconditions(target, plan)
    except ConflictError:
        return False
    return True


def check_preconditions(target: TargetView, plan: Plan) -> None:
    """Refuse a plan whose files changed since it was made."""
    for change in plan.changes:
        if isinstance(change, WriteFile | RemoveFile | GenerateKey | IssueCertificate):
            try:
                current: str | None = sha256_bytes(target.read_bytes(change.path))
            except FileNotFoundError:
                current = None
            if current != change.before_sha256:
                raise ConflictError(
                    f"{change.path} changed since the plan was made; nothing was applied — "
                    "plan again"
                )


def apply_plan(target: Target, plan: Plan) -> list[CommandResult]:
    """Apply every change in order (the caller snapshotted first); returns
    the results of the commands it ran."""
    outputs: list[CommandResult] = []
    for change in plan.changes:
        if isinstance(change, GenerateKey | IssueCertificate):
            # Keys and certificates are made here, on the way to the target,
            # and nowhere else: the plan only describes them (jupiter.keygen).
            change = materialise(target, change)
        if isinstance(change, WriteFile):
            target.write_bytes(change.path, change.content.encode(), change.mode)
        elif isinstance(change, RemoveFile):
            target.remove(change.path)
        elif isinstance(change, SetMode):
            target.set_mode(change.path, change.mode)
            if change.uid is not None or change.gid is not None:
                state = target.stat(change.path)
                if state is None:
                    raise TargetError(f"{change.path} disappeared while it was being changed")
                target.set_owner(
                    change.path,
                    change.uid if change.uid is not None else state.uid,
                    change.gid if change.gid is not None else state.gid,
                )
        elif isinstance(change, RunCommand):
            res = target.run(change.argv, change.timeout)
            outputs.append(res)
            if not res.ok:
                why = "timed out" if res.timed_out else f"exited {res.returncode}"
                last = (res.stderr.strip().splitlines() or [""])[-1][:300]
                what = change.description or change.argv[0]
                raise CommandFailed(f"{what} {why}: {redact(last)}", outputs)
    return outputs


# -- rollback -------------------------------------------------------------
@dataclass
class RollbackOutcome:
    run_id: int
    rollback_run_id: int
    restored: list[str]
    mismatches: list[str]

    @property
    def verified(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "rollback_run": self.rollback_run_id,
            "restored": self.restored,
            "verified": self.verified,
            "mismatches": self.mismatches,
        }


def manifest_entry(row: SnapshotEntryRow) -> ManifestEntry:
    """A stored snapshot row as the snapshot package's entry."""
    return ManifestEntry(
        path=row.path,
        existed=row.existed,
        kind=row.kind or "absent",
        mode=row.mode,
        uid=row.uid,
        gid=row.gid,
        size=row.size,
        sha256=row.sha256,
    )


@dataclass
class RunManifest:
    """What a run changed: every path as it was before the run first
    touched it, and as the run last left it (when the step finished)."""

    run: RunRow
    before: dict[str, ManifestEntry]
    after: dict[str, ManifestEntry]
    step_ids: list[int]


def rollback_entries(s: Session, run_id: int) -> RunManifest:
    """The manifest of a fix run that can still be rolled back."""
    run = s.get(RunRow, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}; see `jupiter runs list`")
    if run.kind == "rollback":
        raise InputError(
            f"run {run_id} is itself a rollback (of run {run.rollback_of}); a rollback cannot be "
            "rolled back — run `jupiter fix` again to re-apply the fix"
        )
    if run.status == "rolled_back":
        raise InputError(f"run {run_id} was already rolled back in full; nothing to restore")
    steps = list(
        s.scalars(
            select(RunStepRow)
            .where(RunStepRow.run_id == run_id, RunStepRow.status.in_([VERIFIED, APPLYING]))
            .order_by(RunStepRow.seq)
        )
    )
    first: dict[str, ManifestEntry] = {}
    last: dict[str, ManifestEntry] = {}
    for step in steps:
        touched: set[str] = set()
        rows = s.scalars(select(SnapshotEntryRow).where(SnapshotEntryRow.step_id == step.id))
        for row in rows:
            entry = manifest_entry(row)
            if row.phase == "after":
                last[row.path] = entry
            else:
                first.setdefault(row.path, entry)
                touched.add(row.path)
        if step.status == APPLYING:
            # Interrupted mid-apply: what it left behind is unknown.
            for path in touched:
                last.pop(path, None)
    return RunManifest(run, first, last, [st.id for st in steps])
