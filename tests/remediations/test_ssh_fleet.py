"""The same rolling deploy over SSH, against two sshd servers on loopback,
then a fleet rollback proven by hashes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from jupiter.engine import Engine
from tests.conftest import ROOT
from tests.remediations.fleetlib import applies, tree, workflow
from tests.sshserver import SSHTestServer, running_server


@contextlib.contextmanager
def two_ssh_hosts(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[tuple[SSHTestServer, SSHTestServer], list[Path]]]:
    """Two copies of examples/host served by two asyncssh servers, imported
    as the prod assets ssh-1 and ssh-2 of group ``remote``."""
    roots = []
    for i in (1, 2):
        root = tmp_path / f"remote-{i}"
        shutil.copytree(ROOT / "examples/host", root)
        roots.append(root)
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
        engine.import_assets(tmp_path / "assets.yaml")
        yield (one, two), roots


def test_rolling_deploy_over_ssh_then_rollback(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with two_ssh_hosts(sqlite_engine, tmp_path, monkeypatch) as ((_one, _two), roots):
        before = {r.name: tree(r) for r in roots}
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


def test_fleet_over_openssh_one_connection_per_host_and_unreachable_hosts(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four real OpenSSH sshd on loopback plus a host that never answers (a
    blackhole address): the one down at planning and the one whose sshd stops
    after planning are reported unreachable and count toward max_fail (2);
    the other three are fixed and verified, each over one SSH connection for
    planning, snapshot, deploy and verification."""
    from jupiter.targets.factory import pooled
    from tests.conftest import need_service
    from tests.sshserver import openssh_available

    need_service(openssh_available(), "Debian's sshd is not installed; run scripts/services.sh")
    roots = []
    for i in range(1, 6):
        root = tmp_path / f"remote-{i}"
        shutil.copytree(ROOT / "examples/host", root)
        roots.append(root)
    before = tree(roots[3])
    servers = [running_server(tmp_path / f"s{i}", kind="openssh") for i in range(1, 5)]
    with servers[0] as a, servers[1] as b, servers[2] as c, servers[3] as d:
        live = [a, b, c, d]
        monkeypatch.setenv("JUPITER_SSH_KEY", ",".join(str(s.client_key) for s in live))
        known = tmp_path / "known_hosts"
        known.write_text("".join(s.known_hosts.read_text() for s in live))
        monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(known))
        monkeypatch.setenv("JUPITER_SSH_CONNECT_TIMEOUT", "1")
        conns = [
            f"ssh:{s.username}@{s.host}:{s.port}{r}" for s, r in zip(live, roots, strict=False)
        ]
        # TEST-NET-1 (RFC 5737): nothing answers there.
        conns.append(f"ssh:root@192.0.2.1:22{roots[4]}")
        assets = [
            {"id": f"h-{i}", "group": "fleet", "environment": "prod", "connection": conn}
            for i, conn in enumerate(conns, 1)
        ]
        (tmp_path / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
        sqlite_engine.import_assets(tmp_path / "assets.yaml")
        workflow(
            sqlite_engine.workspace.home,
            "fleet",
            [
                {"kind": "snapshot"},
                {"kind": "deploy", "strategy": {"type": "rolling", "batch": 5, "max_fail": 2}},
                {"kind": "verify"},
            ],
        )
        with pooled():
            made = sqlite_engine.remediations.create(
                group="fleet", only=["SSHD-ROOT-LOGIN"], workflow="fleet", forks=3
            )
            assert made.remediation is not None
            _host_down(d)  # h-4 goes down between planning and deploy
            info = sqlite_engine.remediations.run(made.remediation.id, forks=3)
        assert info.status == "completed", info.to_json()
        status = {t.asset: (t.status, t.detail) for t in info.targets}
        assert [a for a, (st, _) in status.items() if st == "deployed"] == ["h-1", "h-2", "h-3"]
        for down in ("h-4", "h-5"):
            assert status[down][0] == "failed"
            assert status[down][1].startswith("unreachable"), status[down]
        assert "192.0.2.1" in status["h-5"][1]
        events = [(e.target, e.status) for e in info.timeline if e.name in ("snapshot", "deploy")]
        assert ("h-4", "unreachable") in events
        assert ("h-5", "unreachable") in events
        assert applies(sqlite_engine) == {"h-1": 1, "h-2": 1, "h-3": 1}
        for root in roots[:3]:
            assert "PermitRootLogin no" in (root / "etc/ssh/sshd_config").read_text()
        assert tree(roots[3]) == before
        # Plan, snapshot, deploy (lock, snapshot, write, sshd -t, verify) and
        # the verify stage: one login per host (connection_count() would
        # also count the start-up probe of the port).
        assert [s.log().count("Accepted publickey") for s in (a, b, c)] == [1, 1, 1]


def _host_down(server: SSHTestServer) -> None:
    """Stop an OpenSSH server and the per-connection processes it forked
    (the pool's open connection to it dies too, as when the host goes down)."""
    pid = server._process.pid
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    server.stop()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_third_unreachable_host_exceeds_max_fail_and_rolls_back(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_fail 0: the host whose port is closed fails the batch, and the
    remediation rolls the reachable one back to its bytes."""
    with two_ssh_hosts(sqlite_engine, tmp_path, monkeypatch) as ((_one, two), roots):
        before = tree(roots[0])
        workflow(
            sqlite_engine.workspace.home,
            "strict",
            [
                {"kind": "snapshot"},
                {"kind": "deploy", "strategy": {"type": "rolling", "batch": 2, "max_fail": 0}},
                {"kind": "verify"},
            ],
        )
        made = sqlite_engine.remediations.create(
            group="remote", only=["SSHD-ROOT-LOGIN"], workflow="strict"
        )
        assert made.remediation is not None
        two.stop()  # closed port: connection refused
        info = sqlite_engine.remediations.run(made.remediation.id)
        assert info.status == "rolled_back", info.to_json()
        assert "more than max_fail 0" in info.reason
        assert tree(roots[0]) == before
