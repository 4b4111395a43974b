"""Rollback and run history for the engine: restore what a fix run
changed and prove it, list and show runs. :class:`jupiter.engine.Engine`
inherits it; it relies on the engine's ``db``, ``workspace`` and ``actor``."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from jupiter import audit, compliance
from jupiter.errors import ConflictError, Declined, InputError, JupiterError, NotFoundError
from jupiter.faults import checkpoint
from jupiter.models import FindingStatus
from jupiter.permissions import requires
from jupiter.states import RunState, transition
from jupiter.store.db import Database
from jupiter.store.tables import RunRow, utcnow
from jupiter.targets.base import Expected, Target
from jupiter.targets.factory import open_target
from jupiter.workspace import Workspace


def _run_json(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "asset": run.asset_id,
        "target": run.target,
        "actor": run.actor,
        "rollback_of": run.rollback_of,
        "summary": run.summary,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


class RollingBack:
    """Mixed into :class:`jupiter.engine.Engine`."""

    workspace: Workspace
    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    @requires("run.rollback", scope="run_id", kind="run")
    def rollback(
        self,
        run_id: int,
        paths: list[str] | None = None,
        confirm: Callable[[list[str]], bool] | None = None,
        force: bool = False,
        lock_timeout: float = 0.0,
    ) -> dict[str, Any]:
        """Restore what a fix run changed (all, or only ``paths``) and prove it.

        A path changed by someone else since the run left it is not
        overwritten unless ``force``: the rollback is refused and names it.
        Each path is restored only while it is still as checked (so an edit
        made after the check, even with ``force``, is never overwritten), and
        the whole rollback holds the target's lock (see :mod:`jupiter.locks`).
        """
        from jupiter.locks import Holder, TargetLock
        from jupiter.preconditions import observe
        from jupiter.run_manifest import rollback_entries
        from jupiter.snapshots import BlobStore, check_blobs, restore, verify_restored
        from jupiter.targets.base import normalise_relpath

        with self.db.reading() as s:
            manifest = rollback_entries(s, run_id)
            run, entries, step_ids = manifest.run, manifest.before, manifest.step_ids
            commits = _run_commits(s, step_ids)
        if not entries:
            raise InputError(f"run {run_id} changed nothing that can be rolled back")
        git_info = run.params.get("git")
        if git_info and paths:
            raise InputError(
                f"run {run_id} delivered its fixes as commits on {git_info['branch']}; "
                "roll it back whole (without --path), which reverts those commits"
            )
        wanted = sorted(entries)
        if paths:
            asked = [normalise_relpath(p) for p in paths]
            unknown = [p for p in asked if p not in entries]
            if unknown:
                raise InputError(
                    f"run {run_id} did not change {', '.join(unknown)}; it changed: "
                    f"{', '.join(wanted)}"
                )
            wanted = sorted(set(asked))
        chosen = [entries[p] for p in wanted]
        blobs = BlobStore(self.workspace.blobs)
        try:
            check_blobs(chosen, blobs)
        except JupiterError as exc:
            with self.db.transaction() as s:
                audit.record(
                    s, self.actor, "rollback.refused", f"run:{run_id}", {"reason": str(exc)}
                )
            raise
        target = open_target(run.target)
        holder = Holder.current("rollback", self.actor)
        with closing(target), TargetLock(self.db, target, holder, timeout=lock_timeout) as lock:
            # What every path is now: the restore happens only while it still is.
            observed = observe(target, wanted)
            # Changed since the run left it, and not simply restored already
            # (by an earlier partial rollback of this run).
            left = [manifest.after[p] for p in wanted if p in manifest.after]
            moved = verify_restored(target, left)
            drifted = verify_restored(target, [entries[p] for p in moved])
            if drifted and not force:
                reason = (
                    f"{', '.join(drifted)} changed after run {run_id} applied its fix; rolling "
                    "back would discard those changes — review them, then pass --force"
                )
                with self.db.transaction() as s:
                    audit.record(
                        s, self.actor, "rollback.refused", f"run:{run_id}", {"reason": reason}
                    )
                raise ConflictError(reason)
            if confirm is not None and not confirm(wanted):
                raise Declined("rollback declined; nothing was changed")
            with self.db.transaction() as s:
                rb = RunRow(
                    kind="rollback",
                    status=RunState.RUNNING,
                    holder_host=socket.gethostname(),
                    holder_pid=os.getpid(),
                    asset_id=run.asset_id,
                    target=run.target,
                    actor=self.actor,
                    params={"paths": wanted, "force": force, "drifted": drifted},
                    summary={},
                    rollback_of=run_id,
                    started_at=utcnow(),
                    finished_at=None,
                )
                s.add(rb)
                s.flush()
                rb_id = rb.id
                lock.run_id = rb_id
                audit.record(
                    s,
                    self.actor,
                    "rollback.started",
                    f"run:{run_id}",
                    {"rollback_run": rb_id, "paths": wanted},
                )
            try:
                if git_info:
                    _revert_git(target, git_info["branch"], commits, run_id)
                else:
                    try:
                        restore(target, chosen, blobs, expect=observed)
                    except ConflictError as exc:
                        raise ConflictError(
                            f"rollback stopped: {exc}; paths restored before it stay restored — "
                            "review the edit, then run the rollback again"
                        ) from exc
                checkpoint("rollback.after_restore")
                mismatches = verify_restored(target, chosen)
                full = set(wanted) == set(entries)
                if full:
                    with self.db.reading() as s:
                        undos = _undo_commands(s, step_ids)
                    _run_undos(target, undos)
            except JupiterError as exc:
                with self.db.transaction() as s:
                    rbrow = s.get(RunRow, rb_id)
                    assert rbrow is not None
                    rbrow.finished_at = utcnow()
                    transition(
                        s,
                        rbrow,
                        RunState.FAILED,
                        actor=self.actor,
                        subject=f"run:{run_id}",
                        action="rollback.failed",
                        facts={"rollback_run": rb_id, "error": str(exc)},
                    )
                raise
            with self.db.transaction() as s:
                rbrow, orig = s.get(RunRow, rb_id), s.get(RunRow, run_id)
                assert rbrow is not None and orig is not None
                rbrow.finished_at = utcnow()
                rbrow.summary = {"restored": wanted, "mismatches": mismatches}
                undone = RunState.ROLLED_BACK if full else RunState.PARTIALLY_ROLLED_BACK
                if orig.status != RunState.ROLLED_BACK:
                    # A rollback repeated after a full one leaves it rolled back.
                    transition(
                        s,
                        orig,
                        undone,
                        actor=self.actor,
                        subject=f"run:{run_id}",
                        facts={"rollback_run": rb_id},
                    )
                if full:
                    self._mark_rolled_back(s, step_ids)
                    # The controls its fixes satisfied fail again.
                    if orig.asset_id is not None:
                        compliance.evaluate(s, orig.asset_id, rb_id)
                transition(
                    s,
                    rbrow,
                    RunState.VERIFIED if not mismatches else RunState.MISMATCH,
                    actor=self.actor,
                    subject=f"run:{run_id}",
                    action="rollback.verified" if not mismatches else "rollback.mismatch",
                    facts={
                        "rollback_run": rb_id,
                        "restored": wanted,
                        "mismatches": mismatches,
                        "hashes": {e.path: e.sha256 for e in chosen},
                    },
                )
        return {
            "run": run_id,
            "rollback_run": rb_id,
            "restored": wanted,
            "verified": not mismatches,
            "mismatches": mismatches,
            "full": full,
        }

    @requires("run.recover", scope="run_id", kind="run")
    def recover(self, run_id: int, lock_timeout: float = 0.0) -> dict[str, Any]:
        """Finish a run whose process died mid-way: every step it left in the
        middle of applying is restored from its snapshot (proven by hashes),
        steps not yet applied are marked failed, the run ``interrupted``.
        A file someone edited after the step wrote it is left alone (the
        step then says so); the target's lock is held throughout, taking
        over the dead run's lease."""
        from sqlalchemy import select

        from jupiter.locks import Holder, TargetLock
        from jupiter.runs import APPLYING, FAILED, PLANNED, ROLLED_BACK, _set_finding_status
        from jupiter.snapshots import BlobStore, check_blobs, restore, verify_restored
        from jupiter.store.tables import RunStepRow

        with self.db.reading() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}; see `jupiter runs list`")
            if run.status != RunState.RUNNING:
                raise InputError(
                    f"run {run_id} is {run.status}, not running; only an interrupted run can "
                    "be recovered (use `jupiter rollback` to undo a finished one)"
                )
            _refuse_if_alive(run)
            steps = list(
                s.scalars(
                    select(RunStepRow)
                    .where(RunStepRow.run_id == run_id, RunStepRow.status.in_([PLANNED, APPLYING]))
                    .order_by(RunStepRow.seq.desc())
                )
            )
            snapshots = {st.id: _before_entries(s, st.id) for st in steps}
        blobs = BlobStore(self.workspace.blobs)
        outcome: list[dict[str, Any]] = []
        target = open_target(run.target)
        holder = Holder.current("recover", self.actor)
        with closing(target), TargetLock(self.db, target, holder, timeout=lock_timeout):
            leftovers = _sweep_leftovers(target, steps, snapshots)
            for step in steps:
                if step.status == APPLYING:
                    entries = snapshots[step.id]
                    check_blobs(entries, blobs)
                    # Paths still as before (it died before writing them) need nothing.
                    drifted = set(verify_restored(target, entries))
                    todo = [e for e in entries if e.path in drifted]
                    try:
                        restore(target, todo, blobs, expect=_step_expectations(step, todo))
                    except ConflictError as exc:
                        status = FAILED
                        detail = f"interrupted while applying; NOT restored: {exc}"
                    else:
                        mismatches = verify_restored(target, entries)
                        status = ROLLED_BACK
                        detail = "interrupted while applying; restored from its snapshot (" + (
                            "verified by hash)" if not mismatches else f"MISMATCH: {mismatches})"
                        )
                else:
                    status, detail = FAILED, "interrupted before anything was applied"
                with self.db.transaction() as s:
                    row = s.get(RunStepRow, step.id)
                    assert row is not None
                    row.detail, row.finished_at = detail, utcnow()
                    _set_finding_status(s, row.finding_id, FindingStatus.FAILED, self.actor)
                    transition(
                        s,
                        row,
                        status,
                        actor=self.actor,
                        subject=f"run:{run_id}/step:{step.id}",
                        action="step.recovered",
                        facts={"status": status, "detail": detail},
                    )
                outcome.append({"step": step.id, "status": status, "detail": detail})
        with self.db.transaction() as s:
            row_run = s.get(RunRow, run_id)
            assert row_run is not None
            row_run.finished_at = utcnow()
            transition(
                s,
                row_run,
                RunState.INTERRUPTED,
                actor=self.actor,
                subject=f"run:{run_id}",
                action="run.recovered",
                facts={"steps": outcome, "removed_leftovers": leftovers},
            )
        return {
            "run": run_id,
            "status": RunState.INTERRUPTED.value,
            "steps": outcome,
            "removed_leftovers": leftovers,
        }

    @requires("runs.read")
    def list_runs(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        with self.db.reading() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.id.desc()))
            return [_run_json(r) for r in rows]

    @requires("runs.read", scope="run_id", kind="run")
    def show_run(self, run_id: int) -> dict[str, Any]:
        from sqlalchemy import select

        from jupiter.store.tables import RunStepRow

        with self.db.reading() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}; see `jupiter runs list`")
            steps = s.scalars(
                select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.seq)
            )
            return {
                **_run_json(run),
                "steps": [
                    {
                        "id": st.id,
                        "seq": st.seq,
                        "finding": st.finding_id,
                        "remediator": st.remediator,
                        "rule_id": st.rule_id,
                        "status": st.status,
                        "detail": st.detail,
                        "plan_hash": st.plan_hash,
                        "validations": st.validations,
                        "diff": st.plan.get("diff", ""),
                        "output": st.output,
                    }
                    for st in steps
                ],
            }

    def _mark_rolled_back(self, s: Session, step_ids: list[int]) -> None:
        from jupiter.runs import _set_finding_status
        from jupiter.store.tables import RunStepRow

        for sid in step_ids:
            step = s.get(RunStepRow, sid)
            if step is not None:
                _set_finding_status(s, step.finding_id, FindingStatus.ROLLED_BACK, self.actor)


def _step_expectations(step: Any, entries: list[Any]) -> dict[str, Expected] | None:
    """What an interrupted step may have left each path as: the content its
    plan writes, or still the snapshot (it died before writing). A path in
    neither state was edited by someone else and is not overwritten."""
    from pydantic import ValidationError

    from jupiter.plans import Plan
    from jupiter.preconditions import undo_expectations

    try:
        plan = Plan.model_validate({k: v for k, v in step.plan.items() if k != "hash"})
    except ValidationError:
        return None
    return undo_expectations(plan, entries)


def _sweep_leftovers(target: Target, steps: list[Any], snapshots: dict[int, Any]) -> list[str]:
    """What the dead process left behind: its scratch directories (validator
    sandboxes, throw-away keys) and the temp files of writes it was in the
    middle of, next to the files of its unfinished steps (local or SSH; the
    lock is held, so no live write owns them)."""
    from jupiter.scratch import sweep_stale, sweep_target_temps

    removed = sweep_stale()
    paths = [e.path for st in steps for e in snapshots.get(st.id, [])]
    removed += [f"{target.describe()}/{p}" for p in sweep_target_temps(target, paths)]
    return removed


def _refuse_if_alive(run: RunRow) -> None:
    """Refuse to recover a run whose process still runs on this host."""
    pid, host = run.holder_pid, run.holder_host
    if pid is None or pid == os.getpid():
        return
    if host != socket.gethostname():
        raise InputError(
            f"run {run.id} was started on {host}; recover it there, where Jupiter can tell "
            "whether its process is still running"
        )
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    raise InputError(
        f"run {run.id} is still running (process {pid}); wait for it, or stop that process first"
    )


def _before_entries(s: Session, step_id: int) -> list[Any]:
    from sqlalchemy import select

    from jupiter.run_manifest import manifest_entry
    from jupiter.store.tables import SnapshotEntryRow

    rows = s.scalars(
        select(SnapshotEntryRow).where(
            SnapshotEntryRow.step_id == step_id, SnapshotEntryRow.phase == "before"
        )
    )
    return [manifest_entry(r) for r in rows]


def _run_commits(s: Session, step_ids: list[int]) -> list[str]:
    from jupiter.store.tables import RunStepRow

    rows = [s.get(RunStepRow, sid) for sid in step_ids]
    return [r.commit for r in sorted(filter(None, rows), key=lambda r: r.seq) if r.commit]


def _undo_commands(s: Session, step_ids: list[int]) -> list[tuple[list[str], float]]:
    """The undo commands of a run's commands, last step first."""
    from jupiter.store.tables import RunStepRow

    steps = sorted(filter(None, (s.get(RunStepRow, i) for i in step_ids)), key=lambda r: -r.seq)
    out: list[tuple[list[str], float]] = []
    for step in steps:
        for change in reversed(step.plan.get("changes", [])):
            if change.get("kind") == "command" and change.get("undo"):
                out.append((list(change["undo"]), float(change.get("timeout", 60.0))))
    return out


def _run_undos(target: Target, undos: list[tuple[list[str], float]]) -> None:
    from jupiter.errors import TargetError

    for argv, timeout in undos:
        res = target.run(argv, timeout)
        if not res.ok:
            why = "timed out" if res.timed_out else f"exited {res.returncode}"
            raise TargetError(
                f"undo command {argv[0]} {why}; files were restored, but undo the command's "
                "effect by hand"
            )


def _revert_git(target: Target, branch: str, commits: list[str], run_id: int) -> None:
    """Undo a git-delivered run by reverting its commits on its branch."""
    from jupiter.git_delivery import GitDelivery
    from jupiter.targets.local import LocalTarget

    assert isinstance(target, LocalTarget)
    git = GitDelivery(target.root)
    git.resume(branch, checkout=True)
    git.revert(commits, f"Revert Jupiter run {run_id}")
