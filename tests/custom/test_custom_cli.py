"""``jupiter scripts test`` and the bad manifests of ``jupiter scripts add``,
through the real command: one sentence each, exit 2, nothing run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from custom_helpers import FIXTURES, write_manifest
from tests.conftest import ROOT, need_service, run_cli


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    need_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap) is not installed")
    need_service(os.geteuid() == 0, "the confinement tests switch users, so they run as root")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "app").mkdir(parents=True)
    (root / "app" / "config.ini").write_text("[main]\ndebug = true\n")
    (root / "other.txt").write_text("keep\n")
    return root


def test_scripts_test_reports_the_change_on_a_copy(tmp_path: Path, app: Path) -> None:
    proc = run_cli(
        "scripts",
        "test",
        str(FIXTURES / "disable_debug" / "manifest.yaml"),
        "--target",
        str(app),
        "--path",
        "app/config.ini",
        "--json",
        home=tmp_path / "home",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["verified"] and report["returncode"] == 0
    assert report["changed"] == ["app/config.ini"] and report["undeclared"] == []
    assert report["refused"] == []
    assert 0 < report["duration_s"] < 10
    # The real target is never written.
    assert (app / "app" / "config.ini").read_text() == "[main]\ndebug = true\n"
    # Nothing registered.
    listed = run_cli("scripts", "list", "--json", home=tmp_path / "home")
    assert json.loads(listed.stdout) == []


def test_scripts_test_shows_what_the_script_tried_outside_its_paths(
    tmp_path: Path, app: Path
) -> None:
    outside = Path("/var/tmp") / f"jupiter-outside-{uuid.uuid4().hex}"
    outside.write_text("untouched\n")
    outside.chmod(0o666)
    try:
        manifest = write_manifest(
            tmp_path / "sneaky",
            f"#!/bin/sh\necho x > {outside}\necho x > other.txt\necho fixed >> app/config.ini\n",
            name="sneaky",
            paths=["app/config.ini"],
        )
        proc = run_cli(
            "scripts", "test", str(manifest), "--target", str(app), home=tmp_path / "home"
        )
        assert outside.read_text() == "untouched\n"
    finally:
        outside.unlink()
    assert proc.returncode == 0, proc.stderr  # its last command succeeded
    out = proc.stdout
    assert "sneaky on a copy of" in out and "exit 0 in " in out
    assert "changed (declared): app/config.ini" in out
    assert f"{outside}: Read-only file system" in out
    assert "other.txt: Read-only file system" in out
    assert (app / "other.txt").read_text() == "keep\n"
    assert (app / "app" / "config.ini").read_text() == "[main]\ndebug = true\n"


def test_scripts_test_fails_when_the_script_fails(tmp_path: Path, app: Path) -> None:
    manifest = write_manifest(
        tmp_path / "bad", "#!/bin/sh\necho oops >&2\nexit 3\n", name="bad", paths=["x.txt"]
    )
    proc = run_cli("scripts", "test", str(manifest), "--target", str(app), home=tmp_path / "h")
    assert proc.returncode == 1
    assert "exit 3" in proc.stdout and "oops" in proc.stdout


BAD: list[tuple[dict[str, Any], str]] = [
    ({"paths": ["../etc/passwd"]}, "contains '..'; paths must stay inside the target root"),
    ({"paths": ["/etc/passwd"]}, "is absolute; give a path relative to the target root"),
    ({"needs_root": True}, "'needs_root: true' needs a 'root_reason'"),
    ({"user": "root"}, "'user: root' is not allowed"),
    ({"user": "Bad User"}, "field 'user'"),
    ({"sandbox": "off"}, "field 'sandbox'"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_manifests_are_one_sentence_and_exit_2(
    tmp_path: Path, app: Path, fields: dict[str, Any], message: str
) -> None:
    marker = app / "ran.txt"
    manifest = write_manifest(tmp_path / "m", "#!/bin/sh\ntouch ran.txt\n", **fields)
    for args in (["scripts", "add", str(manifest)], ["scripts", "test", str(manifest)]):
        if args[1] == "test":
            args += ["--target", str(app)]
        proc = run_cli(*args, home=tmp_path / "home")
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert not marker.exists()


def test_a_script_that_is_not_executable_and_a_missing_user(tmp_path: Path, app: Path) -> None:
    manifest = write_manifest(tmp_path / "m", "#!/bin/sh\ntouch ran.txt\n", paths=["ran.txt"])
    (tmp_path / "m" / "script.sh").chmod(0o644)
    proc = run_cli("scripts", "add", str(manifest), home=tmp_path / "home")
    assert proc.returncode == 2
    assert "script.sh is not executable; run 'chmod +x script.sh'" in proc.stderr

    manifest = write_manifest(
        tmp_path / "u", "#!/bin/sh\ntouch ran.txt\n", paths=["ran.txt"], user="no-such-user-j"
    )
    proc = run_cli("scripts", "test", str(manifest), "--target", str(app), home=tmp_path / "h")
    assert proc.returncode == 2
    assert "user 'no-such-user-j' does not exist on this host" in proc.stderr
    assert not (app / "ran.txt").exists()


def test_a_kernel_refusing_namespaces_refuses_the_script_before_it_runs(
    tmp_path: Path, app: Path
) -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare (util-linux)")
    manifest = write_manifest(tmp_path / "m", "#!/bin/sh\ntouch ran.txt\n", paths=["ran.txt"])
    limits = " && ".join(
        f"echo 0 > /proc/sys/user/max_{kind}_namespaces" for kind in ("user", "pid", "net")
    )
    # The real command, in a user namespace of its own where the kernel
    # allows no new user, PID or network namespaces.
    jupiter = [sys.executable, "-m", "jupiter.cli.app", "scripts", "test", str(manifest)]
    proc = subprocess.run(
        [
            unshare,
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            f'{limits} && exec "$@"',
            "sh",
            *jupiter,
            "--target",
            str(app),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "JUPITER_HOME": str(tmp_path / "home")},
        check=False,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1
    assert "bubblewrap cannot create its namespaces there" in proc.stderr
    assert "custom scripts are never run unconfined" in proc.stderr
    assert not (app / "ran.txt").exists()
