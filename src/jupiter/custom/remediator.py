"""Custom scripts as remediators: one :class:`CustomScriptRemediator` per
registered script, named ``custom-<name>``.

What a caller needs to know:

* ``detect`` returns ``[]``: a custom script fixes findings that scanners or
  built-in detectors produced; it has no check of its own. Verification is
  the manifest's ``verify`` (a command, or a built-in detector).
* ``plan`` is pure. Its one change is a :class:`RunCommand` that runs the
  script through :mod:`jupiter.custom.sandbox` (limits, scrubbed
  environment, sha256 check) with ``paths`` = the manifest's paths expanded
  against the view and ``watch=True``: the engine snapshots the whole tree
  and refuses (restoring it) if the script changed anything else. A glob
  that matches nothing allows nothing: declare files a script creates by
  their literal path. The diff is a description, because a script's effect
  cannot be known before it runs.
* Only local targets are supported (the script lives on the Jupiter host):
  ``plan`` raises InputError for any other target (a candidate view of a
  local target is accepted, so a script can follow another fix in a chain).
* With a ``verify.command``, ``is_fixed`` must run the command, so it needs
  the real :class:`~jupiter.targets.base.Target`; on a read-only view (such
  as the candidate ``OverlayView``) it answers ``False``. Such a plan cannot
  tell beforehand that the target is already fixed, so scripts must be
  idempotent. With ``verify.detector`` the plan is empty when the detector
  no longer reports the finding; a finding that detector does not handle
  (it could never report it) gets a ``needs_manual`` plan and is never
  considered fixed, so verification cannot pass vacuously.
* ``{finding.<field>}`` in ``args``, ``paths`` and ``verify.command`` is
  replaced inside each argument, never through a shell. A value that would
  start an argument with ``-`` (read as an option), a path escaping the
  root, or a field the finding lacks makes the plan ``needs_manual``.
"""

from __future__ import annotations

import shlex
import sys
from typing import ClassVar, cast

from jupiter.custom.manifest import (
    PLACEHOLDER,
    CommandVerify,
    DetectorVerify,
    ScriptManifest,
    is_glob,
)
from jupiter.custom.store import (
    MANIFEST_NAME,
    RegisteredScript,
    builtin_registry,
    load_registered,
    registered_scripts,
    scripts_dir,
)
from jupiter.errors import InputError, JupiterError, PathEscapeError
from jupiter.models import FindingRecord
from jupiter.plans import Plan, Risk, RunCommand
from jupiter.plugins.base import AnyRemediator, NoParams, Remediator, ValidationResult
from jupiter.targets.base import CommandResult, Target, TargetView, normalise_relpath
from jupiter.workspace import Workspace

SANDBOX_MODULE = "jupiter.custom.sandbox"


class _Unusable(Exception):
    """A finding value cannot be placed into the script's arguments safely."""


def _finding_value(finding: FindingRecord, field: str) -> str:
    loc = finding.location
    raw: object = {
        "path": loc.path,
        "rule_id": finding.rule_id,
        "package": loc.package,
        "version": loc.version,
        "start_line": loc.start_line,
        "identity": finding.identity,
        "asset": finding.asset,
    }.get(field)
    if raw is None or raw == "":
        raise _Unusable(f"the finding has no {field}, which the script's manifest uses")
    value = str(raw)
    if "\x00" in value:
        raise _Unusable(f"the finding's {field} contains a NUL byte")
    if field == "path":
        try:
            value = normalise_relpath(value)
        except PathEscapeError as exc:
            raise _Unusable(str(exc)) from None
    return value


def substitute(template: str, finding: FindingRecord) -> str:
    """Replace ``{finding.<field>}`` in one argument; the result stays one argument."""
    out = PLACEHOLDER.sub(lambda m: _finding_value(finding, m.group(1)), template)
    if out.startswith("-") and PLACEHOLDER.match(template):
        raise _Unusable(f"the finding value {out!r} starts with '-' and would be read as an option")
    return out


def sandbox_argv(
    manifest: ScriptManifest, program: list[str], sha_checks: list[tuple[str, str]], label: str
) -> list[str]:
    """The argument vector running ``program`` inside the sandbox wrapper."""
    lim = manifest.limits
    argv = [
        sys.executable,
        "-I",
        "-m",
        SANDBOX_MODULE,
        "--cpu",
        str(lim.cpu_seconds),
        "--memory",
        str(lim.memory_mb),
        "--fsize",
        str(lim.file_size_mb),
        "--nofile",
        str(lim.open_files),
        "--nproc",
        str(lim.processes),
    ]
    for path, digest in sha_checks:
        argv += ["--check-sha256", path, digest]
    argv += ["--label", label]
    return [*argv, "--", *program]


def is_local(view: TargetView) -> bool:
    """Whether ``view`` is a local target, or a candidate view built on one
    (the engine plans a chain of fixes on the state earlier plans leave)."""
    described = view.describe()
    while described.startswith("candidate of "):
        described = described.removeprefix("candidate of ")
    return described.startswith("local:")


class CustomScriptRemediator(Remediator[NoParams]):
    """A registered custom script; build one with :func:`make_remediator`."""

    name: ClassVar[str] = "custom-script"

    def __init__(self, script: RegisteredScript, workspace: Workspace) -> None:
        self._script = script
        self._workspace = workspace
        self.last_verification: CommandResult | None = None
        """Output of the last verify command run by :meth:`is_fixed`."""

    @property
    def manifest(self) -> ScriptManifest:
        return self._script.manifest

    def bind(self, workspace: Workspace) -> None:
        self._workspace = workspace

    def detect(self, view: TargetView, params: NoParams | None = None) -> list[FindingRecord]:
        """Always ``[]``: custom scripts fix findings that others detect."""
        return []

    def _detector(self, name: str) -> AnyRemediator:
        plugin = builtin_registry().get(name)
        plugin.bind(self._workspace)
        return plugin

    def _detector_fixed(
        self, verify: DetectorVerify, finding: FindingRecord, view: TargetView
    ) -> bool:
        plugin = self._detector(verify.detector)
        if not plugin.handles(finding):
            return False  # it would never report this finding: proof of nothing
        fixed: bool = plugin.is_fixed(finding, view, plugin.default_params())
        return fixed

    def _expand_paths(self, finding: FindingRecord, view: TargetView) -> list[str]:
        seen: dict[str, None] = {}
        for pattern in self.manifest.paths:
            text = substitute(pattern, finding)
            try:
                path = normalise_relpath(text)
            except PathEscapeError as exc:
                raise _Unusable(str(exc)) from None
            # Only the manifest's own text makes a glob: a finding's value
            # (a path with '[' in it) is always taken literally.
            if not is_glob(PLACEHOLDER.sub("", pattern)):
                seen.setdefault(path, None)
                continue
            for match in view.glob(path):
                state = view.stat(match)
                if state is not None and state.kind != "dir":
                    seen.setdefault(match, None)
        return list(seen)

    def plan(self, finding: FindingRecord, view: TargetView, params: NoParams) -> Plan:
        """One sandboxed RunCommand (see the module docstring); InputError for
        non-local targets or a script modified since registration."""
        m = self.manifest
        if not is_local(view):
            raise InputError(
                f"custom script {m.name!r} can only run on local targets, not "
                f"{view.describe()}; use a local: asset or a built-in remediator"
            )
        self._script.check_unchanged()
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            title=f"{m.description} ({finding.title})",
            severity=finding.severity,
        )
        if isinstance(m.verify, DetectorVerify):
            if not self._detector(m.verify.detector).handles(finding):
                return base.model_copy(
                    update={
                        "needs_manual": (
                            f"custom script {m.name!r}: its verify detector "
                            f"{m.verify.detector!r} does "
                            f"not handle rule {finding.rule_id!r}, so it could not verify the fix; "
                            "verify with a command instead"
                        )
                    }
                )
            if self._detector_fixed(m.verify, finding, view):
                return base
        try:
            args = [substitute(a, finding) for a in m.args]
            paths = self._expand_paths(finding, view)
        except _Unusable as exc:
            return base.model_copy(update={"needs_manual": f"custom script {m.name!r}: {exc}"})
        if not paths:
            return base.model_copy(
                update={
                    "needs_manual": f"custom script {m.name!r}: its declared paths "
                    f"{', '.join(m.paths)} match nothing in {view.describe()}"
                }
            )
        script = str(self._script.script_path)
        program = [*(m.interpreter or []), script, *args]
        command = RunCommand(
            argv=sandbox_argv(m, program, [(script, m.sha256 or "")], f"custom script {m.name}"),
            paths=paths,
            watch=True,
            timeout=m.timeout,
            description=f"run custom script {m.name!r}: {m.description}",
        )
        diff = (
            f"# custom script {m.name!r} cannot be previewed as a diff: its effect is known\n"
            f"# only after it runs. It will run in the target root as:\n"
            f"#   {shlex.join(program)}\n"
            f"# and may change only: {', '.join(paths)}\n"
            f"# (anything else it changes is refused and restored from the snapshot)\n"
        )
        risk = Risk(
            change_kind=m.change_kind,
            warnings=[
                "custom script: its effect cannot be previewed; the declared paths are "
                "snapshotted and the rest of the target tree is watched",
            ],
        )
        return base.model_copy(update={"changes": [command], "risk": risk, "diff": diff})

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: NoParams) -> bool:
        """Run the verify command on a real Target (exit 0 = fixed; ``False`` on
        a read-only view), or ask the named detector."""
        verify = self.manifest.verify
        if isinstance(verify, DetectorVerify):
            return self._detector_fixed(verify, finding, view)
        assert isinstance(verify, CommandVerify)
        if not isinstance(view, Target) or not view.describe().startswith("local:"):
            return False
        try:
            program = [substitute(a, finding) for a in verify.command]
        except _Unusable:
            return False
        argv = sandbox_argv(self.manifest, program, [], f"verify command of {self.manifest.name}")
        result = view.run(argv, timeout=self.manifest.timeout)
        self.last_verification = result
        return result.ok

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        return [
            ValidationResult(
                validator=self.name,
                status="skipped",
                detail="a custom script's effect is known only after it runs; the engine watches "
                "the target tree instead",
            )
        ]


def make_remediator(script: RegisteredScript, workspace: Workspace) -> CustomScriptRemediator:
    """A remediator instance for one registered script (its own subclass, so
    that the class attributes ``name``/``rule_ids``/``summary`` are its own)."""
    m = script.manifest
    cls = cast(
        "type[CustomScriptRemediator]",
        type(
            f"CustomScript_{m.name.replace('-', '_')}",
            (CustomScriptRemediator,),
            {
                "name": m.remediator_name,
                "summary": m.description,
                "rule_ids": frozenset(m.rule_ids),
                "__module__": __name__,
            },
        ),
    )
    return cls(script, workspace)


def load_custom_remediators(
    workspace: Workspace, errors: dict[str, str] | None = None
) -> list[AnyRemediator]:
    """One remediator per script registered in ``workspace``.

    Give ``errors`` (e.g. the engine registry's ``errors``) to isolate a
    broken registration: it is recorded there by folder name and skipped;
    without it, the InputError is raised. A script modified since
    registration is still loaded: planning it raises the clear refusal.
    """
    root = scripts_dir(workspace)
    if errors is None:
        return [make_remediator(s, workspace) for s in registered_scripts(workspace)]
    out: list[AnyRemediator] = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            out.append(make_remediator(load_registered(folder), workspace))
        except JupiterError as exc:
            errors[f"custom-{folder.name}"] = f"{folder / MANIFEST_NAME}: {exc}"
    return out
