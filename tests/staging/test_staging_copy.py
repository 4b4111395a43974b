"""Throw-away copies for the staging test: what is copied, what is not."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import ConflictError
from jupiter.workflows.staging_copy import copy_asset_id, throw_away_copy


def _tree(root: Path) -> None:
    (root / "etc/app").mkdir(parents=True)
    (root / "etc/app/app.conf").write_text("debug = true\n")
    (root / "etc/app/secret").write_text("s\n")
    os.chmod(root / "etc/app/secret", 0o600)
    os.symlink("app.conf", root / "etc/app/current")
    os.symlink("/etc/passwd", root / "etc/app/outside")
    os.mkfifo(root / "etc/app/pipe")
    (root / "ro").mkdir()
    (root / "ro/file").write_text("x\n")
    os.chmod(root / "ro", 0o555)


def test_a_local_copy_keeps_files_modes_and_links_and_is_deleted(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    prod = tmp_path / "prod"
    _tree(prod)
    # The workspace inside the production root is never copied into itself.
    home = prod / "jupiter-home"
    home.mkdir()
    # What a test killed mid-way left behind is removed by the next one.
    key = hashlib.sha256(b"web1.staging-copy").hexdigest()[:16]
    stale = home / "staging" / f"copy-{key}-dead"
    (stale / "root").mkdir(parents=True)
    with throw_away_copy(
        sqlite_engine.db, "tester", home, "web1", f"local:{prod}", timeout=5
    ) as copy:
        root = copy.root
        assert not stale.exists()
        assert root.is_relative_to(home / "staging")
        assert (root / "etc/app/app.conf").read_text() == "debug = true\n"
        assert stat.S_IMODE((root / "etc/app/secret").stat().st_mode) == 0o600
        assert os.readlink(root / "etc/app/current") == "app.conf"
        assert os.readlink(root / "etc/app/outside") == "/etc/passwd"
        assert stat.S_IMODE((root / "ro").stat().st_mode) == 0o555
        assert (root / "ro/file").read_text() == "x\n"
        assert not (root / "etc/app/pipe").exists()
        assert not (root / "jupiter-home").exists()
        assert sorted(s.split(":")[0] for s in copy.skipped) == ["etc/app/pipe", "jupiter-home"]
        assert copy.asset == copy_asset_id("web1") == "web1.staging-copy"
        # One test per copy asset at a time.
        with (
            pytest.raises(ConflictError, match="another staging test"),
            throw_away_copy(sqlite_engine.db, "tester", home, "web1", f"local:{prod}", 0.2),
        ):
            pass
    assert not root.exists()
    os.chmod(prod / "ro", 0o755)
    assert [a for a in sqlite_engine.list_assets() if a["id"] == "web1.staging-copy"] == [
        {
            "id": "web1.staging-copy",
            "name": "throw-away copy of web1",
            "kind": "host",
            "environment": "staging",
            "criticality": 3,
            "owner": None,
            "tags": ["staging-copy"],
            "group": None,
            "connection": f"local:{root}",
            "registered": False,
        }
    ]


def test_a_long_asset_id_still_makes_a_valid_copy_id() -> None:
    long_id = "a" * 200
    cid = copy_asset_id(long_id)
    assert len(cid) <= 200 and cid.endswith(".staging-copy")
    assert cid != copy_asset_id("a" * 199 + "b")
