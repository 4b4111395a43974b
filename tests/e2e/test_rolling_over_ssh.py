"""The rolling deploy of a remediation over SSH, against two SSH servers on
loopback (the system's OpenSSH sshd when the tests run as root, else the
asyncssh test server): every target fixed once, and a failed batch rolls
back the target already changed, byte for byte, over SSH."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from jupiter.engine import Engine
from tests.remediations.fleetlib import applies, tree, use_app_plugin, workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshserver import SSHTestServer, openssh_available, running_server


@pytest.fixture
def two_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SSHTestServer]]:
    kind = "openssh" if openssh_available() else "asyncssh"
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running_server(tmp_path / f"ssh{i}", kind)) for i in (1, 2)]
        known = tmp_path / "known_hosts"
        known.write_text("".join(s.known_hosts.read_text() for s in servers))
        monkeypatch.setenv("JUPITER_SSH_KEY", ",".join(str(s.client_key) for s in servers))
        monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(known))
        yield servers


def ssh_fleet(tmp_path: Path, servers: list[SSHTestServer], contents: list[str]) -> list[Path]:
    assets, roots = [], []
    for i, (server, text) in enumerate(zip(servers, contents, strict=True), 1):
        root = tmp_path / "fleet" / f"web-{i:02d}"
        (root / "etc").mkdir(parents=True)
        (root / "etc/app.conf").write_text(text)
        roots.append(root)
        assets.append(
            {
                "id": f"web-{i:02d}",
                "group": "web",
                "environment": "prod",
                "connection": f"ssh:{server.username}@{server.host}:{server.port}{root}",
            }
        )
    (tmp_path / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
    return roots


def test_rolling_deploy_over_ssh(
    sqlite_engine: Engine, tmp_path: Path, two_servers: list[SSHTestServer]
) -> None:
    engine = sqlite_engine
    roots = ssh_fleet(tmp_path, two_servers, ["insecure\n", "insecure\n"])
    engine.import_assets(tmp_path / "assets.yaml")
    use_app_plugin(engine)
    workflow(
        engine.workspace.home,
        "roll",
        [{"kind": "snapshot"}, {"kind": "deploy", "strategy": {"type": "rolling", "batch": 1}}],
    )
    made = engine.remediations.create(group="web", workflow="roll")
    assert made.remediation is not None
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "completed", info.to_json()
    assert [t.batch for t in info.targets] == [1, 2]
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)
    assert applies(engine) == {"web-01": 1, "web-02": 1}
    assert all(s.connection_count() >= 1 for s in two_servers)
    assert engine.audit_verify().ok


def test_failed_batch_over_ssh_rolls_back_the_changed_target(
    sqlite_engine: Engine, tmp_path: Path, two_servers: list[SSHTestServer]
) -> None:
    engine = sqlite_engine
    roots = ssh_fleet(tmp_path, two_servers, ["insecure\n", "insecure reject-me\n"])
    before = {r.name: tree(r) for r in roots}
    engine.import_assets(tmp_path / "assets.yaml")
    use_app_plugin(engine)
    workflow(
        engine.workspace.home,
        "roll",
        [
            {"kind": "snapshot"},
            {"kind": "deploy", "strategy": {"type": "rolling", "batch": 1, "max_fail": 0}},
        ],
    )
    made = engine.remediations.create(group="web", workflow="roll")
    assert made.remediation is not None
    info = engine.remediations.run(made.remediation.id)
    assert info.status == "rolled_back", info.to_json()
    statuses = {t.asset: t.status for t in info.targets}
    assert statuses["web-01"] == "rolled_back", statuses
    assert applies(engine) == {"web-01": 1}  # changed once over SSH, then restored
    # web-01 was changed in batch 1 and is back, byte for byte; web-02 never changed.
    assert {r.name: tree(r) for r in roots} == before
    assert engine.audit_verify().ok
