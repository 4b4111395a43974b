"""Exported bash and Python fix scripts, run for real against copies of a
target: --check, apply, idempotent re-run, --undo, refusal on a changed file,
rollback on failure, argv quoting."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

from jupiter.export import PlanForExport, export_script
from jupiter.plans import Plan, RunCommand, WriteFile, sha256_bytes
from jupiter.targets.local import LocalTarget
from tests.conftest import need_service
from tests.export.helpers import (
    command_plans,
    copy_tree,
    item,
    run,
    snapshot,
    sshd_and_permission_plans,
)

FORMATS = ["bash", "python"]
SUFFIX = {"bash": ".sh", "python": ".py"}


def write_script(tmp_path: Path, items: list[PlanForExport], fmt: str) -> list[str]:
    """The script on disk; returns the argv prefix that runs it."""
    path = tmp_path / f"fix{SUFFIX[fmt]}"
    path.write_text(export_script(items, fmt))  # type: ignore[arg-type]
    return ["bash", str(path)] if fmt == "bash" else [sys.executable, str(path)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_apply_rerun_undo(tmp_path: Path, fmt: str) -> None:
    exported = sshd_and_permission_plans(tmp_path)
    script = write_script(tmp_path, exported.items, fmt)
    target = copy_tree(exported.original, tmp_path / "target")
    backup = tmp_path / "backup"
    before = snapshot(target)

    checked = run([*script, target, "--check", "--backup-dir", backup])
    assert checked.returncode == 0, checked.stderr
    assert "would write etc/ssh/sshd_config " in checked.stderr
    assert "would chmod 664 srv/app.cfg (now 666)" in checked.stderr
    assert snapshot(target) == before and not backup.exists()

    applied = run([*script, target, "--backup-dir", backup])
    assert applied.returncode == 0, applied.stderr
    # Byte for byte and mode for mode what Jupiter's own apply produced.
    assert snapshot(target) == snapshot(exported.fixed) != before
    planned = {
        c.path: c.content
        for i in exported.items
        for c in i.plan.changes
        if isinstance(c, WriteFile)
    }  # the last content planned for each file
    assert len(planned) == 3
    for path, content in planned.items():
        assert sha256_bytes((target / path).read_bytes()) == sha256_bytes(content.encode())
    assert (target / "srv/app.cfg").stat().st_mode & 0o777 == 0o664
    assert "applied and verified" in applied.stderr and "reload sshd" in applied.stderr
    # Every log line carries a UTC timestamp.
    assert all(line[:4].isdigit() and line[19] == "Z" for line in applied.stderr.splitlines())

    after = snapshot(target)
    again = run([*script, target, "--backup-dir", backup])
    assert again.returncode == 0, again.stderr
    assert "already applied" in again.stderr and snapshot(target) == after

    undone = run([*script, target, "--undo", "--backup-dir", backup])
    assert undone.returncode == 0, undone.stderr
    assert snapshot(target) == before
    assert not backup.exists()
    nothing = run([*script, target, "--undo", "--backup-dir", backup])
    assert nothing.returncode == 4 and "no backup" in nothing.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_edited_after_export_is_refused(tmp_path: Path, fmt: str) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=2)
    script = write_script(tmp_path, exported.items, fmt)
    target = copy_tree(exported.original, tmp_path / "target")
    with open(target / "etc/ssh/sshd_config", "a") as handle:
        handle.write("# edited by hand after the export\n")
    before = snapshot(target)
    for extra in (["--check"], []):
        result = run([*script, target, *extra])
        assert result.returncode == 3, result.stderr
        assert "etc/ssh/sshd_config changed since the fix was planned" in result.stderr
        assert snapshot(target) == before  # no backup directory either


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_backup_lives_under_the_root(tmp_path: Path, fmt: str) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=1)
    script = write_script(tmp_path, exported.items, fmt)
    target = copy_tree(exported.original, tmp_path / "target")
    before = snapshot(target)
    assert run([*script, target]).returncode == 0
    backups = list((target / "var/backups/jupiter").iterdir())
    assert len(backups) == 1 and backups[0].stat().st_mode & 0o777 == 0o700
    assert (backups[0] / "applied").exists()
    undone = run([*script, target, "--undo"])
    assert undone.returncode == 0, undone.stderr
    left = {k: v for k, v in snapshot(target).items() if not k.startswith("var")}
    assert left == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_files_and_quoted_commands_and_their_undo(tmp_path: Path, fmt: str) -> None:
    target = copy_tree(Path(__file__).parent, tmp_path / "target")  # any small tree
    shutil.rmtree(target / "__pycache__", ignore_errors=True)
    items = command_plans(LocalTarget(target), remove="__init__.py")
    script = write_script(tmp_path, items, fmt)
    before = snapshot(target)
    backup = tmp_path / "backup"
    applied = run([*script, target, "--backup-dir", backup])
    assert applied.returncode == 0, applied.stderr
    assert (target / "out.txt").read_text() == 'it\'s a "test" $HOME `id` ; rm -rf /'
    secret = target / "etc/app/secret.conf"
    assert secret.read_text() == "token=abc\n" and secret.stat().st_mode & 0o777 == 0o600
    assert not (target / "__init__.py").exists()
    again = run([*script, target, "--backup-dir", backup])
    assert again.returncode == 0 and "already applied" in again.stderr
    undone = run([*script, target, "--undo", "--backup-dir", backup])
    assert undone.returncode == 0, undone.stderr
    assert not secret.exists() and not (target / "out.txt").exists()
    assert (target / "__init__.py").exists()
    # The directory the fix created stays (empty); everything else is as before.
    assert {k: v for k, v in snapshot(target).items() if not k.startswith("etc")} == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failing_step_rolls_everything_back(tmp_path: Path, fmt: str) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=2)
    target = copy_tree(exported.original, tmp_path / "target")
    failing = Plan(
        remediator="test",
        rule_id="T-FAIL",
        title="fails",
        changes=[RunCommand(argv=["false"], timeout=10)],
    )
    script = write_script(tmp_path, [*exported.items, item(failing, LocalTarget(target))], fmt)
    before = snapshot(target)
    result = run([*script, target, "--backup-dir", tmp_path / "backup"])
    assert result.returncode == 1
    assert "rolled back" in result.stderr, result.stderr
    assert snapshot(target) == before and not (tmp_path / "backup").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path, fmt: str) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=1)
    script = write_script(tmp_path, exported.items, fmt)
    target = copy_tree(exported.original, tmp_path / "target")
    outside = copy_tree(target / "etc/ssh", tmp_path / "outside")
    shutil.rmtree(target / "etc/ssh")
    (target / "etc/ssh").symlink_to(outside)
    before = snapshot(outside)
    result = run([*script, target])
    assert result.returncode == 3 and "resolves outside" in result.stderr, result.stderr
    assert snapshot(outside) == before


def test_bash_script_is_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    need_service(shellcheck is not None, "shellcheck is not installed (apt-get install shellcheck)")
    assert shellcheck is not None
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=3)
    target = LocalTarget(exported.original)
    [script] = write_script(tmp_path, [*exported.items, *command_plans(target)], "bash")[1:]
    result = run([shellcheck, "--severity=info", script])
    assert result.returncode == 0, result.stdout


def test_python_script_is_python39_stdlib_only(tmp_path: Path) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=1)
    source = export_script(
        [*exported.items, *command_plans(LocalTarget(exported.original))], "python"
    )
    tree = ast.parse(source, feature_version=(3, 9))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names), imported
