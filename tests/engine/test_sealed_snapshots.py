"""A real fix and rollback: snapshot copies of secret files are sealed at rest."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from jupiter.engine import Engine
from tests.conftest import ROOT


def _stored(blobs: Path) -> bytes:
    return b"".join(p.read_bytes() for p in blobs.rglob("*") if p.is_file())


def test_fix_and_rollback_keep_secret_copies_sealed(sqlite_engine: Engine, tmp_path: Path) -> None:
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    sshd = host / "etc/ssh/sshd_config"
    sshd.chmod(0o600)  # as many distributions ship it
    original = sshd.read_bytes()

    result = sqlite_engine.fix(str(host), only=["config.ssh", "config.database"])
    assert result["status"] == "succeeded"
    assert sshd.read_bytes() != original
    blobs = sqlite_engine.workspace.blobs
    stored = _stored(blobs)
    assert original not in stored
    if stat.S_IMODE(sshd.stat().st_mode) == 0o600:  # the fixed file too, when still private
        assert sshd.read_bytes() not in stored
    # The TLS key the PostgreSQL fix generated is 0600 and a private key: its
    # "after" copy is sealed too.
    keys = [
        p for p in host.rglob("*") if p.is_file() and b"PRIVATE KEY-----" in p.read_bytes()[:100]
    ]
    assert keys
    for key in keys:
        assert key.read_bytes() not in stored
    assert (blobs / "sealed").is_dir()
    assert stat.S_IMODE((sqlite_engine.workspace.home / "keys").stat().st_mode) == 0o700

    back = sqlite_engine.rollback(result["run"])
    assert back["verified"] and back["full"], back
    assert sshd.read_bytes() == original
    assert stat.S_IMODE(sshd.stat().st_mode) == 0o600
    assert sqlite_engine.audit_verify().ok
