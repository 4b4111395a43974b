"""Plans: what a remediator wants done, as reviewable, hashable data.

A remediator never writes. It returns a :class:`Plan` — ordered changes plus
the facts a reviewer and the policy need (what kind of change, what must be
reloaded, what a human must do first). The engine snapshots the paths a plan
touches, validates, applies and verifies it.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from jupiter.models import Severity

if TYPE_CHECKING:
    from jupiter.targets.base import TargetView


class Basis(BaseModel):
    """What a file change was planned from, recorded by the engine: the
    content hash (the precondition) and the file's identity at that moment
    (inode where the target can tell, size, mtime), so a conflict can say
    whether the file was edited in place or replaced."""

    model_config = ConfigDict(frozen=True)

    sha256: str | None
    inode: int | None = None
    size: int | None = None
    mtime_ns: int | None = None


class WriteFile(BaseModel):
    """Replace (or create) a text file. ``before_sha256`` is the precondition:
    the hash the file had when the plan was made, or ``None`` if it did not
    exist. The engine refuses to apply when the target no longer matches."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["write"] = "write"
    path: str
    content: str
    before_sha256: str | None
    mode: int | None = None
    planned_from: Basis | None = None


class SetMode(BaseModel):
    """Change permission bits and, optionally, ownership of a path."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["chmod"] = "chmod"
    path: str
    mode: int
    uid: int | None = None
    gid: int | None = None


class RemoveFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["remove"] = "remove"
    path: str
    before_sha256: str | None
    planned_from: Basis | None = None


class RunCommand(BaseModel):
    """A command run on the target as an argument vector, never a shell
    string. ``undo`` is run on rollback; a command without one makes the plan
    only partly reversible, which the plan's risk facts must say."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1)
    undo: list[str] | None = None
    timeout: float = 60.0
    description: str = ""
    paths: list[str] = Field(default_factory=list)
    """Paths the command may change: the engine snapshots them first."""
    watch: bool = False
    """Snapshot the whole target and refuse (restoring it) if the command
    changed anything outside ``paths``: for code Jupiter did not write."""


Change = Annotated[WriteFile | SetMode | RemoveFile | RunCommand, Field(discriminator="kind")]

ChangeKind = Literal[
    "config", "code", "permissions", "dependency_patch", "dependency_minor", "dependency_major"
]


class Risk(BaseModel):
    """Facts about a plan that a reviewer or the policy must weigh."""

    model_config = ConfigDict(frozen=True)

    change_kind: ChangeKind = "config"
    services_to_reload: list[str] = Field(default_factory=list)
    manual_steps: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    disruption: bool = False


class Plan(BaseModel):
    """An ordered list of changes for one finding, with its risk facts.

    ``needs_manual`` is set when the remediator will not change anything by
    itself (it cannot be done safely without a human decision); the reason is
    then reported instead of applied. A plan with no changes and no
    ``needs_manual`` means the target is already fixed.
    """

    model_config = ConfigDict(frozen=True)

    remediator: str
    rule_id: str
    title: str
    severity: Severity = Severity.MEDIUM
    changes: list[Change] = Field(default_factory=list)
    risk: Risk = Field(default_factory=Risk)
    diff: str = ""
    needs_manual: str | None = None
    related_findings: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def touched_paths(self) -> list[str]:
        seen: dict[str, None] = {}
        for change in self.changes:
            if isinstance(change, RunCommand):
                for path in change.paths:
                    seen.setdefault(path, None)
            else:
                seen.setdefault(change.path, None)
        return list(seen)

    @property
    def watches_tree(self) -> bool:
        return any(isinstance(c, RunCommand) and c.watch for c in self.changes)

    def plan_hash(self) -> str:
        """A stable hash over everything that would be applied (and the
        content hashes it was planned from; not the files' stat identity)."""
        body = self.model_dump(mode="json", exclude={"diff"})
        for change in body["changes"]:
            change.pop("planned_from", None)
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def effect_hash(self) -> str:
        """A hash of what the plan *changes*, independent of the rest of the
        files it edits: the lines its diff removes and adds, the paths and
        modes it writes, every other change. A plan re-made on top of someone
        else's unrelated edit has the same effect hash as the one a user
        confirmed; one whose edit itself differs does not."""
        edits = [
            line
            for line in self.diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        other: list[object] = []
        for change in self.changes:
            if isinstance(change, WriteFile):
                # Without a diff to compare, the content itself is the effect.
                body_sha = "" if edits else sha256_bytes(change.content.encode())
                other.append(
                    ["write", change.path, change.mode, change.before_sha256 is None, body_sha]
                )
            elif isinstance(change, RemoveFile):
                other.append(["remove", change.path])
            else:
                other.append(change.model_dump(mode="json"))
        body = [self.remediator, self.rule_id, self.needs_manual, edits, other]
        return hashlib.sha256(orjson.dumps(body)).hexdigest()

    def to_json(self) -> dict[str, object]:
        data = self.model_dump(mode="json")
        data["hash"] = self.plan_hash()
        return data


def unified_diff(path: str, before: str | None, after: str | None) -> str:
    """A ``diff -u`` style diff of one file, ``/dev/null`` for a missing side."""
    a = [] if before is None else before.splitlines(keepends=True)
    b = [] if after is None else after.splitlines(keepends=True)
    lines = difflib.unified_diff(
        a,
        b,
        fromfile="/dev/null" if before is None else f"a/{path}",
        tofile="/dev/null" if after is None else f"b/{path}",
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def file_edits(
    view: TargetView, edits: Iterable[tuple[str, str, str]]
) -> tuple[list[WriteFile], str]:
    """WriteFile changes and their unified diff for text edits given as
    ``(path, before, after)``; unchanged files are skipped. Each change's
    precondition is the hash of the file as ``view`` holds it now."""
    changes: list[WriteFile] = []
    diffs: list[str] = []
    for path, before, after in edits:
        if after == before:
            continue
        current = sha256_bytes(view.read_bytes(path))
        changes.append(WriteFile(path=path, content=after, before_sha256=current))
        diffs.append(unified_diff(path, before, after))
    return changes, "".join(diffs)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
