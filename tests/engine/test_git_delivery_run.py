"""jupiter fix --git-branch: one commit per verified finding; rollback reverts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError
from tests.conftest import ROOT


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "tests/fixtures/sqli", root / "app")
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "config", "user.name", "Dev")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_fixes_become_commits_and_rollback_reverts_them(sqlite_engine: Engine, repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    original = (repo / "app/sqlite_app.py").read_bytes()
    result = sqlite_engine.fix(
        str(repo), only=["code.sql_injection"], git_branch="jupiter/fix-sqli"
    )
    assert result["status"] == "succeeded", result["steps"]
    verified = [s for s in result["steps"] if s["status"] == "verified"]
    assert verified and all(s["commit"] for s in verified)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "jupiter/fix-sqli"
    log = git(repo, "log", "--format=%H %s", f"{base}..HEAD").splitlines()
    assert len(log) == len(verified)
    body = git(repo, "log", "-1", "--format=%B")
    assert "Jupiter-Finding:" in body and "Jupiter-Plan:" in body
    assert git(repo, "rev-parse", "main") == base, "the base branch is untouched"
    assert git(repo, "status", "--porcelain") == ""

    with pytest.raises(InputError, match="roll it back whole"):
        sqlite_engine.rollback(result["run"], ["app/sqlite_app.py"])
    rb = sqlite_engine.rollback(result["run"])
    assert rb["verified"]
    assert (repo / "app/sqlite_app.py").read_bytes() == original
    reverts = git(repo, "log", "--format=%s", f"{base}..HEAD").splitlines()
    assert len(reverts) == 2 * len(verified)
    assert git(repo, "status", "--porcelain") == ""


def test_dirty_work_tree_is_refused_before_anything_changes(
    sqlite_engine: Engine, repo: Path
) -> None:
    (repo / "app/sqlite_app.py").write_text((repo / "app/sqlite_app.py").read_text() + "# wip\n")
    before = (repo / "app/sqlite_app.py").read_bytes()
    with pytest.raises(InputError):
        sqlite_engine.fix(str(repo), only=["code.sql_injection"], git_branch="jupiter/x")
    assert (repo / "app/sqlite_app.py").read_bytes() == before
    assert "jupiter/x" not in git(repo, "branch", "--list")
    assert sqlite_engine.list_runs() == []
