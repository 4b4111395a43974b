"""What bubblewrap confines, with real processes on this host: writes outside
the declared paths, processes that try to outlive the step, the network,
the user, and a kernel that refuses the namespaces.

Everything here runs as root (the engine switches to ``nobody``); the tests
are skipped where bubblewrap is not installed, and fail under
JUPITER_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from custom_helpers import MakeScript, finding, run_plan, write_manifest
from tests.conftest import need_service

from jupiter.custom.confine import forget_probes
from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.targets.local import LocalTarget

SANDBOX = [sys.executable, "-I", "-m", "jupiter.custom.sandbox"]


@pytest.fixture(autouse=True)
def _bwrap() -> Iterator[None]:
    need_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap) is not installed")
    need_service(os.geteuid() == 0, "the confinement tests switch users, so they run as root")
    forget_probes()
    yield
    forget_probes()


@pytest.fixture
def outside() -> Iterator[Path]:
    """A world-writable file on the host, outside every target (not under /tmp,
    which the sandbox replaces with its own)."""
    path = Path("/var/tmp") / f"jupiter-outside-{uuid.uuid4().hex}"
    path.write_text("untouched\n")
    path.chmod(0o666)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def world_writable(tmp_path: Path) -> Path:
    root = tmp_path / "target"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / "data.txt").write_text("hello\n")
    (root / "srv" / "data.txt").chmod(0o666)
    (root / "other.txt").write_text("keep\n")
    return root


def _fix(engine: Engine, root: Path, manifest: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    engine.register_script(manifest)
    out = engine.fix(f"local:{root}", only=["PERM-WORLD-WRITABLE"])
    (step,) = [s for s in out["steps"] if s["remediator"].startswith("custom-")]
    return out, step


def _perm_manifest(folder: Path, body: str, **fields: Any) -> Path:
    base: dict[str, Any] = {
        "name": folder.name,
        "rule_ids": ["PERM-WORLD-WRITABLE"],
        "paths": ["{finding.path}"],
        "args": ["{finding.path}"],
        "verify": {"detector": "file-permissions"},
    }
    base.update(fields)
    return write_manifest(folder, body, **base)


def test_a_write_outside_the_declared_paths_fails_the_step_and_is_restored(
    sqlite_engine: Engine, world_writable: Path, tmp_path: Path, outside: Path
) -> None:
    manifest = _perm_manifest(
        tmp_path / "sneaky",
        f'#!/bin/sh\nchmod o-w -- "$1"\necho tampered > {outside}\necho tampered > other.txt\n',
    )
    _, step = _fix(sqlite_engine, world_writable, manifest)
    assert step["status"] == "rolled_back", step
    # The step names what the script tried, from the wrapper's last line.
    assert "access refused in the sandbox" in step["detail"]
    assert "other.txt: Read-only file system" in step["detail"]
    assert f"{outside}: Read-only file system" in step["output"]
    assert outside.read_text() == "untouched\n"
    assert (world_writable / "other.txt").read_text() == "keep\n"
    # The declared file was changed by the script, then restored.
    assert (world_writable / "srv" / "data.txt").stat().st_mode & 0o777 == 0o666
    assert not list(Path("/tmp").glob(f"jupiter-sandbox-{os.getpid()}-*"))


def test_the_happy_path_fixes_and_rolls_back_byte_for_byte(
    sqlite_engine: Engine, world_writable: Path, tmp_path: Path
) -> None:
    data = world_writable / "srv" / "data.txt"
    before = (data.read_bytes(), data.stat().st_mode, data.stat().st_uid)
    manifest = _perm_manifest(
        tmp_path / "tidy",
        '#!/bin/sh\nset -e\nid -un\nsed s/hello/HELLO/ "$1" > /tmp/new\ncat /tmp/new > "$1"\n'
        'chmod o-w -- "$1"\n',
    )
    out, step = _fix(sqlite_engine, world_writable, manifest)
    assert step["status"] == "verified", step
    assert "nobody" in step["output"]
    assert data.read_bytes() == b"HELLO\n"
    assert data.stat().st_mode & 0o777 == 0o664
    assert data.stat().st_uid == before[2]  # copied back into the file, owner kept
    sqlite_engine.rollback(out["run"])
    assert (data.read_bytes(), data.stat().st_mode, data.stat().st_uid) == before


def _marked_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("timeout", [1.0, None])
def test_no_process_of_the_script_survives_the_step(
    make_script: MakeScript, target: LocalTarget, timeout: float | None
) -> None:
    marker = f"jupiter-marker-{uuid.uuid4().hex}"
    (target.root / "late.txt").write_text("before\n")
    body = (
        "#!/bin/bash\n"
        f"setsid sh -c 'sleep 2; echo late > late.txt' {marker}-setsid &\n"
        f"( ( exec -a {marker}-double sleep 30 ) & ) &\n"
        "echo started\n" + ("sleep 30\n" if timeout else "")
    )
    rem = make_script(body, paths=["late.txt"], timeout=timeout or 20)
    result = run_plan(rem, target)
    assert result.timed_out is bool(timeout)
    assert result.stdout.startswith("started")
    assert _marked_processes(marker) == []
    time.sleep(2.5)  # past the sleeper's late write
    assert _marked_processes(marker) == []
    assert (target.root / "late.txt").read_text() == "before\n"


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(1.0)
    return server


NET_SCRIPT = "#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/$1 && echo connected\n"


def test_the_network_is_closed_unless_the_manifest_opens_it(
    make_script: MakeScript, target: LocalTarget
) -> None:
    closed = make_script(NET_SCRIPT, args=["{finding.start_line}"])
    opened = make_script(NET_SCRIPT, name="online", args=["{finding.start_line}"], network=True)
    server = _listener()
    try:
        port = server.getsockname()[1]
        refused = run_plan(closed, target, finding(start_line=port))
        assert not refused.ok and "connected" not in refused.stdout
        with pytest.raises(TimeoutError):
            server.accept()
        plan = opened.plan(finding(start_line=port), target, opened.parse_params(None))
        assert "custom script: network access is open (network: true)" in plan.risk.warnings
        assert "network: OPEN" in plan.diff
        allowed = run_plan(opened, target, finding(start_line=port))
        assert allowed.ok and allowed.stdout == "connected\n", allowed.stderr
        conn, _ = server.accept()
        conn.close()
    finally:
        server.close()


SHADOW = "#!/bin/sh\nid -u > who.txt\nhead -c 1 /etc/shadow > /dev/null && echo read >> who.txt\n"


def test_nobody_cannot_read_etc_shadow(make_script: MakeScript, target: LocalTarget) -> None:
    rem = make_script(SHADOW, paths=["who.txt"])
    plan = rem.plan(finding(), target, rem.parse_params(None))
    assert "runs as nobody" in plan.diff
    assert not any("root" in w for w in plan.risk.warnings)
    result = run_plan(rem, target)
    assert result.returncode != 0
    assert "cannot open '/etc/shadow' for reading: Permission denied" in result.stderr
    assert (target.root / "who.txt").read_text() == "65534\n"


def test_needs_root_runs_as_root_and_the_plan_says_so(
    make_script: MakeScript, target: LocalTarget
) -> None:
    rem = make_script(
        SHADOW, paths=["who.txt"], needs_root=True, root_reason="reads the shadow file"
    )
    plan = rem.plan(finding(), target, rem.parse_params(None))
    assert "custom script: runs as root (needs_root): reads the shadow file" in plan.risk.warnings
    assert "runs as root" in plan.diff
    result = run_plan(rem, target)
    assert result.ok, result.stderr
    assert (target.root / "who.txt").read_text() == "0\nread\n"


def test_a_named_user_that_does_not_exist_is_refused_before_anything_runs(
    make_script: MakeScript, target: LocalTarget
) -> None:
    rem = make_script("#!/bin/sh\ntouch ran.txt\n", paths=["ran.txt"], user="no-such-user-j")
    with pytest.raises(InputError, match="user 'no-such-user-j' does not exist on this host"):
        rem.plan(finding(), target, rem.parse_params(None))
    assert not (target.root / "ran.txt").exists()


def test_a_missing_bwrap_is_refused_unless_sandbox_none(
    make_script: MakeScript, target: LocalTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jupiter.custom.confine.BWRAP", "bwrap-not-installed")
    rem = make_script("#!/bin/sh\nid -u > who.txt\n", paths=["who.txt"])
    with pytest.raises(InputError, match=r"bubblewrap \(bwrap-not-installed\) is not installed"):
        rem.plan(finding(), target, rem.parse_params(None))
    assert not (target.root / "who.txt").exists()

    loose = make_script(
        "#!/bin/sh\nid -u > who.txt\n", name="loose", paths=["who.txt"], sandbox="none"
    )
    plan = loose.plan(finding(), target, loose.parse_params(None))
    assert any("sandbox: none" in w for w in plan.risk.warnings)
    result = run_plan(loose, target)
    assert result.ok, result.stderr
    assert "runs WITHOUT a sandbox" in result.stderr
    assert (target.root / "who.txt").read_text() == f"{os.geteuid()}\n"


def _without_namespaces(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` where the kernel refuses new PID, network and user
    namespaces (limits set to 0 inside a user namespace of its own)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare (util-linux)")
    limits = " && ".join(
        f"echo 0 > /proc/sys/user/max_{kind}_namespaces" for kind in ("user", "pid", "net")
    )
    return subprocess.run(
        [unshare, "--user", "--map-root-user", "sh", "-c", f'{limits} && exec "$@"', "sh", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_kernel_that_refuses_the_namespaces_is_said_once_and_nothing_runs(
    tmp_path: Path,
) -> None:
    probe = _without_namespaces([*SANDBOX, "--probe", "--as-root"], tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert '"namespaces": "bwrap: Creating new namespace failed' in probe.stdout

    run = _without_namespaces([*SANDBOX, "--as-root", "--", "touch", "ran.txt"], tmp_path)
    assert run.returncode == 125
    refusals = [line for line in run.stderr.splitlines() if line.startswith("jupiter sandbox:")]
    assert refusals == [
        "jupiter sandbox: refused: bubblewrap could not build the sandbox on this host (its "
        "error is above): the kernel or container refuses the namespaces it needs, and custom "
        "scripts are never run unconfined"
    ]
    assert not (tmp_path / "ran.txt").exists()


def test_a_cancelled_script_leaves_no_process_behind(tmp_path: Path) -> None:
    # Cancel = SIGTERM to the wrapper (what stopping a run sends).
    marker = f"jupiter-marker-{uuid.uuid4().hex}"
    script = tmp_path / "spawn.sh"
    script.write_text(
        f"#!/bin/bash\nsetsid sleep 30 &\n( exec -a {marker} sleep 30 ) &\necho up\nsleep 30\n"
    )
    script.chmod(0o755)
    proc = subprocess.Popen(
        [*SANDBOX, "--script", str(script), "--script-name", "spawn.sh", "--"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        deadline = time.monotonic() + 5
        while not _marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _marked_processes(marker)
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 128 + 15, err
    assert "was killed by SIGTERM" in err
    assert _marked_processes(marker) == []


def test_the_dry_run_preview_shows_the_confinement_risks(
    sqlite_engine: Engine, world_writable: Path, tmp_path: Path
) -> None:
    manifest = _perm_manifest(
        tmp_path / "rooted",
        '#!/bin/sh\nchown root:root "$1"\nchmod o-w -- "$1"\n',
        needs_root=True,
        root_reason="resets the owner to root",
        network=True,
    )
    sqlite_engine.register_script(manifest)
    out = sqlite_engine.fix(f"local:{world_writable}", only=["PERM-WORLD-WRITABLE"], dry_run=True)
    (step,) = [s for s in out["steps"] if s["remediator"] == "custom-rooted"]
    assert step["status"] == "planned"
    assert step["risk"]["warnings"][1:] == [
        "custom script: network access is open (network: true)",
        "custom script: runs as root (needs_root): resets the owner to root",
    ]
    assert "network: OPEN, runs as root" in step["diff"]
    assert (world_writable / "srv" / "data.txt").stat().st_mode & 0o777 == 0o666


def test_a_declared_path_through_a_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "target"
    root.mkdir()
    (root / "link").symlink_to(outside.parent)
    (root / "file").symlink_to(outside)
    script = tmp_path / "write.sh"
    script.write_text('#!/bin/sh\necho tampered > "$1"\n')
    script.chmod(0o755)
    for declared in (f"link/{outside.name}", "file"):
        proc = subprocess.run(
            [*SANDBOX, "--script", str(script), "--write", declared, "--", declared],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 125, proc.stderr
        assert f"declared path {declared!r} goes through the symlink" in proc.stderr
    assert outside.read_text() == "untouched\n"
