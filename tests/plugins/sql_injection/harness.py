"""Helpers shared by tests/plugins/sql_injection/test_sql_injection_*.py.

Imported as ``tests.plugins.sql_injection.harness``.
Copies a fixture module into a target, runs the remediator's three steps
(detect → plan → apply) until no fixable finding is left, and imports
modules from files under unique names.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.base import NoParams
from jupiter.plugins.sql_injection.fix import SqlInjectionPython
from jupiter.targets.local import LocalTarget

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "sqli"


@dataclass
class FixRun:
    target: LocalTarget
    path: str
    original: str
    applied: list[Plan] = field(default_factory=list)
    manual: list[Plan] = field(default_factory=list)

    @property
    def fixed(self) -> str:
        return self.target.read_bytes(self.path).decode()

    @property
    def fixed_path(self) -> Path:
        return self.target.root / self.path


def copy_fixture(root: Path, name: str, as_name: str | None = None) -> LocalTarget:
    dest = root / (as_name or name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / name, dest)
    return LocalTarget(root)


def apply_plan(target: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        assert sha256_bytes(target.read_bytes(change.path)) == change.before_sha256
        target.write_bytes(change.path, change.content.encode())


def fix_all(target: LocalTarget, path: str) -> FixRun:
    """Plan and apply every finding of ``path`` in turn, as the engine would
    (each plan reads the file as the previous apply left it); after each
    apply, re-planning the same finding must give an empty plan."""
    remediator = SqlInjectionPython()
    run = FixRun(target, path, target.read_bytes(path).decode())
    findings = [f for f in remediator.detect(target) if f.location.path == path]
    for finding in findings:
        plan = remediator.plan(finding, target, NoParams())
        if plan.needs_manual:
            assert not plan.changes
            run.manual.append(plan)
            continue
        assert plan.changes, f"plan for {finding.evidence} is empty but detect reports it"
        assert not remediator.is_fixed(finding, target, NoParams())
        apply_plan(target, plan)
        assert remediator.is_fixed(finding, target, NoParams())
        again = remediator.plan(finding, target, NoParams())
        assert again.empty and again.needs_manual is None, again
        run.applied.append(plan)
    # Verification: detect again reports only what was left for a human.
    left = [f for f in remediator.detect(target) if f.location.path == path]
    assert len(left) == len(run.manual), [f.evidence for f in left]
    return run


_FIXED: dict[str, FixRun] = {}


def fixed_fixture(root_factory: Callable[[str], Path], name: str) -> FixRun:
    """The fix of fixture ``name``, made once per test session (the result is
    only read afterwards); ``root_factory`` is ``tmp_path_factory.mktemp``."""
    if name not in _FIXED:
        root = root_factory(name.removesuffix(".py"))
        _FIXED[name] = fix_all(copy_fixture(root, name), name)
    return _FIXED[name]


def import_file(path: Path) -> ModuleType:
    name = f"sqli_fixture_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
