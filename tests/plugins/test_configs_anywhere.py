"""Daemon configurations wherever a repository keeps them, end to end: scan
lists the files taken and why, fix delivers on a git branch after the real
daemon's checker accepted the candidate, a second run has nothing to do, and
rollback restores every byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from jupiter.engine import Engine
from tests.conftest import run_cli
from tests.plugins import configs_repos as repos

need_sshd = pytest.mark.skipif(
    not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()),
    reason="openssh-server is not installed; run scripts/services.sh",
)
need_postgres = pytest.mark.skipif(
    shutil.which("postgres") is None and not list(Path("/usr/lib/postgresql").glob("*/bin")),
    reason="PostgreSQL binaries are not installed; run scripts/services.sh",
)


def _verified(result: dict[str, Any]) -> list[dict[str, Any]]:
    assert result["status"] == "succeeded", result["steps"]
    return [s for s in result["steps"] if s["status"] == "verified"]


def _validations(steps: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [v for s in steps for v in s["validations"]]


def _taken(scan: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {t["path"]: t for t in scan["config_files"]}


@need_sshd
def test_lab_repo_fixed_on_a_branch_validated_idempotent_rolled_back(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    repo = repos.commit_all(repos.lab(tmp_path / "lab"))
    before = repos.files(repo)
    scan = sqlite_engine.scan(str(repo)).to_json()
    taken = _taken(scan)
    assert taken["ssh-hardening/sshd_config"]["status"] == "taken"
    assert "named sshd_config" in taken["ssh-hardening/sshd_config"]["evidence"]
    dropin = taken["ssh-hardening/sshd_config.d/10-tries.conf"]
    assert (
        dropin["role"] == "include"
        and "included by ssh-hardening/sshd_config" in (dropin["evidence"])
    )
    assert taken["docs/sshd_config"]["status"] == "refused"
    errors = " ".join(e["error"] for e in scan["errors"])
    assert "/etc/ssh/site/*.conf is an absolute host path outside the repository" in errors

    only = ["SSHD-ROOT-LOGIN", "SSHD-X11-FORWARDING", "SSHD-MAX-AUTH-TRIES"]
    result = sqlite_engine.fix(str(repo), only=only, git_branch="jupiter/sshd")
    steps = _verified(result)
    assert {s["rule_id"] for s in steps} == set(only)
    assert all(s["commit"] for s in steps)
    checks = _validations(steps)
    assert checks and all(v["validator"] == "sshd -t" and v["status"] == "passed" for v in checks)
    assert all("throw-away ed25519 key" in v["detail"] for v in checks)
    text = (repo / "ssh-hardening/sshd_config").read_text()
    assert "PermitRootLogin no" in text and "X11Forwarding no" in text
    assert (repo / "ssh-hardening/sshd_config.d/10-tries.conf").read_text() == "MaxAuthTries 4\n"
    assert (repo / "docs/sshd_config").read_bytes() == before["docs/sshd_config"]
    assert repos.git(repo, "status", "--porcelain") == ""

    fixed = repos.files(repo)
    again = sqlite_engine.fix(str(repo), only=only)  # idempotent: nothing left to do
    assert (again["status"], again["steps"]) == ("nothing_to_do", [])
    assert repos.files(repo) == fixed

    rolled = sqlite_engine.rollback(result["run"])
    assert rolled["verified"]
    assert repos.files(repo) == before


@need_postgres
def test_database_repo_pair_fixed_and_validated_by_a_real_server(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    repo = repos.commit_all(repos.database(tmp_path / "db"))
    before = repos.files(repo)
    taken = _taken(sqlite_engine.scan(str(repo)).to_json())
    assert taken["postgresql.conf"]["status"] == "taken"
    assert taken["pg_hba.conf"]["evidence"].startswith("the pg_hba.conf beside postgresql.conf")
    assert taken["conf.d/logging.conf"]["role"] == "include"

    only = ["PG-LOG-CONNECTIONS", "PG-HBA-TRUST"]
    result = sqlite_engine.fix(str(repo), only=only, git_branch="jupiter/pg")
    steps = _verified(result)
    assert {s["rule_id"] for s in steps} == set(only)
    checks = _validations(steps)
    assert checks and all(v["validator"] == "postgres start" for v in checks)
    assert all(v["status"] == "passed" for v in checks), checks
    # ssl = on names the host's snakeoil pair, which the repository does not hold
    assert all("throw-away self-signed certificate" in v["detail"] for v in checks)
    assert "log_connections = on" in (repo / "conf.d/logging.conf").read_text()
    assert "local   all   all                     peer" in (repo / "pg_hba.conf").read_text()

    fixed = repos.files(repo)
    again = sqlite_engine.fix(str(repo), only=only)
    assert (again["status"], again["steps"]) == ("nothing_to_do", [])
    assert repos.files(repo) == fixed
    assert sqlite_engine.rollback(result["run"])["verified"]
    assert repos.files(repo) == before


@need_sshd
def test_docker_build_context_fixes_the_copied_file_and_reports_inline_edits(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    repo = repos.commit_all(repos.image(tmp_path / "image"))
    before = repos.files(repo)
    taken = _taken(sqlite_engine.scan(str(repo)).to_json())
    assert taken["config/server.conf"]["evidence"].startswith(
        "Dockerfile line 4 copies it to /etc/ssh/sshd_config in an image that installs "
        "openssh-server"
    )
    result = sqlite_engine.fix(
        str(repo), only=["SSHD-ROOT-LOGIN", "SSHD-INLINE-CONFIG"], git_branch="jupiter/img"
    )
    assert result["status"] in ("succeeded", "partial"), result["steps"]
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for step in result["steps"]:
        by_rule.setdefault(step["rule_id"], []).append(step)
    [root] = by_rule["SSHD-ROOT-LOGIN"]
    assert root["status"] == "verified"
    assert [v["status"] for v in root["validations"]] == ["passed"]
    manual = by_rule["SSHD-INLINE-CONFIG"]
    assert {s["status"] for s in manual} == {"needs_manual"}
    assert sorted(s["detail"].split(" writes")[0] for s in manual) == [
        "Dockerfile line 5",
        "Dockerfile line 6",
    ]
    assert "PermitRootLogin no" in (repo / "config/server.conf").read_text()
    assert (repo / "Dockerfile").read_bytes() == before["Dockerfile"]
    again = sqlite_engine.fix(str(repo), only=["SSHD-ROOT-LOGIN"])
    assert (again["status"], again["steps"]) == ("nothing_to_do", [])
    assert sqlite_engine.rollback(result["run"])["verified"]
    assert repos.files(repo) == before


@need_sshd
def test_ansible_role_literals_fixed_variables_named_broken_template_reported(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    repo = repos.commit_all(repos.role(tmp_path / "role"))
    before = repos.files(repo)
    scan = sqlite_engine.scan(str(repo)).to_json()
    taken = _taken(scan)
    assert taken["roles/ssh/templates/sshd_config.j2"]["role"] == "template"
    broken = taken["roles/broken/templates/sshd_config.j2"]
    assert broken["status"] == "refused" and "does not render" in broken["evidence"]

    result = sqlite_engine.fix(
        str(repo), only=["SSHD-ROOT-LOGIN", "SSHD-X11-FORWARDING"], git_branch="jupiter/role"
    )
    steps = {s["rule_id"]: s for s in result["steps"]}
    x11 = steps["SSHD-X11-FORWARDING"]
    assert x11["status"] == "verified"
    [check] = x11["validations"]
    assert check["status"] == "passed" and "rendered with the role's defaults" in check["detail"]
    root = steps["SSHD-ROOT-LOGIN"]
    assert root["status"] == "needs_manual"
    assert "Jinja variable ssh_permit_root" in root["detail"]
    assert "roles/ssh/defaults/main.yml line 3" in root["detail"]
    template = (repo / "roles/ssh/templates/sshd_config.j2").read_text()
    assert "X11Forwarding no" in template and "{{ ssh_permit_root }}" in template
    assert (repo / "roles/broken/templates/sshd_config.j2").read_bytes() == before[
        "roles/broken/templates/sshd_config.j2"
    ]
    again = sqlite_engine.fix(str(repo), only=["SSHD-X11-FORWARDING"])
    assert (again["status"], again["steps"]) == ("nothing_to_do", [])
    assert sqlite_engine.rollback(result["run"])["verified"]
    assert repos.files(repo) == before


def test_scan_json_lists_taken_files_with_evidence(tmp_path: Path) -> None:
    repo = repos.image(tmp_path / "image")
    done = run_cli("scan", str(repo), "--json", home=tmp_path / "ws")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [entry] = [t for t in report["config_files"] if t["path"] == "config/server.conf"]
    assert entry["domain"] == "sshd" and entry["remediator"] == "sshd-hardening"
    assert "copies it to /etc/ssh/sshd_config" in entry["evidence"]
    in_file = [f for f in report["findings"] if f["location"]["path"] == "config/server.conf"]
    assert in_file and all(f["config_file"]["evidence"] == entry["evidence"] for f in in_file)
