"""jupiter generate / script / scripts through the real command line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT, run_cli


def test_generate_writes_files_that_pass_the_checks(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    out = tmp_path / "gen"
    r = run_cli("generate", "ssh", "--level", "strict", "-o", str(out), home=home)
    assert r.returncode == 0, r.stderr
    assert (out / "etc/ssh/sshd_config").is_file()
    scan = json.loads(run_cli("scan", str(out), "--json", home=home).stdout)
    assert not [f for f in scan["findings"] if f["category"] == "config.ssh"]
    again = run_cli("generate", "ssh", "-o", str(out), home=home)
    assert again.returncode == 2 and "exists" in again.stderr


def test_generate_bad_input(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    for args, fragment in [
        (["generate", "apache"], "cannot generate 'apache'"),
        (["generate", "ssh", "-p", "colour=red"], "unknown parameter 'colour'"),
        (["generate", "firewall", "--allow", "80,http"], "'http' is not a port number"),
        (["generate", "postgresql", "--environment", "moon"], "environment"),
    ]:
        r = run_cli(*args, home=home)
        assert r.returncode == 2, (args, r.stderr)
        assert fragment in r.stderr


def test_script_of_a_run_round_trips_on_another_copy(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host)
    staging = tmp_path / "staging"
    shutil.copytree(ROOT / "examples/host", staging)
    r = run_cli("fix", str(host), "--only", "config.ssh", "--yes", "--json", home=home)
    run_id = json.loads(r.stdout)["run"]
    script = tmp_path / "fix.py"
    r = run_cli("script", f"run:{run_id}", "--format", "python", "-o", str(script), home=home)
    assert r.returncode == 0, r.stderr
    original = (staging / "etc/ssh/sshd_config").read_bytes()
    done = subprocess.run(
        ["python3", str(script), str(staging)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (staging / "etc/ssh/sshd_config").read_bytes() == (
        host / "etc/ssh/sshd_config"
    ).read_bytes()
    undo = subprocess.run(
        ["python3", str(script), str(staging), "--undo"], capture_output=True, text=True, timeout=60
    )
    assert undo.returncode == 0, undo.stderr
    assert (staging / "etc/ssh/sshd_config").read_bytes() == original
    r = run_cli("script", "run:999", home=home)
    assert r.returncode == 2 and "no run 999" in r.stderr


def test_custom_scripts_add_list_remove(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    manifest = ROOT / "tests/fixtures/custom/fix_world_writable/manifest.yaml"
    r = run_cli("scripts", "add", str(manifest), "--json", home=home)
    assert r.returncode == 0, r.stderr
    name = json.loads(r.stdout)["name"]
    listed = json.loads(run_cli("scripts", "list", "--json", home=home).stdout)
    assert [s["status"] for s in listed] == ["ok"]
    rem = json.loads(run_cli("remediators", "list", "--json", home=home).stdout)
    assert any(p["source"] == "custom" for p in rem["remediators"])
    assert run_cli("scripts", "remove", name, home=home).returncode == 0
    assert json.loads(run_cli("scripts", "list", "--json", home=home).stdout) == []
    r = run_cli("scripts", "remove", name, home=home)
    assert r.returncode == 2
