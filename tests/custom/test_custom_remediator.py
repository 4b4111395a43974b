"""Custom scripts as remediators: plan → apply (the RunCommand through
LocalTarget.run, as the engine does) → verify by command or by detector."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from custom_helpers import FIXTURES, MakeScript, finding, run_plan

from jupiter.custom import load_custom_remediators, register_script
from jupiter.custom.remediator import CustomScriptRemediator
from jupiter.errors import InputError
from jupiter.models import FindingRecord
from jupiter.plans import Plan, RunCommand, WriteFile
from jupiter.plugins.permissions.fix import FilePermissions
from jupiter.plugins.registry import load_registry
from jupiter.targets.base import FileState
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from jupiter.workspace import Workspace


def _load(workspace: Workspace, fixture: str) -> CustomScriptRemediator:
    register_script(workspace, FIXTURES / fixture / "manifest.yaml")
    (rem,) = load_custom_remediators(workspace)
    assert isinstance(rem, CustomScriptRemediator)
    return rem


def _only_command(plan: Plan) -> RunCommand:
    (command,) = plan.changes
    assert isinstance(command, RunCommand)
    return command


def test_plan_apply_verify_with_a_command(workspace: Workspace, target: LocalTarget) -> None:
    rem = _load(workspace, "disable_debug")
    (target.root / "app").mkdir()
    config = target.root / "app" / "config.ini"
    config.write_text("[main]\n# keep this comment\ndebug = true\nport = 8080\n")
    record = finding("APP-DEBUG-ON", path="app/config.ini")
    params = rem.parse_params(None)
    assert rem.detect(target) == []
    assert rem.handles(record)
    assert not rem.is_fixed(record, target, params)
    assert rem.last_verification is not None and rem.last_verification.returncode == 1

    plan = rem.plan(record, target, params)
    command = _only_command(plan)
    script = workspace.home / "scripts" / "disable-debug" / "disable_debug.sh"
    assert command.argv[:4] == [sys.executable, "-I", "-m", "jupiter.custom.sandbox"]
    assert command.argv[4:14] == [
        "--cpu",
        "10",
        "--memory",
        "256",
        "--fsize",
        "8",
        "--nofile",
        "64",
        "--nproc",
        "32",
    ]
    assert command.argv[-2:] == ["--", "app/config.ini"]
    assert ["--script", str(script)] == command.argv[command.argv.index("--script") :][:2]
    assert command.argv[command.argv.index("--write") :][:2] == ["--write", "app/config.ini"]
    assert "--network" not in command.argv and "--as-root" not in command.argv
    assert command.paths == ["app/config.ini"] == plan.touched_paths()
    assert command.watch and plan.watches_tree
    assert command.timeout == 30
    assert plan.remediator == "custom-disable-debug" and plan.rule_id == "APP-DEBUG-ON"
    assert plan.risk.change_kind == "config"
    assert "cannot be previewed as a diff" in plan.diff
    assert plan.needs_manual is None
    # Planning is pure: nothing ran yet.
    assert "debug = true" in config.read_text()

    result = target.run(command.argv, command.timeout)
    assert result.ok, result.stderr
    assert result.stdout == "debug disabled in app/config.ini\n"
    assert config.read_text() == "[main]\n# keep this comment\ndebug = false\nport = 8080\n"
    assert rem.is_fixed(record, target, params)
    # Only on the real target: a read-only candidate view cannot run the check.
    assert not rem.is_fixed(
        record, OverlayView(target, Plan(remediator="x", rule_id="y", title="t")), params
    )
    # Applying the same plan again changes nothing.
    assert target.run(command.argv, command.timeout).ok
    assert rem.is_fixed(record, target, params)
    assert config.read_text().count("debug = false") == 1


def test_a_script_that_does_not_fix_fails_verification(
    make_script: MakeScript, target: LocalTarget
) -> None:
    (target.root / "state.txt").write_text("bad\n")
    rem = make_script(
        "#!/bin/sh\necho pretending to fix\n",
        paths=["state.txt"],
        verify={"command": ["grep", "-q", "good", "state.txt"]},
    )
    record = finding(path="state.txt")
    result = run_plan(rem, target, record)
    assert result.ok and result.stdout == "pretending to fix\n"
    assert not rem.is_fixed(record, target, rem.parse_params(None))


def test_verify_command_runs_in_the_sandbox(
    make_script: MakeScript, target: LocalTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    rem = make_script("#!/bin/sh\n", verify={"command": ["env"]})
    assert rem.is_fixed(finding(), target, rem.parse_params(None))
    result = rem.last_verification
    assert result is not None
    names = sorted(line.split("=")[0] for line in result.stdout.splitlines())
    assert names == ["LANG", "PATH", "PWD"]

    rem = make_script(
        "#!/bin/sh\n", name="failing", verify={"command": ["false"]}, limits={"open_files": 40}
    )
    assert not rem.is_fixed(finding(), target, rem.parse_params(None))
    result = rem.last_verification
    assert result is not None and result.returncode == 1
    assert "verify command of failing exited with status 1" in result.stderr
    assert "40 open files" in result.stderr


def test_verify_with_a_builtin_detector(workspace: Workspace, target: LocalTarget) -> None:
    rem = _load(workspace, "fix_world_writable")
    data = target.root / "srv" / "data.txt"
    data.parent.mkdir()
    data.write_text("hello\n")
    data.chmod(0o666)
    (record,) = [f for f in FilePermissions().detect(target) if f.location.path == "srv/data.txt"]
    assert record.rule_id == "PERM-WORLD-WRITABLE" and rem.handles(record)
    params = rem.parse_params(None)
    assert not rem.is_fixed(record, target, params)

    plan = rem.plan(record, target, params)
    command = _only_command(plan)
    assert command.argv[-2:] == ["--", "srv/data.txt"]
    assert command.argv[command.argv.index("--interpreter") + 1] == "/bin/sh"
    assert plan.risk.change_kind == "permissions"
    assert target.run(command.argv, command.timeout).ok
    assert data.stat().st_mode & 0o777 == 0o664
    assert rem.is_fixed(record, target, params)
    assert rem.plan(record, target, params).empty  # fixed: nothing more to do
    assert rem.plan(record, target, params).needs_manual is None


def test_a_detector_that_cannot_see_the_finding_never_verifies_it(
    make_script: MakeScript, target: LocalTarget
) -> None:
    rem = make_script(
        "#!/bin/sh\n", rule_ids=["CKV_K8S_1"], verify={"detector": "file-permissions"}
    )
    record = finding("CKV_K8S_1")
    plan = rem.plan(record, target, rem.parse_params(None))
    assert plan.empty and plan.needs_manual
    assert "does not handle rule 'CKV_K8S_1'" in plan.needs_manual
    assert not rem.is_fixed(record, target, rem.parse_params(None))


def test_paths_expand_globs_against_the_view(make_script: MakeScript, target: LocalTarget) -> None:
    (target.root / "conf").mkdir()
    for name in ("b.ini", "a.ini", "notes.txt"):
        (target.root / "conf" / name).write_text("x\n")
    (target.root / "conf" / "dir.ini").mkdir()
    rem = make_script("#!/bin/sh\n", paths=["conf/*.ini", "new/file.txt", "conf/a.ini"])
    plan = rem.plan(finding(), target, rem.parse_params(None))
    assert _only_command(plan).paths == ["conf/a.ini", "conf/b.ini", "new/file.txt"]

    # A finding value is never a glob, even if it looks like one.
    rem2 = make_script("#!/bin/sh\n", name="literal", paths=["{finding.path}"])
    plan = rem2.plan(finding(path="conf/*.ini"), target, rem2.parse_params(None))
    assert _only_command(plan).paths == ["conf/*.ini"]

    rem3 = make_script("#!/bin/sh\n", name="nothing", paths=["absent/*.conf"])
    plan = rem3.plan(finding(), target, rem3.parse_params(None))
    assert plan.empty and plan.needs_manual and "match nothing" in plan.needs_manual


class _RemoteView:
    """A read-only view that is not local (as an SSH target's would be)."""

    def __init__(self, described: str = "ssh:admin@host1/") -> None:
        self.described = described

    def describe(self) -> str:
        return self.described

    def read_bytes(self, path: str) -> bytes:
        raise FileNotFoundError(path)

    def stat(self, path: str) -> FileState | None:
        return None

    def glob(self, pattern: str) -> list[str]:
        return []

    def walk(self, under: str = "") -> list[str]:
        return []


def test_only_local_and_ssh_targets_are_supported(make_script: MakeScript) -> None:
    rem = make_script("#!/bin/sh\n")
    with pytest.raises(InputError, match="run on local and SSH targets, not docker:web/"):
        rem.plan(finding(), _RemoteView("docker:web/"), rem.parse_params(None))
    # A read-only SSH view (no Target to ask): planned; the wrapper checks the host.
    plan = rem.plan(finding(), _RemoteView(), rem.parse_params(None))
    assert _only_command(plan).argv[:3] == ["python3", "-I", "-c"]
    assert not rem.is_fixed(finding(), _RemoteView(), rem.parse_params(None))


def test_remediators_have_their_own_names_and_join_the_registry(
    tmp_path: Path, make_script: MakeScript
) -> None:
    a = make_script("#!/bin/sh\n", name="first", rule_ids=["R-1"], description="First fix")
    b = make_script("#!/bin/sh\n", name="second", rule_ids=["R-2", "R-3"])
    assert (a.name, b.name) == ("custom-first", "custom-second")
    assert a.rule_ids == frozenset({"R-1"}) and b.rule_ids == frozenset({"R-2", "R-3"})
    assert a.summary == "First fix"
    assert type(a) is not type(b)
    registry = load_registry()
    assert not any(name.startswith("custom-") for name in registry.plugins)
    registry.add(a, source="custom")
    registry.add(b, source="custom")
    record: FindingRecord = finding("R-3")
    assert registry.for_finding(record) is b
    (result,) = a.validate(Plan(remediator=a.name, rule_id="R-1", title="t"), _RemoteView())
    assert result.status == "skipped"


def test_plan_on_the_candidate_of_a_local_target(
    make_script: MakeScript, target: LocalTarget
) -> None:
    # The engine plans a chain of fixes on the state earlier plans leave.
    (target.root / "a.txt").write_text("old\n")
    rem = make_script("#!/bin/sh\n", paths=["*.txt"])
    candidate = OverlayView(
        target,
        Plan(
            remediator="x",
            rule_id="y",
            title="t",
            changes=[WriteFile(path="b.txt", content="x", before_sha256=None)],
        ),
    )
    assert _only_command(rem.plan(finding(), candidate, rem.parse_params(None))).paths == [
        "a.txt",
        "b.txt",
    ]
    remote = OverlayView(_RemoteView("docker:x/"), Plan(remediator="x", rule_id="y", title="t"))
    with pytest.raises(InputError, match="local and SSH targets, not docker:x/"):
        rem.plan(finding(), remote, rem.parse_params(None))
