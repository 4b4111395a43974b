"""What a fix run changed, from its stored snapshots: the manifest a
rollback or a recovery restores from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter.errors import InputError, NotFoundError
from jupiter.runs import APPLYING, VERIFIED
from jupiter.snapshots import ManifestEntry
from jupiter.store.tables import RunRow, RunStepRow, SnapshotEntryRow


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
