"""The same fix and rollback through SSHTarget, against real SSH servers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.engine import Engine
from tests.conftest import ROOT
from tests.engine.test_fix_and_rollback import tree_state
from tests.sshserver import openssh_available, running_server


@pytest.mark.parametrize("kind", ["asyncssh", "openssh"])
def test_fix_and_rollback_over_ssh(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == "openssh" and not openssh_available():
        from tests.conftest import need_service

        need_service(False, "Debian's sshd is not installed; run scripts/services.sh")
    root = tmp_path / "remote-root"
    shutil.copytree(ROOT / "examples/host", root)
    original = tree_state(root)
    with running_server(tmp_path / "server", kind=kind) as server:
        monkeypatch.setenv("JUPITER_SSH_KEY", str(server.client_key))
        monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(server.known_hosts))
        target = f"ssh:{server.username}@{server.host}:{server.port}{root}"
        result = sqlite_engine.fix(target, asset="remote-host", only=["config.ssh"])
        statuses = {s["rule_id"]: s["status"] for s in result["steps"]}
        assert statuses["SSHD-ROOT-LOGIN"] == "verified", result["steps"]
        assert result["status"] == "succeeded"
        assert "PermitRootLogin no" in (root / "etc/ssh/sshd_config").read_text()
        again = sqlite_engine.fix(target, asset="remote-host", only=["config.ssh"])
        assert again["run"] is None

        rb = sqlite_engine.rollback(result["run"])
        assert rb["verified"] and rb["full"]
        assert tree_state(root) == original
        assert sqlite_engine.list_runs()[0]["target"].startswith("ssh:")
