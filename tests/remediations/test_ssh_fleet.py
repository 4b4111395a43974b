"""The same rolling deploy over SSH, against two sshd servers on loopback,
then a fleet rollback proven by hashes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from jupiter.engine import Engine
from tests.conftest import ROOT
from tests.remediations.fleetlib import applies, tree, workflow
from tests.sshserver import running_server


def test_rolling_deploy_over_ssh_then_rollback(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = []
    for i in (1, 2):
        root = tmp_path / f"remote-{i}"
        shutil.copytree(ROOT / "examples/host", root)
        roots.append(root)
    before = {r.name: tree(r) for r in roots}
    with (
        running_server(tmp_path / "s1", kind="asyncssh") as one,
        running_server(tmp_path / "s2", kind="asyncssh") as two,
    ):
        monkeypatch.setenv("JUPITER_SSH_KEY", f"{one.client_key},{two.client_key}")
        known = tmp_path / "known_hosts"
        known.write_text(one.known_hosts.read_text() + two.known_hosts.read_text())
        monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(known))
        assets = [
            {
                "id": f"ssh-{i}",
                "group": "remote",
                "environment": "prod",
                "connection": f"ssh:{s.username}@{s.host}:{s.port}{r}",
            }
            for i, (s, r) in enumerate(zip((one, two), roots, strict=True), 1)
        ]
        (tmp_path / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
        sqlite_engine.import_assets(tmp_path / "assets.yaml")
        workflow(
            sqlite_engine.workspace.home,
            "roll",
            [{"kind": "snapshot"}, {"kind": "deploy", "concurrency": 2}, {"kind": "verify"}],
        )
        made = sqlite_engine.remediations.create(
            group="remote", only=["SSHD-ROOT-LOGIN"], workflow="roll"
        )
        assert made.remediation is not None
        info = sqlite_engine.remediations.run(made.remediation.id)
        assert info.status == "completed", info.to_json()
        assert all("PermitRootLogin no" in (r / "etc/ssh/sshd_config").read_text() for r in roots)
        assert applies(sqlite_engine) == {"ssh-1": 1, "ssh-2": 1}
        info = sqlite_engine.remediations.rollback(info.id)
        assert info.status == "rolled_back"
        assert {r.name: tree(r) for r in roots} == before
