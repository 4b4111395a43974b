"""fix / rollback / runs through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import ROOT, run_cli


@pytest.fixture
def host(tmp_path: Path) -> Path:
    dst = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", dst)
    return dst


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_fix_dry_run_then_apply_then_rollback(host: Path, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    before = _files(host)
    dry = run_cli("fix", str(host), "--only", "config.ssh", "--dry-run", home=home)
    assert dry.returncode == 0, dry.stderr
    assert "+PermitRootLogin no" in dry.stdout and "dry run: nothing was changed" in dry.stdout
    assert _files(host) == before

    refused = run_cli("fix", str(host), "--only", "config.ssh", home=home, stdin="")
    assert refused.returncode == 2
    assert "without confirmation" in refused.stderr
    assert _files(host) == before

    applied = run_cli("fix", str(host), "--only", "config.ssh", "--yes", "--json", home=home)
    assert applied.returncode == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert result["status"] == "succeeded"
    run_id = result["run"]
    assert "PermitRootLogin no" in (host / "etc/ssh/sshd_config").read_text()

    again = run_cli("fix", str(host), "--only", "config.ssh", "--yes", "--json", home=home)
    assert json.loads(again.stdout)["run"] is None

    shown = json.loads(run_cli("runs", "show", str(run_id), "--json", home=home).stdout)
    assert {s["status"] for s in shown["steps"]} == {"verified", "needs_manual"}

    rb = run_cli("rollback", str(run_id), "--yes", "--json", home=home)
    assert rb.returncode == 0, rb.stderr
    assert json.loads(rb.stdout)["verified"] is True
    assert _files(host) == before

    twice = run_cli("rollback", str(run_id), "--yes", home=home)
    assert twice.returncode == 2 and "already rolled back" in twice.stderr
    assert run_cli("audit", "verify", home=home).returncode == 0


def test_failed_fix_exits_1(host: Path, tmp_path: Path) -> None:
    # A config sshd cannot load: a Match block with a global-only keyword makes
    # the candidate fail `sshd -t`, so the fix is refused before it lands.
    cfg = host / "etc/ssh/sshd_config"
    cfg.write_text(cfg.read_text() + "\nMatch User nobody\n    Port 2222\n")
    before = _files(host)
    r = run_cli("fix", str(host), "--only", "SSHD-ROOT-LOGIN", "--yes", home=tmp_path / "ws")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "validation failed, nothing applied" in r.stdout
    assert _files(host) == before


def test_bad_params_and_targets(host: Path, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    r = run_cli("fix", str(host), "-p", "sshd-hardening.level=extreme", "--yes", home=home)
    assert r.returncode == 2 and "parameter level" in r.stderr
    r = run_cli("fix", str(tmp_path / "nope"), "--yes", home=home)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_cli("fix", "ftp://x/y", "--yes", home=home)
    assert r.returncode == 2
    r = run_cli("findings", "list", "--status", "done", home=home)
    assert r.returncode == 2 and "unknown status 'done'" in r.stderr


def test_remediators_list_json(tmp_path: Path) -> None:
    r = run_cli("remediators", "list", "--json", home=tmp_path / "ws")
    data = json.loads(r.stdout)
    names = {p["name"] for p in data["remediators"]}
    assert {"sshd-hardening", "postgresql-conf", "pg-hba", "nftables-firewall"} <= names
    assert data["failed_to_load"] == []
