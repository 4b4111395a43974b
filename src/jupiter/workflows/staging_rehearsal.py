"""The staging test's rollback rehearsal: apply → roll back → every
touched path hashes as its snapshot says → apply again. It goes through the
same :meth:`~jupiter.rollbacks.RollingBack.rollback` and
:meth:`~jupiter.fixing.Fixing.fix` a production run uses; the hashes are
recomputed here, independently of the rollback's own verification."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jupiter.errors import JupiterError
from jupiter.run_manifest import rollback_entries
from jupiter.snapshots import ManifestEntry
from jupiter.targets.base import TargetView
from jupiter.workflows.staging_checks import CheckResult, applied_steps, generated_paths

if TYPE_CHECKING:
    from jupiter.engine import Engine


def path_state(view: TargetView, path: str) -> dict[str, Any]:
    """What ``path`` is now: absent, or its kind, mode and (for a file) sha256."""
    st = view.stat(path)
    if st is None:
        return {"exists": False, "sha256": None, "mode": None}
    sha = hashlib.sha256(view.read_bytes(path)).hexdigest() if st.kind == "file" else None
    return {"exists": True, "kind": st.kind, "sha256": sha, "mode": st.mode}


def _matches(entry: ManifestEntry, now: dict[str, Any]) -> bool:
    if not entry.existed:
        return not now["exists"]
    if not now["exists"] or now.get("kind") != entry.kind:
        return False
    if entry.kind == "file":
        return bool(now["sha256"] == entry.sha256 and now["mode"] == entry.mode)
    return True


def _generated(engine: Engine, step_ids: list[int]) -> set[str]:
    from sqlalchemy import select

    from jupiter.store.tables import RunStepRow

    with engine.db.reading() as s:
        plans = s.scalars(select(RunStepRow.plan).where(RunStepRow.id.in_(step_ids)))
        return {p for plan in plans for p in generated_paths(plan)}


def rehearse(
    engine: Engine,
    label: str,
    view: TargetView,
    outcome: dict[str, Any],
    reapply: Callable[[], dict[str, Any]],
) -> tuple[CheckResult, dict[str, Any] | None]:
    """Roll the run of ``outcome`` back, prove it by hashes, re-apply with
    ``reapply``. Returns the check and the re-apply's outcome (``None`` when
    nothing was re-applied)."""
    run_id = outcome.get("run")
    if run_id is None or not applied_steps(outcome):
        return CheckResult("rollback_rehearsal", label, "skipped", "nothing was applied"), None
    with engine.db.reading() as s:
        manifest = rollback_entries(s, int(run_id))
    generated = _generated(engine, manifest.step_ids)
    paths = sorted(manifest.before)
    applied = {p: path_state(view, p) for p in paths}
    details: dict[str, Any] = {"run": run_id, "paths": {}}
    try:
        rolled = engine.rollback(int(run_id))
    except JupiterError as exc:
        return CheckResult("rollback_rehearsal", label, "failed", f"rollback failed: {exc}"), None
    details["rollback_run"] = rolled["rollback_run"]
    restored = {p: path_state(view, p) for p in paths}
    wrong = [p for p in paths if not _matches(manifest.before[p], restored[p])]
    for p in paths:
        details["paths"][p] = {
            "snapshot": manifest.before[p].sha256 if manifest.before[p].existed else None,
            "applied": applied[p]["sha256"],
            "after_rollback": restored[p]["sha256"],
        }
    if wrong or not rolled.get("verified"):
        return (
            CheckResult(
                "rollback_rehearsal",
                label,
                "failed",
                "after the rollback these paths do not match their snapshot: "
                + ", ".join(wrong or rolled.get("mismatches", [])),
                details,
            ),
            None,
        )
    try:
        again = reapply()
    except JupiterError as exc:
        return (
            CheckResult(
                "rollback_rehearsal",
                label,
                "failed",
                f"rolled back and proven by hashes, but re-applying failed: {exc}",
                details,
            ),
            None,
        )
    details["reapply_run"] = again.get("run")
    reapplied = {p: path_state(view, p) for p in paths}
    differ: list[str] = []
    for p in paths:
        details["paths"][p]["after_reapply"] = reapplied[p]["sha256"]
        if p in generated:
            # A new key is made on every apply: it must exist again, not be equal.
            details["paths"][p]["generated"] = True
            if reapplied[p]["exists"] != applied[p]["exists"]:
                differ.append(p)
        elif reapplied[p] != applied[p]:
            differ.append(p)
    if again.get("status") != "succeeded" or differ:
        why = f"re-apply ended {again.get('status')}"
        if differ:
            why += "; paths differ from the first apply: " + ", ".join(differ)
        return (
            CheckResult(
                "rollback_rehearsal",
                label,
                "failed",
                f"rolled back and proven by hashes, but {why}",
                details,
            ),
            again,
        )
    return (
        CheckResult(
            "rollback_rehearsal",
            label,
            "passed",
            f"rolled back {len(paths)} path(s), each equal to its snapshot by sha256; "
            f"re-applied as run {again.get('run')} with the same result",
            details,
        ),
        again,
    )
