"""SIGKILL after each durable transition of a fix (and in the middle of a
validator's scratch directory and of a target write), then recovery: the
bytes end where a clean run puts them, no step is left half-way, the audit
chain verifies, and nothing the dead process made is left behind (scratch
directories in the temp directory, ``.NAME.jupiter-*.tmp`` next to files)."""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.workspace import Workspace
from tests.conftest import ROOT, run_cli
from tests.reliability.counts import count

POINTS = [
    "scratch.open",  # inside sshd -t's sandbox directory (validation)
    pytest.param("fix.after_snapshot", marks=pytest.mark.soak),  # step applying, snapshot kept
    pytest.param("target.before_rename", marks=pytest.mark.soak),  # temp file not yet renamed
    pytest.param("fix.after_apply", marks=pytest.mark.soak),  # file replaced, not verified
    pytest.param("fix.after_step", marks=pytest.mark.soak),  # step recorded verified
    pytest.param("fix.after_step:3", marks=pytest.mark.soak),
]


def tree_state(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.lstat().st_mode))
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def fix(home: Path, host: Path, tmp: Path, fault: str | None = None) -> tuple[int, str]:
    env = {"TMPDIR": str(tmp)}
    if fault:
        env["JUPITER_FAULT"] = fault
    res = run_cli("fix", str(host), "--only", "config.ssh", "--yes", "--json", home=home, env=env)
    return res.returncode, res.stdout + res.stderr


@pytest.fixture(scope="module")
def clean_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, int]]:
    base = tmp_path_factory.mktemp("clean")
    host = base / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    (base / "tmp").mkdir()
    code, out = fix(base / "home", host, base / "tmp")
    assert code == 0, out
    return tree_state(host)


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_boundary_then_recover(
    point: str,
    tmp_path: Path,
    clean_result: dict[str, tuple[bytes, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, home, tmp = tmp_path / "host", tmp_path / "home", tmp_path / "tmp"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    tmp.mkdir()
    original = tree_state(host)
    code, out = fix(home, host, tmp, point)
    assert code == -9, f"the fault point {point} was not reached: {out}"
    count("crash trials")
    count("faults injected")
    left_tmp = sorted(p.name for p in tmp.iterdir())
    left_target = sorted(str(p) for p in host.rglob("*.jupiter-*.tmp"))
    count("killed runs leaving temporary files", int(bool(left_tmp or left_target)))

    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # where recovery sweeps
    engine = Engine(Workspace.resolve(home=home), actor="tester")
    try:
        running = [r for r in engine.list_runs() if r["status"] == "running"]
        assert len(running) == 1, engine.list_runs()
        recovered = engine.recover(running[0]["id"])
        assert recovered["status"] == "interrupted"
        run = engine.show_run(running[0]["id"])
        assert all(s["status"] not in ("planned", "applying") for s in run["steps"]), run
        # Nothing the dead process made is left.
        assert sorted(p.name for p in tmp.iterdir()) == [], left_tmp
        assert list(host.rglob("*.jupiter-*.tmp")) == []
        # Steps it finished stay (verified); the rest were restored: a new
        # run ends where a clean one does, and rolling everything back
        # gives the original bytes.
        assert engine.audit_verify().ok
    finally:
        engine.close()
    code, out = fix(home, host, tmp)
    assert code == 0, out
    assert tree_state(host) == clean_result
    engine = Engine(Workspace.resolve(home=home), actor="tester")
    try:
        for r in engine.list_runs():
            if r["status"] in ("succeeded", "failed", "interrupted") and r["kind"] == "fix":
                try:
                    engine.rollback(r["id"], confirm=lambda _: True)
                except InputError as exc:
                    assert "changed nothing" in str(exc)
        assert tree_state(host) == original
        assert engine.audit_verify().ok
    finally:
        engine.close()
    assert sorted(p.name for p in tmp.iterdir()) == []


@pytest.mark.soak
@pytest.mark.parametrize("point", ["rollback.after_restore"])
def test_kill_during_rollback_then_recover_and_roll_back_again(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollback killed after restoring the files: `runs recover` closes the
    rollback run, the rollback runs again to the end, and the files are the
    original bytes with an intact audit chain."""
    host, home, tmp = tmp_path / "host", tmp_path / "home", tmp_path / "tmp"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    tmp.mkdir()
    original = tree_state(host)
    code, out = fix(home, host, tmp)
    assert code == 0, out
    assert tree_state(host) != original
    engine = Engine(Workspace.resolve(home=home), actor="tester")
    try:
        (run,) = [r["id"] for r in engine.list_runs() if r["kind"] == "fix"]
    finally:
        engine.close()
    res = run_cli(
        "rollback", str(run), "--yes", home=home, env={"JUPITER_FAULT": point, "TMPDIR": str(tmp)}
    )
    assert res.returncode == -9, res.stdout + res.stderr
    count("crash trials")
    count("faults injected")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    engine = Engine(Workspace.resolve(home=home), actor="tester")
    try:
        dead = [r for r in engine.list_runs() if r["status"] == "running"]
        assert len(dead) == 1, engine.list_runs()
        assert engine.recover(dead[0]["id"])["status"] == "interrupted"
        engine.rollback(run, confirm=lambda _: True)
        assert tree_state(host) == original
        assert engine.audit_verify().ok
        assert list(host.rglob("*.jupiter-*.tmp")) == []
    finally:
        engine.close()
