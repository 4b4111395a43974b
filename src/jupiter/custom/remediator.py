"""Custom scripts as remediators: one :class:`CustomScriptRemediator` per
registered script, named ``custom-<name>``.

What a caller needs to know:

* ``detect`` returns ``[]``: a custom script fixes findings that scanners or
  built-in detectors produced; it has no check of its own. Verification is
  the manifest's ``verify`` (a command, or a built-in detector).
* ``plan`` changes nothing. Its one change is a :class:`RunCommand` that
  runs the script through :mod:`jupiter.custom.sandbox` (bubblewrap, limits,
  scrubbed environment, sha256 check; see :mod:`jupiter.custom.confine`)
  with ``paths`` = the manifest's paths expanded against the view and
  ``watch=True``: the engine snapshots the whole tree and refuses
  (restoring it) if the script changed anything else. A glob that matches
  nothing allows nothing: declare files a script creates by their literal
  path. The diff is a description, because a script's effect
  cannot be known before it runs.
* Local and SSH targets are supported (a candidate view of either is
  accepted, so a script can follow another fix in a chain). Before planning,
  the host is asked once whether it can confine the script
  (:func:`~jupiter.custom.confine.check_host`): a host that cannot is an
  InputError, and nothing runs.
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
from typing import ClassVar, cast

from jupiter.custom.confine import check_host, command_argv, script_argv, where
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


def confinement(m: ScriptManifest) -> str:
    """One line saying how the script is confined, for the plan's diff."""
    net = "network: OPEN" if m.network else "network: none"
    text = f"sandbox: bubblewrap, host read-only, private /tmp, {net}, runs as {m.run_as}"
    if m.sandbox == "none":
        text += "; UNCONFINED on a host without bubblewrap (sandbox: none)"
    return text


def risk_facts(m: ScriptManifest) -> list[str]:
    """What a reviewer (and the approval rules) must weigh beyond the change itself."""
    facts = [
        "custom script: its effect cannot be previewed; the declared paths are "
        "snapshotted and the rest of the target tree is watched",
    ]
    if m.network:
        facts.append("custom script: network access is open (network: true)")
    if m.needs_root:
        facts.append(f"custom script: runs as root (needs_root): {m.root_reason}")
    if m.sandbox == "none":
        facts.append(
            "custom script: sandbox: none, so on a host without bubblewrap it runs "
            "unconfined, with everything its login user can reach"
        )
    return facts


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
        a target that is neither local nor SSH, a host that cannot confine
        the script, or a script modified since registration."""
        m = self.manifest
        self._script.check_unchanged()
        at = check_host(view, m)
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
        script = self._script.script_path
        data = self._script.read_checked()
        shown = [*(m.interpreter or []), m.script, *args]
        command = RunCommand(
            argv=script_argv(at.kind, m, script, data, args, paths),
            paths=paths,
            watch=True,
            timeout=m.timeout,
            description=f"run custom script {m.name!r} in a sandbox: {m.description}",
        )
        diff = (
            f"# custom script {m.name!r} cannot be previewed as a diff: its effect is known\n"
            f"# only after it runs. It will run in the target root as:\n"
            f"#   {shlex.join(shown)}\n"
            f"# and may change only: {', '.join(paths)}\n"
            f"# (anything else it changes is refused and restored from the snapshot)\n"
            f"# {confinement(m)}\n"
        )
        risk = Risk(change_kind=m.change_kind, warnings=risk_facts(m))
        return base.model_copy(update={"changes": [command], "risk": risk, "diff": diff})

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: NoParams) -> bool:
        """Run the verify command on a real Target (exit 0 = fixed; ``False`` on
        a read-only view), or ask the named detector."""
        verify = self.manifest.verify
        if isinstance(verify, DetectorVerify):
            return self._detector_fixed(verify, finding, view)
        assert isinstance(verify, CommandVerify)
        if not isinstance(view, Target):
            return False
        try:
            kind = where(view).kind
            program = [substitute(a, finding) for a in verify.command]
        except (_Unusable, InputError):
            return False
        label = f"verify command of {self.manifest.name}"
        result = view.run(command_argv(kind, self.manifest, program, label), self.manifest.timeout)
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
