"""What an exported fix script does, computed once for every format.

Plans come in the order they are to be applied (each planned on the state
the previous ones leave). :func:`build_script_model` follows them file by
file and reduces them to:

* ``paths`` — every file the plans touch, with the state it must be in
  before the script runs (``before``) and the state the script leaves
  (``after``, ``after_mode``). A script refuses a file that is in neither.
* ``steps`` — the ordered operations: each file is written once, with its
  final content, at the place of its last write in the plans; mode changes,
  removals, commands and generated keys and certificates keep their order.
  A generated file (``generate`` step) is made on the host by ``openssl`` when
  the script runs: the script never holds a private key, and its state after
  the run is ``exists`` (its content cannot be known in advance).

States are strings so that every script format can compare them:
``sha256:<hex>`` (exact content), ``absent``, ``exists`` (any content, the
file must be there: only a mode changes), ``any`` (not checked: a path a
command may change) and, for ``after``, ``same`` (content left as found).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from jupiter.errors import InputError, PathEscapeError
from jupiter.keygen import Recipe, openssl_recipe
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
from jupiter.targets.base import normalise_relpath

# Printable and free of what YAML/Jinja/shell heredocs could trip over; every
# format still quotes paths, this only keeps the change board's view legible.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._+@:,=/~ -]+$")


class PlanForExport(BaseModel):
    """One plan to export, with what a reviewer needs to know about it."""

    model_config = ConfigDict(frozen=True)

    plan: Plan
    finding_id: str
    rule_id: str
    title: str
    target: str


@dataclass
class TrackedPath:
    index: int
    path: str
    before: str
    after: str
    after_mode: int | None = None
    owner: tuple[int, int] | None = None

    @property
    def decided(self) -> bool:
        """Whether the script can tell the fixed state from the original."""
        return not (self.before == "any" and self.after in ("any", "same"))


@dataclass(frozen=True)
class Step:
    kind: str  # "write", "chmod", "remove", "command" or "generate"
    path: int = -1  # index into ScriptModel.paths
    content: str = ""  # base64 of the bytes to write
    sha256: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    argv: tuple[str, ...] = ()
    undo: tuple[str, ...] | None = None
    timeout: float = 60.0
    description: str = ""
    plan: int = 0  # index into ScriptModel.items
    services: tuple[str, ...] = ()  # to reload when this step changes something
    recipe: Recipe | None = None  # for "generate": openssl commands with placeholders
    key_path: int = -1  # for "generate" of a certificate: index of its key's path
    ca_cert: str = ""  # for a CA-issued certificate: target paths of the CA's files
    ca_key: str = ""
    what: str = ""  # for "generate": one line a reviewer reads


@dataclass
class ScriptModel:
    items: list[PlanForExport]
    paths: list[TrackedPath] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    @property
    def script_id(self) -> str:
        """Stable id of this export: names its backup directory."""
        joined = "\n".join(item.plan.plan_hash() for item in self.items)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    @property
    def has_commands(self) -> bool:
        return any(s.kind == "command" for s in self.steps)


def _path(raw: str, where: str) -> str:
    try:
        path = normalise_relpath(raw)
    except PathEscapeError as exc:
        raise InputError(f"{where}: {exc}") from None
    if not _SAFE_PATH.match(path):
        raise InputError(
            f"{where}: path {path!r} has characters an exported script will not carry; "
            "apply this plan with 'jupiter remediate' instead"
        )
    return path


def build_script_model(items: list[PlanForExport]) -> ScriptModel:
    """Reduce ``items`` to tracked paths and steps; InputError when the plans
    do not chain (a plan expects a file state an earlier plan does not leave)."""
    if not items:
        raise InputError("nothing to export: give at least one plan")
    model = ScriptModel(items=list(items))
    by_path: dict[str, TrackedPath] = {}
    last_write: dict[str, int] = {}
    pending: list[tuple[str, Step]] = []
    writers: dict[str, list[str]] = {}  # services of every plan that writes a path

    def track(path: str, before: str) -> TrackedPath:
        if path not in by_path:
            by_path[path] = TrackedPath(len(by_path), path, before, "same")
        return by_path[path]

    for number, item in enumerate(items):
        plan = item.plan
        where = f"plan {number + 1} ({item.rule_id}, finding {item.finding_id})"
        if plan.needs_manual:
            model.manual.append(f"{where}: {plan.needs_manual}")
            continue
        services = tuple(plan.risk.services_to_reload)
        for change in plan.changes:
            if isinstance(change, RunCommand):
                for raw in change.paths:
                    track(_path(raw, where), "any").after = "any"
                pending.append(
                    (
                        "",
                        Step(
                            "command",
                            argv=tuple(change.argv),
                            undo=tuple(change.undo) if change.undo else None,
                            timeout=change.timeout,
                            description=change.description,
                            plan=number,
                            services=services,
                        ),
                    )
                )
                continue
            path = _path(change.path, where)
            if isinstance(change, GenerateKey | IssueCertificate):
                expected = (
                    "absent" if change.before_sha256 is None else f"sha256:{change.before_sha256}"
                )
                tracked = track(path, expected)
                _chain(tracked, expected, where)
                tracked.after, tracked.after_mode = "exists", change.mode
                key_index, ca_cert, ca_key, what = -1, "", "", "private key " + change.path
                if isinstance(change, IssueCertificate):
                    key_index = track(_path(change.key_path, where), "exists").index
                    ca_cert = _path(change.ca_cert_path, where) if change.ca_cert_path else ""
                    ca_key = _path(change.ca_key_path, where) if change.ca_key_path else ""
                    what = change.describe()
                last_write.pop(path, None)
                pending.append(
                    (
                        "",
                        Step(
                            "generate",
                            tracked.index,
                            mode=change.mode,
                            plan=number,
                            recipe=openssl_recipe(change),
                            key_path=key_index,
                            ca_cert=ca_cert,
                            ca_key=ca_key,
                            what=what,
                        ),
                    )
                )
            elif isinstance(change, WriteFile):
                expected = (
                    "absent" if change.before_sha256 is None else (f"sha256:{change.before_sha256}")
                )
                tracked = track(path, expected)
                _chain(tracked, expected, where)
                data = change.content.encode()
                tracked.after = f"sha256:{sha256_bytes(data)}"
                if change.mode is not None:
                    tracked.after_mode = change.mode
                elif expected == "absent":
                    tracked.after_mode = 0o644
                last_write[path] = len(pending)
                listed = writers.setdefault(path, [])
                listed.extend(s for s in services if s not in listed)
                pending.append(
                    (
                        path,
                        Step(
                            "write",
                            tracked.index,
                            base64.b64encode(data).decode(),
                            sha256_bytes(data),
                            change.mode
                            if change.mode is not None
                            else (0o644 if expected == "absent" else None),
                            plan=number,
                        ),
                    )
                )
            elif isinstance(change, SetMode):
                tracked = track(path, "exists")
                if tracked.after == "absent":
                    raise InputError(
                        f"{where}: changes the mode of {path}, which an earlier plan removes"
                    )
                tracked.after_mode = change.mode
                if change.uid is not None and change.gid is not None:
                    tracked.owner = (change.uid, change.gid)
                pending.append(
                    (
                        "",
                        Step(
                            "chmod",
                            tracked.index,
                            mode=change.mode,
                            uid=change.uid,
                            gid=change.gid,
                            plan=number,
                            services=services,
                        ),
                    )
                )
            else:
                assert isinstance(change, RemoveFile)
                expected = (
                    "any" if change.before_sha256 is None else (f"sha256:{change.before_sha256}")
                )
                tracked = track(path, expected)
                _chain(tracked, expected, where)
                tracked.after, tracked.after_mode = "absent", None
                last_write.pop(path, None)
                pending.append(("", Step("remove", tracked.index, plan=number, services=services)))
        for service in plan.risk.services_to_reload:
            if service not in model.services:
                model.services.append(service)
    for position, (path, step) in enumerate(pending):
        # A file written by several plans is written once, with its final
        # content: the intermediate states are never on disk.
        if step.kind != "write" or last_write.get(path) == position:
            if step.kind == "write":
                final = by_path[path]
                step = Step(
                    "write",
                    step.path,
                    _final_content(pending, path, final),
                    final.after.removeprefix("sha256:"),
                    final.after_mode,
                    plan=step.plan,
                    services=tuple(writers[path]),
                )
            model.steps.append(step)
    for tracked in by_path.values():
        if tracked.after == "same":  # only the mode changed: the content stays as found
            tracked.after = tracked.before
    model.paths = sorted(by_path.values(), key=lambda t: t.index)
    return model


def _final_content(pending: list[tuple[str, Step]], path: str, final: TrackedPath) -> str:
    for p, step in reversed(pending):
        if p == path and step.kind == "write":
            return step.content
    raise AssertionError(f"no write for {path}")  # pragma: no cover - guarded by caller


def _chain(tracked: TrackedPath, expected: str, where: str) -> None:
    """A later plan must expect what the earlier ones leave."""
    if tracked.after == "same":  # earlier plans only changed its mode
        if tracked.before == "exists" and expected != "absent":
            tracked.before = expected  # now we know the content it must have
        elif tracked.before not in (expected, "any") and expected != "any":
            raise InputError(
                f"{where}: expects {tracked.path} as {expected}, but an earlier "
                f"plan expects it as {tracked.before}; export plans made on one state"
            )
        return
    if tracked.after == "any" or expected == "any":
        return
    if tracked.after != expected:
        raise InputError(
            f"{where}: expects {tracked.path} as {expected}, but the plans before it leave it "
            f"as {tracked.after}; export plans made one after another on the same target "
            "(plan, apply to a copy, plan the next)"
        )
