"""A custom script through the real engine (`Engine.fix`): snapshot, run,
watch the tree, verify, and roll back when the script misbehaves.

Scripts are registered through ``Engine.register_script``, as ``jupiter
scripts add`` does; the engine's registry then prefers them for their rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from custom_helpers import FIXTURES, write_manifest

from jupiter.engine import Engine


@pytest.fixture
def world_writable(tmp_path: Path) -> Path:
    root = tmp_path / "target"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / "data.txt").write_text("hello\n")
    (root / "srv" / "data.txt").chmod(0o666)
    (root / "other.txt").write_text("keep\n")
    return root


def _fix(engine: Engine, root: Path, manifest: Path) -> dict[str, Any]:
    engine.register_script(manifest)
    out = engine.fix(f"local:{root}", only=["PERM-WORLD-WRITABLE"])
    (step,) = [s for s in out["steps"] if s["remediator"].startswith("custom-")]
    return step


def test_engine_runs_and_verifies_a_custom_script(
    sqlite_engine: Engine, world_writable: Path
) -> None:
    step = _fix(sqlite_engine, world_writable, FIXTURES / "fix_world_writable" / "manifest.yaml")
    assert step["status"] == "verified", step
    assert "jupiter.custom.sandbox" in step["output"]
    assert (world_writable / "srv" / "data.txt").stat().st_mode & 0o777 == 0o664


def test_engine_rolls_back_a_script_that_touches_undeclared_paths(
    sqlite_engine: Engine, world_writable: Path, tmp_path: Path
) -> None:
    manifest = write_manifest(
        tmp_path / "sneaky",
        '#!/bin/sh\nchmod o-w -- "$1"\necho tampered > other.txt\n',
        name="sneaky",
        rule_ids=["PERM-WORLD-WRITABLE"],
        paths=["{finding.path}"],
        args=["{finding.path}"],
        verify={"detector": "file-permissions"},
    )
    step = _fix(sqlite_engine, world_writable, manifest)
    assert step["status"] == "rolled_back", step
    assert "other.txt" in step["detail"]
    assert (world_writable / "other.txt").read_text() == "keep\n"
    assert (world_writable / "srv" / "data.txt").stat().st_mode & 0o777 == 0o666


def test_engine_rolls_back_when_verification_fails(
    sqlite_engine: Engine, world_writable: Path, tmp_path: Path
) -> None:
    manifest = write_manifest(
        tmp_path / "wrong",
        '#!/bin/sh\nchmod 0606 -- "$1"\n',
        name="wrong",
        rule_ids=["PERM-WORLD-WRITABLE"],
        paths=["{finding.path}"],
        args=["{finding.path}"],
        verify={"detector": "file-permissions"},
    )
    step = _fix(sqlite_engine, world_writable, manifest)
    assert step["status"] == "rolled_back", step
    assert "still detected" in step["detail"]
    assert (world_writable / "srv" / "data.txt").stat().st_mode & 0o777 == 0o666


def test_engine_rolls_back_a_script_killed_by_its_cpu_limit(
    sqlite_engine: Engine, world_writable: Path, tmp_path: Path
) -> None:
    manifest = write_manifest(
        tmp_path / "spin",
        '#!/bin/sh\nchmod o-w -- "$1"\nwhile :; do :; done\n',
        name="spin",
        rule_ids=["PERM-WORLD-WRITABLE"],
        paths=["{finding.path}"],
        args=["{finding.path}"],
        verify={"detector": "file-permissions"},
        limits={"cpu_seconds": 1},
    )
    step = _fix(sqlite_engine, world_writable, manifest)
    assert step["status"] == "rolled_back", step
    assert "killed by SIGXCPU: CPU time limit of 1 s exceeded" in step["detail"]
    assert (world_writable / "srv" / "data.txt").stat().st_mode & 0o777 == 0o666
