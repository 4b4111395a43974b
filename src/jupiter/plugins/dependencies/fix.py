"""Remediator ``python-dependencies``: bump vulnerable pins to the lowest fixing version.

Handles every ``dependency`` finding on a Python package: its own (rule id =
the advisory's canonical id, see :mod:`jupiter.plugins.dependencies.detect`) and
those ingested from pip-audit, OSV-Scanner or Trivy, whose own
``fixed_versions`` are honoured too.

For the finding's package the plan covers *every* pin of it that the
finding's advisory affects (or that sits at the finding's version), and
chooses per pinned version the lowest release that no known advisory
affects (:func:`choose_fix_version`) — so one plan fixes all advisories on
that package at once; the others are listed in ``related_findings``.

Only the version characters of the pin change. When a pin cannot be edited
safely the plan is ``needs_manual`` with the exact steps in
``risk.manual_steps``: ``--hash`` pins (new hashes must be generated) and
lock files (``poetry update NAME`` / ``uv lock --upgrade-package NAME``).

The advisory database is ``advisories_dir`` or, when not given,
``$JUPITER_HOME/advisories`` (``./.jupiter/advisories``) read at each use.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import ClassVar, TypedDict

from packaging.utils import canonicalize_name

from jupiter.advisories import Advisory, AdvisoryDB, default_advisories_dir, parse_version
from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Severity, canonical_advisory_id
from jupiter.plans import ChangeKind, Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import NoParams, Remediator, ValidationResult
from jupiter.plugins.dependencies.detect import ECOSYSTEM, DependencyScan, scan_dependencies
from jupiter.plugins.dependencies.parse import (
    PinnedDependency,
    parse_pyproject,
    parse_requirements,
    scan_manifests,
)
from jupiter.plugins.dependencies.versions import (
    bump_kind,
    choose_fix_version,
    edit_pin,
    external_fix_ok,
    widest,
)
from jupiter.plugins.kit import keep_line_endings
from jupiter.targets.base import TargetView
from jupiter.workspace import Workspace

# OSV says PyPI; Trivy names the lock/manifest flavour it read
_PYTHON_ECOSYSTEMS = frozenset({"pypi", "python", "pip", "pipenv", "poetry", "python-pkg", "uv"})


class _Head(TypedDict):
    remediator: str
    rule_id: str
    title: str
    severity: Severity


class PythonDependencies(Remediator[NoParams]):
    """Upgrade vulnerable Python pins in requirements files and pyproject.toml."""

    name: ClassVar[str] = "python-dependencies"
    summary: ClassVar[str] = (
        "bump vulnerable Python dependency pins to the lowest version fixing every advisory"
    )
    categories: ClassVar[frozenset[Category]] = frozenset({Category.DEPENDENCY})

    def __init__(self, advisories_dir: Path | None = None) -> None:
        self.advisories_dir = advisories_dir
        self._dbs: dict[Path, AdvisoryDB] = {}

    def bind(self, workspace: Workspace) -> None:
        if self.advisories_dir is None:
            self.advisories_dir = workspace.advisories

    def advisory_db(self) -> AdvisoryDB:
        """The advisory database in use (resolved from the environment if not given)."""
        directory = self.advisories_dir or default_advisories_dir()
        if directory not in self._dbs:
            self._dbs[directory] = AdvisoryDB(directory)
        return self._dbs[directory]

    def handles(self, finding: FindingRecord) -> bool:
        if finding.category != Category.DEPENDENCY or not finding.location.package:
            return False
        ecosystem = str(finding.extra.get("ecosystem") or "pypi").split(":")[0].lower()
        return ecosystem in _PYTHON_ECOSYSTEMS

    def scan(self, view: TargetView) -> DependencyScan:
        """Findings plus per-file parse errors and notes (why a result is empty)."""
        return scan_dependencies(view, self.advisory_db())

    def detect(self, view: TargetView, params: NoParams | None = None) -> list[FindingRecord]:
        """Vulnerable pins; unreadable files are in :meth:`scan`'s ``errors``."""
        return self.scan(view).findings

    def survey(
        self, view: TargetView, params: NoParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        result = self.scan(view)
        return result.findings, [str(e) for e in result.errors]

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: NoParams) -> bool:
        """No pin of the package is still vulnerable to the finding's advisory.

        Not the default issue-key comparison: a scanner's finding may name the
        installed version rather than the pinned one, and without advisories
        detection is empty; a package pinned nowhere, or only fixable by hand,
        is not reported fixed.
        """
        plan = self.plan(finding, view, params)
        return plan.empty and plan.needs_manual is None

    def plan(self, finding: FindingRecord, view: TargetView, params: NoParams) -> Plan:
        package = canonicalize_name(finding.location.package or "")
        base: _Head = {
            "remediator": self.name,
            "rule_id": finding.rule_id,
            "title": finding.title,
            "severity": finding.severity,
        }
        if not package:
            return Plan(
                **base,
                needs_manual="the finding names no package, so there is no "
                "pin to change; fix it by hand",
            )
        manifests = scan_manifests(view)
        pins = [d for d in manifests.dependencies if d.name == package]
        if not pins:
            unreadable = "; ".join(str(e) for e in manifests.errors)
            return Plan(
                **base,
                needs_manual=(
                    f"{package} is not pinned in any readable requirements file, pyproject.toml "
                    "or lock file of the target; upgrade it where it is installed"
                    + (f" (unreadable: {unreadable})" if unreadable else "")
                ),
            )
        db = self.advisory_db()
        known = db.advisories_for(ECOSYSTEM, package)
        ids = {i.upper() for i in (finding.rule_id, *finding.aliases) if i}
        own = [a for a in known if ids & {i.upper() for i in (a.id, *a.aliases)}]
        vulnerable = [
            p
            for p in pins
            if _same_version(p.version, finding.location.version)
            or any(a.affects(p.version) for a in own)
            or (not own and _below_fix(p.version, finding.fixed_versions))
        ]
        if not vulnerable:
            return Plan(**base)  # already fixed: every pin is past the advisory
        targets: dict[str, str] = {}
        fixed_here: dict[str, Advisory] = {}
        for version in sorted({p.version for p in vulnerable}):
            # the scanner's fix list speaks for its version, or for any when the DB is silent
            external = (
                finding.fixed_versions
                if not own or _same_version(version, finding.location.version)
                else []
            )
            target = choose_fix_version(version, known, external)
            affecting = [a for a in known if a.affects(version)]
            fixed_here.update({a.canonical_id: a for a in affecting})
            if target is None:
                names = ", ".join(a.canonical_id for a in affecting) or finding.rule_id
                return Plan(
                    **base,
                    needs_manual=(
                        f"no known release of {package} above {version} fixes {names} without "
                        "another known advisory; replace the package or record a waiver"
                    ),
                )
            targets[version] = target
        own_id = canonical_advisory_id([finding.rule_id, *finding.aliases])
        related = sorted(set(fixed_here) - {own_id})
        severity = max(
            [finding.severity, *(a.severity for a in fixed_here.values() if a.severity)],
            key=lambda s: s.rank,
        )
        kind = widest([bump_kind(v, t) for v, t in targets.items()])
        moves = ", ".join(f"{v} -> {t}" for v, t in targets.items())
        count = len(fixed_here) or 1
        title = f"Upgrade {package} {moves} (fixes {count} advisor{'y' if count == 1 else 'ies'})"
        base["title"], base["severity"] = title, severity
        manual = [
            _manual_step(p, targets[p.version])
            for p in vulnerable
            if p.hashed or p.locked or not p.line
        ]
        if manual:
            # the editable pins are part of the same manual fix, and come before the lock step
            edits = [
                f"{p.path}:{p.line}: change {p.display_name} {p.version} to {targets[p.version]}"
                for p in vulnerable
                if not (p.hashed or p.locked or not p.line)
            ]
            return Plan(
                **base,
                related_findings=related,
                risk=Risk(change_kind=kind, manual_steps=edits + manual),
                needs_manual=(
                    f"{package} {moves} needs steps Jupiter does not run itself "
                    "(hash or lock regeneration); see the manual steps"
                ),
            )
        return self._write_plan(base, vulnerable, targets, view, kind, related)

    def _write_plan(
        self,
        base: _Head,
        pins: list[PinnedDependency],
        targets: dict[str, str],
        view: TargetView,
        kind: ChangeKind,
        related: list[str],
    ) -> Plan:
        changes: list[WriteFile] = []
        diffs: list[str] = []
        for path in sorted({p.path for p in pins}):
            data = view.read_bytes(path)
            before = data.decode("utf-8")
            lines = before.splitlines(keepends=True)
            for pin in (p for p in pins if p.path == path):
                if not edit_pin(lines, pin, targets[pin.version]):
                    return Plan(
                        **base,
                        needs_manual=(
                            f"{path}:{pin.line}: the pin of {pin.display_name} {pin.version} could "
                            f"not be located for editing; set it to {targets[pin.version]} by hand"
                        ),
                    )
            after = keep_line_endings(before, "".join(lines))
            changes.append(WriteFile(path=path, content=after, before_sha256=sha256_bytes(data)))
            diffs.append(unified_diff(path, before, after))
        warnings = []
        if kind == "dependency_major":
            warnings.append("major version upgrade: read the release notes and run the tests")
        return Plan(
            **base,
            changes=list(changes),
            diff="".join(diffs),
            related_findings=related,
            risk=Risk(change_kind=kind, warnings=warnings),
        )

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Re-parse every changed file with the strict parser pip's grammar uses."""
        results: list[ValidationResult] = []
        for path in plan.touched_paths():
            try:
                text = candidate.read_bytes(path).decode("utf-8")
                if path.rsplit("/", 1)[-1] == "pyproject.toml":
                    tomllib.loads(text)
                    parse_pyproject(text, path)
                else:
                    parse_requirements(text, path)
            except (InputError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                results.append(ValidationResult("dependency-file-parse", "failed", str(exc)))
            else:
                results.append(ValidationResult("dependency-file-parse", "passed", path))
        return results


def _same_version(a: str, b: str | None) -> bool:
    if b is None:
        return False
    pa, pb = parse_version(a), parse_version(b)
    return a == b if pa is None or pb is None else pa == pb


def _below_fix(version: str, fixed_versions: list[str]) -> bool:
    """A scanner's finding without DB ranges: is ``version`` short of its fixes?"""
    parsed = parse_version(version)
    return (
        bool(fixed_versions) and parsed is not None and not external_fix_ok(parsed, fixed_versions)
    )


def _manual_step(pin: PinnedDependency, target: str) -> str:
    name = pin.display_name
    if pin.kind == "poetry.lock":
        return (
            f"{pin.path}: locks {name} {pin.version}; set {name} to allow {target} in "
            f"pyproject.toml if it is pinned there, then run `poetry update {name}`"
        )
    if pin.kind == "uv.lock":
        return (
            f"{pin.path}: locks {name} {pin.version}; set {name} to allow {target} in "
            f"pyproject.toml if it is pinned there, then run `uv lock --upgrade-package "
            f"{name}`"
        )
    if pin.hashed:
        return (
            f"{pin.path}:{pin.line}: {name}=={pin.version} is hash-pinned; change it to "
            f"{name}=={target} and refresh the hashes (`pip-compile --generate-hashes "
            f"--upgrade-package {name}=={target}` on its .in file), or old hashes will "
            "make pip refuse the install"
        )
    return f"{pin.path}: set {name} to {target} (the pin's line could not be located)"
