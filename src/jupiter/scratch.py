"""Scratch space that a killed process does not leave behind for good.

A process killed with SIGKILL runs no ``finally`` and no ``atexit``: its
temporary directories (validator sandboxes, throw-away keys) and the temp
file of a write it was in the middle of stay where they are. Every scratch
directory Jupiter makes is therefore named ``jupiter-WHAT-PID-XXXX`` in the
system temp directory, and a target write's temp file is
``.NAME.jupiter-<12 hex>.tmp`` next to the file; recovery (``jupiter runs
recover``, the worker's reaper, remediation ``resume``) calls
:func:`sweep_stale` and :func:`sweep_target_temps` to remove those whose
process is gone.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import stat as stat_mod
import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from jupiter.errors import JupiterError
from jupiter.faults import checkpoint

if TYPE_CHECKING:
    from jupiter.targets.base import Target

_SCRATCH = re.compile(r"^jupiter-([a-z][a-z-]*?)-(\d+)-[A-Za-z0-9_]+$")
_TARGET_TEMP = re.compile(r"^\..+\.jupiter-[0-9a-f]{12}\.tmp$")


def scratch_dir(what: str) -> str:
    """A new private directory ``jupiter-WHAT-PID-XXXX`` in the temp directory."""
    return tempfile.mkdtemp(prefix=f"jupiter-{what}-{os.getpid()}-")


@contextlib.contextmanager
def scratch(what: str) -> Iterator[str]:
    """:func:`scratch_dir`, removed when the block ends."""
    path = scratch_dir(what)
    try:
        checkpoint("scratch.open")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: str | None = None) -> list[str]:
    """Remove scratch directories (ours: same owner) whose process is gone;
    returns their paths."""
    base = base or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        match = _SCRATCH.match(name)
        if match is None or _alive(int(match.group(2))):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat_mod.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def sweep_target_temps(target: Target, paths: Iterable[str]) -> list[str]:
    """Remove write temp files (``.NAME.jupiter-<hex>.tmp``) in the
    directories of ``paths`` on ``target`` (local or SSH: through the Target
    protocol, so never outside its root). The caller holds the target's
    lock, so no live Jupiter write can own them. Returns the removed paths."""
    removed: list[str] = []
    for rel_dir in sorted({posixpath.dirname(p) for p in paths}):
        pattern = f"{rel_dir}/.*.jupiter-*.tmp" if rel_dir else ".*.jupiter-*.tmp"
        try:
            found = target.glob(pattern)
        except JupiterError:
            continue
        for rel in found:
            if _TARGET_TEMP.match(posixpath.basename(rel)):
                state = target.stat(rel)
                if state is not None and state.kind == "file":
                    target.remove(rel)
                    removed.append(rel)
    return removed
