"""The exported Ansible playbook: syntax check, check mode (changes nothing),
a real run against localhost on a temporary root, refusal of a changed file,
and --tags undo. The real runs take ~10 s each on a loaded machine: slow."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from jupiter.export import export_script
from jupiter.targets.local import LocalTarget
from tests.export.helpers import (
    command_plans,
    copy_tree,
    run,
    snapshot,
    sshd_and_permission_plans,
)
from tests.tools import tool


def playbook_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ansible-tmp").mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


def play(
    binary: Path, playbook: Path, root: Path, tmp_path: Path, *extra: str
) -> tuple[int, str, dict[str, int]]:
    """Run the playbook on localhost with ``jupiter_root=root``; returns the
    exit code, the output and localhost's recap counters."""
    python = binary.parent / "python"  # ansible's own interpreter: has its modules' deps
    result = run(
        [
            binary,
            "-c",
            "local",
            "-i",
            "localhost,",
            str(playbook),
            "-e",
            f"jupiter_root={root}",
            "-e",
            f"jupiter_backup_dir={tmp_path / 'backup'}",
            "-e",
            f"ansible_python_interpreter={python}",
            *extra,
        ],
        env=playbook_env(tmp_path),
    )
    recap = re.search(r"localhost\s*:\s*(.*)", result.stdout)
    counters = (
        dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))) if recap else {}
    )
    return result.returncode, result.stdout + result.stderr, counters


def test_playbook_shape_and_syntax(tmp_path: Path) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=2)
    commands = command_plans(LocalTarget(exported.original))
    text = export_script([*exported.items, *commands], "ansible")
    [playbook] = YAML(typ="rt").load(text)  # round-trip: keeps Ansible's !unsafe tags
    assert [str(p.tag) for p in playbook["vars"]["jupiter_paths"]] == ["!unsafe"] * 4
    assert playbook["hosts"] == "all" and playbook["vars"]["jupiter_root"] == "/"
    modules = [
        next(k for k in task if k.startswith("ansible.builtin.")) for task in playbook["tasks"]
    ]
    assert modules[0] == "ansible.builtin.stat" and "ansible.builtin.assert" in modules
    assert [h["name"] for h in playbook["handlers"]] == ["reload sshd", "reload app"]
    [run_task] = [t for t in playbook["tasks"] if "run sh" in t["name"]]
    assert run_task["ansible.builtin.command"]["argv"][-1].value == (
        'it\'s a "test" $HOME `id` ; rm -rf /'
    )
    assert any("Undo: run rm" in t["name"] and "undo" in t["tags"] for t in playbook["tasks"])
    binary = tool("ansible", "ansible-playbook")
    path = tmp_path / "fix.yml"
    path.write_text(text)
    result = run([binary, "--syntax-check", "-i", "localhost,", path], env=playbook_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_playbook_check_apply_undo_on_localhost(tmp_path: Path) -> None:
    binary = tool("ansible", "ansible-playbook")
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=1)
    playbook = tmp_path / "fix.yml"
    playbook.write_text(export_script(exported.items, "ansible"))
    target = copy_tree(exported.original, tmp_path / "target")
    before = snapshot(target)

    code, out, recap = play(binary, playbook, target, tmp_path, "--check")
    assert code == 0, out
    assert recap["changed"] > 0 and snapshot(target) == before
    assert not (tmp_path / "backup").exists()

    code, out, recap = play(binary, playbook, target, tmp_path)
    assert code == 0, out
    assert snapshot(target) == snapshot(exported.fixed)
    assert "RUNNING HANDLER [reload sshd]" in out  # notified, skipped off a real root

    code, out, recap = play(binary, playbook, target, tmp_path, "--tags", "undo")
    assert code == 0, out
    assert snapshot(target) == before


@pytest.mark.slow
def test_playbook_refuses_a_file_edited_after_export(tmp_path: Path) -> None:
    binary = tool("ansible", "ansible-playbook")
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=1)
    playbook = tmp_path / "fix.yml"
    playbook.write_text(export_script(exported.items, "ansible"))
    target = copy_tree(exported.original, tmp_path / "target")
    with open(target / "etc/ssh/sshd_config", "a") as handle:
        handle.write("# edited\n")
    before = snapshot(target)
    code, out, _ = play(binary, playbook, target, tmp_path)
    assert code != 0
    assert "etc/ssh/sshd_config changed since the fix was planned" in out
    assert snapshot(target) == before
