"""What a change was planned from, and the expectations every write and
restore carries so that nobody else's edit is ever overwritten.

:func:`with_basis` records, for each file a plan changes, the content hash
and stat identity it was planned from; :func:`apply_expectation` turns a
plan's change into the :class:`~jupiter.targets.base.Expected` the target
checks right before (and after) its atomic replace; :func:`undo_expectations`
and :func:`observe` give the same protection to restores.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Sequence

from jupiter.errors import ConflictError, TargetError
from jupiter.plans import Basis, Plan, RemoveFile, RunCommand, SetMode, WriteFile, sha256_bytes
from jupiter.snapshots import ManifestEntry
from jupiter.targets.base import Expected, TargetView

MAX_ATTEMPTS = 4
"""How often a step is re-planned on top of someone else's edit before it
stops as ``conflict``."""


def backoff(attempt: int) -> None:
    """Sleep before re-planning: jittered, growing with each attempt, so a
    step does not race the other writer in lock step."""
    time.sleep(random.uniform(0.02, 0.08) * attempt)  # noqa: S311 - jitter, not security


def with_basis(plan: Plan, view: TargetView) -> Plan:
    """``plan`` with each file change's :class:`Basis` recorded (content hash
    from the plan, identity from ``view`` as it is now)."""
    changes: list[WriteFile | SetMode | RemoveFile | RunCommand] = []
    touched = False
    for change in plan.changes:
        if isinstance(change, WriteFile | RemoveFile) and change.planned_from is None:
            st = view.stat(change.path)
            basis = Basis(
                sha256=change.before_sha256,
                inode=st.inode if st else None,
                size=st.size if st else None,
                mtime_ns=st.mtime_ns if st else None,
            )
            changes.append(change.model_copy(update={"planned_from": basis}))
            touched = True
        else:
            changes.append(change)
    return plan.model_copy(update={"changes": changes}) if touched else plan


def expected_before(change: WriteFile | RemoveFile) -> Expected:
    return Expected(change.before_sha256)


def chain_still_applies(plans: Iterable[Plan], view: TargetView) -> bool:
    """Whether every plan of a chain (each made on the state the previous
    ones leave) still matches the target: nothing changed since planning."""
    from jupiter.applying import check_preconditions
    from jupiter.targets.overlay import OverlayView

    current: TargetView = view
    for plan in plans:
        try:
            check_preconditions(current, plan)
        except (ConflictError, TargetError):
            return False
        if plan.changes:
            current = OverlayView(current, plan)
    return True


def undo_expectations(plan: Plan, entries: Sequence[ManifestEntry]) -> dict[str, Expected]:
    """For restoring a step's snapshot: each path must still be what the
    step left it as. Paths a command changed have no known result and get
    no expectation (they are restored as before)."""
    out: dict[str, Expected] = {}
    unknown: set[str] = set()
    for change in plan.changes:
        if isinstance(change, WriteFile):
            out[change.path] = Expected(sha256_bytes(change.content.encode()))
        elif isinstance(change, RemoveFile):
            out[change.path] = Expected(None)
        elif isinstance(change, RunCommand):
            unknown.update(change.paths)
    before = {e.path: e for e in entries}
    for change in plan.changes:
        if isinstance(change, SetMode) and change.path not in out:
            entry = before.get(change.path)
            if entry is not None and entry.kind == "file":
                out[change.path] = Expected(entry.sha256)
    for path in unknown:
        out.pop(path, None)
    return out


def observe(view: TargetView, paths: Iterable[str]) -> dict[str, Expected]:
    """The current content state of ``paths`` (regular files by hash, absent
    paths as absent; other kinds get no expectation)."""
    out: dict[str, Expected] = {}
    for path in paths:
        st = view.stat(path)
        if st is None:
            out[path] = Expected(None)
        elif st.kind == "file":
            try:
                out[path] = Expected(hashlib.sha256(view.read_bytes(path)).hexdigest())
            except FileNotFoundError:
                out[path] = Expected(None)
    return out
