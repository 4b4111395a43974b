"""A read-only view of a target as it will be once a plan is applied.

Validators run against this candidate *before* anything reaches the real
target, so a config the daemon would reject is never written.
"""

from __future__ import annotations

import fnmatch

from jupiter.plans import Plan, RemoveFile, SetMode, WriteFile
from jupiter.targets.base import FileState, TargetView, normalise_relpath


class OverlayView:
    """``base`` with the file writes, removals and mode changes of ``plan``."""

    def __init__(self, base: TargetView, plan: Plan) -> None:
        self._base = base
        self._files: dict[str, bytes | None] = {}
        self._modes: dict[str, int] = {}
        for change in plan.changes:
            if isinstance(change, WriteFile):
                path = normalise_relpath(change.path)
                self._files[path] = change.content.encode()
                if change.mode is not None:
                    self._modes[path] = change.mode
            elif isinstance(change, RemoveFile):
                path = normalise_relpath(change.path)
                self._files[path] = None
                self._modes.pop(path, None)
            elif isinstance(change, SetMode):
                self._modes[normalise_relpath(change.path)] = change.mode

    @property
    def base(self) -> TargetView:
        """The target as it is now, without the plan."""
        return self._base

    def changed_paths(self) -> list[str]:
        return sorted(set(self._files) | set(self._modes))

    def describe(self) -> str:
        return f"candidate of {self._base.describe()}"

    def read_bytes(self, path: str) -> bytes:
        rel = normalise_relpath(path)
        if rel in self._files:
            data = self._files[rel]
            if data is None:
                raise FileNotFoundError(rel)
            return data
        return self._base.read_bytes(rel)

    def stat(self, path: str) -> FileState | None:
        rel = normalise_relpath(path)
        base = self._base.stat(rel)
        if rel in self._files:
            data = self._files[rel]
            if data is None:
                return None
            mode = self._modes.get(rel, base.mode if base else 0o644)
            return FileState(
                rel, "file", len(data), mode, base.uid if base else 0, base.gid if base else 0
            )
        if base is not None and rel in self._modes:
            return FileState(
                rel,
                base.kind,
                base.size,
                self._modes[rel],
                base.uid,
                base.gid,
                base.inode,
                base.mtime_ns,
                base.nlink,
            )
        return base

    def glob(self, pattern: str) -> list[str]:
        found = set(self._base.glob(pattern))
        for rel, data in self._files.items():
            if fnmatch.fnmatchcase(rel, pattern) and rel.count("/") == pattern.count("/"):
                if data is None:
                    found.discard(rel)
                else:
                    found.add(rel)
        return sorted(found)

    def walk(self, under: str = "") -> list[str]:
        found = set(self._base.walk(under))
        prefix = normalise_relpath(under) + "/" if under else ""
        for rel, data in self._files.items():
            if rel.startswith(prefix):
                if data is None:
                    found.discard(rel)
                else:
                    found.add(rel)
        return sorted(found)
