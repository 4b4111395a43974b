"""Custom scripts over SSH: the same bubblewrap sandbox on the remote host
(here the loopback asyncssh and OpenSSH servers the suite starts), the
script and the wrapper sent in the command line, and a host without
bubblewrap refused in one sentence unless the manifest says ``sandbox: none``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from custom_helpers import MakeScript, finding, write_manifest
from test_custom_confinement import SHADOW, _marked_processes
from tests.conftest import need_service
from tests.sshserver import SSHTestServer, openssh_available, running_server

from jupiter.custom.confine import forget_probes
from jupiter.custom.remediator import CustomScriptRemediator
from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.models import FindingRecord
from jupiter.plans import RunCommand
from jupiter.targets.base import CommandResult
from jupiter.targets.ssh import SSHTarget


@pytest.fixture(scope="module", params=["asyncssh", "openssh"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SSHTestServer]:
    need_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap) is not installed")
    need_service(os.geteuid() == 0, "the confinement tests switch users, so they run as root")
    if request.param == "openssh" and not openssh_available():
        need_service(False, "OpenSSH sshd is not installed or the tests do not run as root")
    with running_server(tmp_path_factory.mktemp(request.param), request.param) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    forget_probes()
    yield
    forget_probes()


@pytest.fixture
def remote(server: SSHTestServer, tmp_path: Path) -> Iterator[SSHTarget]:
    root = tmp_path / "remote-root"
    root.mkdir()
    with SSHTarget(
        server.host,
        server.port,
        server.username,
        str(root),
        client_keys=[server.client_key],
        known_hosts=server.known_hosts,
    ) as target:
        yield target


def _run(rem: CustomScriptRemediator, target: SSHTarget, record: FindingRecord) -> CommandResult:
    plan = rem.plan(record, target, rem.parse_params(None))
    assert plan.needs_manual is None, plan.needs_manual
    (command,) = plan.changes
    assert isinstance(command, RunCommand)
    assert command.argv[:3] == ["python3", "-I", "-c"]  # nothing of Jupiter on the host
    return target.run(command.argv, command.timeout)


def test_the_remote_sandbox_confines_user_files_and_network(
    make_script: MakeScript, remote: SSHTarget, tmp_path: Path
) -> None:
    root = tmp_path / "remote-root"
    (root / "other.txt").write_text("keep\n")
    rem = make_script(
        SHADOW + "echo tampered > other.txt\n",
        paths=["who.txt"],
        description="remote",
        verify={"command": ["grep", "-qx", "65534", "who.txt"]},
    )
    assert not rem.is_fixed(finding(), remote, rem.parse_params(None))
    result = _run(rem, remote, finding())
    assert result.returncode != 0
    assert (root / "who.txt").read_text() == "65534\n"
    # The verify command runs on the host, in the same sandbox.
    assert rem.is_fixed(finding(), remote, rem.parse_params(None))
    assert rem.last_verification is not None
    assert rem.last_verification.argv[:3] == ("python3", "-I", "-c")
    assert "/etc/shadow' for reading: Permission denied" in result.stderr
    assert "other.txt: Read-only file system" in result.stderr.splitlines()[-1]
    assert (root / "other.txt").read_text() == "keep\n"

    root_rem = make_script(
        SHADOW,
        name="as-root",
        paths=["who.txt"],
        needs_root=True,
        root_reason="reads the shadow file",
    )
    assert _run(root_rem, remote, finding()).ok
    assert (root / "who.txt").read_text() == "0\nread\n"

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(1.0)
    try:
        net = make_script(
            "#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/$1 && echo connected\n",
            name="net",
            args=["{finding.start_line}"],
        )
        assert not _run(net, remote, finding(start_line=server.getsockname()[1])).ok
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_no_remote_process_survives_a_timeout(
    make_script: MakeScript, remote: SSHTarget, tmp_path: Path
) -> None:
    root = tmp_path / "remote-root"
    (root / "late.txt").write_text("before\n")
    marker = f"jupiter-marker-{uuid.uuid4().hex}"
    rem = make_script(
        f"#!/bin/bash\nsetsid sh -c 'sleep 2; echo late > late.txt' {marker} &\nsleep 30\n",
        paths=["late.txt"],
        timeout=1.0,
    )
    result = _run(rem, remote, finding())
    assert result.timed_out
    deadline = time.monotonic() + 5
    while _marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)  # the host's `timeout` kills the wrapper within 2 s
    assert _marked_processes(marker) == []
    time.sleep(1.5)
    assert (root / "late.txt").read_text() == "before\n"


def test_a_host_without_bwrap_is_refused_unless_sandbox_none(
    make_script: MakeScript, remote: SSHTarget, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "remote-root"
    monkeypatch.setattr("jupiter.custom.confine.BWRAP", "bwrap-not-installed")
    rem = make_script("#!/bin/sh\nid -u > who.txt\n", paths=["who.txt"])
    with pytest.raises(InputError) as caught:
        rem.plan(finding(), remote, rem.parse_params(None))
    assert str(caught.value) == (
        f"custom script 'test-script' cannot run on {remote.describe()}: bubblewrap "
        "(bwrap-not-installed) is not installed there; install it, or set 'sandbox: none' in "
        "the manifest to run unconfined"
    )
    assert not (root / "who.txt").exists()

    loose = make_script(
        "#!/bin/sh\nid -u > who.txt\n", name="loose", paths=["who.txt"], sandbox="none"
    )
    result = _run(loose, remote, finding())
    assert result.ok, result.stderr
    assert "runs WITHOUT a sandbox" in result.stderr
    assert (root / "who.txt").read_text() == f"{os.geteuid()}\n"


def _fix(engine: Engine, server: SSHTestServer, root: Path, manifest: Path) -> dict[str, Any]:
    engine.register_script(manifest)
    target = f"ssh:{server.username}@{server.host}:{server.port}{root}"
    return engine.fix(target, asset="remote", only=["PERM-WORLD-WRITABLE"])


def test_engine_over_ssh_fixes_rolls_back_and_refuses_outside_writes(
    sqlite_engine: Engine,
    server: SSHTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPITER_SSH_KEY", str(server.client_key))
    monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(server.known_hosts))
    root = tmp_path / "remote-root"
    (root / "srv").mkdir(parents=True)
    data = root / "srv" / "data.txt"
    data.write_text("hello\n")
    data.chmod(0o666)
    (root / "other.txt").write_text("keep\n")
    before = (data.read_bytes(), data.stat().st_mode)
    common: dict[str, Any] = {
        "rule_ids": ["PERM-WORLD-WRITABLE"],
        "paths": ["{finding.path}"],
        "args": ["{finding.path}"],
        "verify": {"detector": "file-permissions"},
    }
    sneaky = write_manifest(
        tmp_path / "sneaky",
        '#!/bin/sh\nchmod o-w -- "$1"\necho tampered > other.txt\n',
        name="sneaky",
        **common,
    )
    out = _fix(sqlite_engine, server, root, sneaky)
    (step,) = [s for s in out["steps"] if s["remediator"] == "custom-sneaky"]
    assert step["status"] == "rolled_back", step
    assert "other.txt: Read-only file system" in step["detail"]
    assert (root / "other.txt").read_text() == "keep\n"
    assert (data.read_bytes(), data.stat().st_mode) == before

    sqlite_engine.remove_script("sneaky")
    tidy = write_manifest(
        tmp_path / "tidy",
        '#!/bin/sh\nset -e\nsed s/hello/HELLO/ "$1" > /tmp/new\ncat /tmp/new > "$1"\n'
        'chmod o-w -- "$1"\n',
        name="tidy",
        **common,
    )
    out = _fix(sqlite_engine, server, root, tidy)
    (step,) = [s for s in out["steps"] if s["remediator"] == "custom-tidy"]
    assert step["status"] == "verified", step
    assert data.read_bytes() == b"HELLO\n" and data.stat().st_mode & 0o777 == 0o664
    rolled = sqlite_engine.rollback(out["run"])
    assert rolled["verified"]
    assert (data.read_bytes(), data.stat().st_mode) == before
