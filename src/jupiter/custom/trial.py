"""``jupiter scripts test``: run a script once, in its sandbox, on a
throw-away copy of a target, and report what it did.

Nothing is registered and the real target is never written: the target is
copied (symlinks as links) into a temporary folder, the script is planned and
run there exactly as a fix run would (same wrapper, same bubblewrap sandbox,
same declared paths), and the copy is compared before and after. The report
says which declared paths changed, what changed that was not declared (a fix
run would refuse and roll that back), which accesses the sandbox refused
(from the program's error output) and how long the run took.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupiter.custom.manifest import load_manifest
from jupiter.custom.remediator import make_remediator
from jupiter.custom.sandbox import REFUSAL_MARKS
from jupiter.custom.store import RegisteredScript, check_script
from jupiter.errors import InputError
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plans import RunCommand, sha256_bytes
from jupiter.scratch import scratch_dir
from jupiter.targets.local import LocalTarget
from jupiter.workspace import Workspace


@dataclass
class TrialReport:
    """What one trial run did; ``ok`` when it exited 0 within its timeout and
    changed nothing it did not declare."""

    script: str
    target: str
    declared: list[str] = field(default_factory=list)
    needs_manual: str | None = None
    returncode: int | None = None
    timed_out: bool = False
    duration_s: float = 0.0
    changed: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    verified: bool | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.undeclared

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def _state(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and link below ``root``: (content hash or link text, mode)."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            st = full.lstat()
            rel = full.relative_to(root).as_posix()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = "link:" + os.readlink(full)
            else:
                digest = "dir" if stat.S_ISDIR(st.st_mode) else "other"
            out[rel] = (digest, st.st_mode)
    return out


def trial_finding(rule_id: str, path: str | None, line: int | None) -> FindingRecord:
    return FindingRecord(
        scanner="jupiter-scripts-test",
        rule_id=rule_id,
        title="trial run of a custom script",
        severity=Severity.MEDIUM,
        location=Location(path=path, start_line=line),
    )


def run_trial(
    workspace: Workspace,
    manifest_path: Path,
    target_root: Path,
    path: str | None = None,
    rule_id: str | None = None,
    line: int | None = None,
) -> TrialReport:
    """Plan and run the manifest's script once on a copy of ``target_root``."""
    manifest = load_manifest(manifest_path)
    data = check_script(manifest, manifest_path.parent / manifest.script, manifest_path)
    manifest = manifest.model_copy(update={"sha256": sha256_bytes(data)})
    if not target_root.is_dir():
        raise InputError(f"target {target_root} is not a directory; give the folder to test on")
    rule = rule_id or manifest.rule_ids[0]
    if rule not in manifest.rule_ids:
        raise InputError(
            f"rule {rule!r} is not one the manifest fixes ({', '.join(manifest.rule_ids)}); "
            "pick one of them"
        )
    record = trial_finding(rule, path, line)
    rem = make_remediator(RegisteredScript(manifest, manifest_path.parent.absolute()), workspace)
    report = TrialReport(script=manifest.name, target=str(target_root))
    scratch = Path(scratch_dir("script-test"))
    try:
        copy = scratch / "target"
        shutil.copytree(target_root, copy, symlinks=True)
        target = LocalTarget(copy)
        params = rem.parse_params(None)
        plan = rem.plan(record, target, params)
        if plan.needs_manual or not plan.changes:
            report.needs_manual = plan.needs_manual or "already fixed: the plan changes nothing"
            return report
        (command,) = plan.changes
        assert isinstance(command, RunCommand)
        report.declared = list(command.paths)
        before = _state(copy)
        started = time.monotonic()
        result = target.run(command.argv, command.timeout)
        report.duration_s = round(time.monotonic() - started, 3)
        after = _state(copy)
        report.returncode, report.timed_out = result.returncode, result.timed_out
        report.stdout, report.stderr = result.stdout, result.stderr
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        declared = set(command.paths)
        report.changed = [p for p in changed if p in declared]
        report.undeclared = [p for p in changed if p not in declared]
        report.refused = [
            line.strip()
            for line in result.stderr.splitlines()
            if any(mark in line for mark in REFUSAL_MARKS)
            and not line.startswith("jupiter sandbox:")
        ]
        if result.ok:
            report.verified = rem.is_fixed(record, target, params)
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
