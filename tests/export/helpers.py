"""Shared by the export tests: real plans on a real tree, and tree snapshots."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jupiter.export import PlanForExport
from jupiter.keygen import materialise
from jupiter.plans import (
    GenerateKey,
    IssueCertificate,
    Plan,
    RemoveFile,
    Risk,
    RunCommand,
    SetMode,
    WriteFile,
    sha256_bytes,
)
from jupiter.plugins.permissions.fix import FilePermissions
from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
from jupiter.targets.local import LocalTarget
from tests.conftest import ROOT

EXAMPLE_HOST = ROOT / "examples" / "host"
TIMEOUT = 60


@dataclass
class Exported:
    original: Path  # the target before any fix (never touched)
    fixed: Path  # the same target with every plan applied by Jupiter itself
    items: list[PlanForExport]


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """relative path → (sha256 or "dir", mode) for everything under ``root``."""
    out: dict[str, tuple[str, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                out[rel] = (
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    stat.S_IMODE(info.st_mode),
                )
    return out


def apply_by_hand(target: LocalTarget, plan: Plan) -> None:
    """What the engine does, for building the expected end state."""
    for change in plan.changes:
        if isinstance(change, GenerateKey | IssueCertificate):
            change = materialise(target, change)  # as the engine does, right before the write
        if isinstance(change, WriteFile):
            target.write_bytes(change.path, change.content.encode(), change.mode)
        elif isinstance(change, SetMode):
            target.set_mode(change.path, change.mode)
        elif isinstance(change, RemoveFile):
            target.remove(change.path)
        else:
            assert isinstance(change, RunCommand)
            assert target.run(change.argv, change.timeout).ok


def item(plan: Plan, target: LocalTarget, finding_id: str = "F-1") -> PlanForExport:
    return PlanForExport(
        plan=plan,
        finding_id=finding_id,
        rule_id=plan.rule_id,
        title=plan.title,
        target=target.describe(),
    )


def sshd_and_permission_plans(tmp_path: Path, *, sshd_limit: int | None = None) -> Exported:
    """Plans from the real sshd-hardening (strict) on a copy of examples/host
    and from file-permissions on a world-writable file, each planned on the
    state the previous ones leave (as the engine does)."""
    original = tmp_path / "original"
    shutil.copytree(EXAMPLE_HOST, original)
    app = original / "srv" / "app.cfg"
    app.parent.mkdir()
    app.write_text("listen=8080\n")
    app.chmod(0o666)
    fixed = tmp_path / "fixed"
    shutil.copytree(original, fixed)
    target = LocalTarget(fixed)
    sshd, params = SshdHardening(), SshdParams(level="strict")
    items = []
    findings = sshd.detect(target, params)[:sshd_limit]
    for number, finding in enumerate(findings):
        plan = sshd.plan(finding, target, params)
        items.append(item(plan, target, f"F-{number}"))
        apply_by_hand(target, plan)
    permissions = FilePermissions()
    [finding] = permissions.detect(target)
    plan = permissions.plan(finding, target, permissions.parse_params({}))
    assert [type(c) for c in plan.changes] == [SetMode]
    items.append(item(plan, target, "F-perm"))
    apply_by_hand(target, plan)
    return Exported(original, fixed, items)


def copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest


def run(
    argv: list[str | Path], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )


def command_plans(target: LocalTarget, remove: str | None = None) -> list[PlanForExport]:
    """A new file (mode 0600 in a new directory), a command whose arguments
    need quoting (with its undo) and, optionally, the removal of ``remove``."""
    awkward = 'it\'s a "test" $HOME `id` ; rm -rf /'
    new = Plan(
        remediator="test",
        rule_id="T-NEW",
        title="new file",
        changes=[
            WriteFile(
                path="etc/app/secret.conf", content="token=abc\n", before_sha256=None, mode=0o600
            )
        ],
        risk=Risk(services_to_reload=["app"]),
    )
    command = Plan(
        remediator="test",
        rule_id="T-CMD",
        title="command",
        changes=[
            RunCommand(
                argv=["sh", "-c", 'printf "%s" "$1" > out.txt', "sh", awkward],
                undo=["rm", "-f", "out.txt"],
                paths=["out.txt"],
                timeout=20,
            )
        ],
    )
    items = [item(new, target, "F-new"), item(command, target, "F-cmd")]
    if remove is not None:
        gone = Plan(
            remediator="test",
            rule_id="T-RM",
            title="remove",
            changes=[
                RemoveFile(path=remove, before_sha256=sha256_bytes(target.read_bytes(remove)))
            ],
        )
        items.append(item(gone, target, "F-rm"))
    return items
