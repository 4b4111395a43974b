"""Fixtures for the custom-script tests: a workspace, a target and a way to
register a script written on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from custom_helpers import MakeScript, write_manifest

from jupiter.custom.remediator import CustomScriptRemediator, make_remediator
from jupiter.custom.store import get_script, register_script
from jupiter.targets.local import LocalTarget
from jupiter.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    home = tmp_path / "home"
    return Workspace(home, f"sqlite:///{home / 'jupiter.db'}")


@pytest.fixture
def target(tmp_path: Path) -> LocalTarget:
    root = tmp_path / "target"
    root.mkdir()
    return LocalTarget(root)


@pytest.fixture
def make_script(tmp_path: Path, workspace: Workspace) -> MakeScript:
    """Register a script (body + manifest fields) and return its remediator."""

    def make(body: str, **fields: Any) -> CustomScriptRemediator:
        manifest = write_manifest(
            tmp_path / "src" / fields.get("name", "test-script"), body, **fields
        )
        info = register_script(workspace, manifest)
        return make_remediator(get_script(workspace, str(info["name"])), workspace)

    return make
