"""``validate``: the real ``sshd -t`` on the candidate, Includes and all."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.sshd import validate as sshd_check
from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.conftest import need_service

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sshd"
MAIN = "etc/ssh/sshd_config"
DROPIN = "etc/ssh/sshd_config.d/50-cloud-init.conf"
PLUGIN = SshdHardening()


@pytest.fixture
def _sshd_installed() -> None:
    need_service(
        sshd_check.find_sshd() is not None, "sshd is not installed; run scripts/services.sh"
    )


needs_sshd = pytest.mark.usefixtures("_sshd_installed")


def host(tmp_path: Path, name: str = "messy") -> LocalTarget:
    shutil.copytree(FIXTURES / name, tmp_path / name)
    return LocalTarget(tmp_path / name)


def edit_plan(target: LocalTarget, path: str, new_text: str) -> Plan:
    return Plan(
        remediator="sshd-hardening",
        rule_id="TEST",
        title="hand-made candidate",
        changes=[
            WriteFile(
                path=path, content=new_text, before_sha256=sha256_bytes(target.read_bytes(path))
            )
        ],
    )


def status(target: LocalTarget, plan: Plan) -> tuple[str, str]:
    [result] = PLUGIN.validate(plan, OverlayView(target, plan))
    assert result.validator == "sshd -t"
    return result.status, result.detail


@needs_sshd
def test_real_plan_passes(tmp_path: Path) -> None:
    target = host(tmp_path)
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-WEAK-KEX")
    plan = PLUGIN.plan(finding, target, SshdParams(level="maximum"))
    assert status(target, plan)[0] == "passed"


@needs_sshd
def test_bogus_keyword_fails_with_sshds_message_and_target_paths(tmp_path: Path) -> None:
    target = host(tmp_path)
    text = (target.root / MAIN).read_text().replace("PrintMotd no", "PrintMotd no\nBogusOption yes")
    result, detail = status(target, edit_plan(target, MAIN, text))
    assert result == "failed"
    assert "Bad configuration option: BogusOption" in detail
    assert "etc/ssh/sshd_config: line 34" in detail
    assert str(tmp_path) not in detail and "jupiter-sshd-" not in detail


@needs_sshd
def test_included_files_are_checked_too(tmp_path: Path) -> None:
    target = host(tmp_path)
    plan = edit_plan(target, DROPIN, "PasswordAuthentication maybe\n")
    result, detail = status(target, plan)
    assert result == "failed"
    assert "50-cloud-init.conf" in detail and "maybe" in detail


@needs_sshd
def test_unknown_algorithm_and_global_keyword_in_match_fail(tmp_path: Path) -> None:
    target = host(tmp_path)
    plan = edit_plan(target, DROPIN, "KexAlgorithms no-such-kex@example.com\n")
    result, detail = status(target, plan)
    assert result == "failed" and "KexAlgorithms" in detail
    text = (target.root / MAIN).read_text() + "\tCiphers aes256-ctr\n"
    result, detail = status(target, edit_plan(target, MAIN, text))
    assert result == "failed" and "not allowed within a Match block" in detail


@needs_sshd
def test_relative_includes_are_materialised(tmp_path: Path) -> None:
    target = host(tmp_path, "hardened")
    crypto = "etc/ssh/sshd_config.d/10-crypto.conf"
    text = (target.root / crypto).read_text() + "Ciphers aes256-cbc-typo\n"
    # the drop-in's first Ciphers line wins, but sshd -t still checks every line
    result, detail = status(target, edit_plan(target, crypto, text))
    assert result == "failed" and "aes256-cbc-typo" in detail


def test_sshd_missing_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = host(tmp_path)
    plan = Plan(remediator="sshd-hardening", rule_id="TEST", title="t")
    monkeypatch.setattr(sshd_check, "find_sshd", lambda: None)
    assert status(target, plan) == ("skipped", "sshd is not installed on this machine")
    result = sshd_check.sshd_syntax_check(target, sshd=str(tmp_path / "no-sshd"))
    assert result.status == "skipped" and "no-sshd" in result.detail


@needs_sshd
def test_candidate_without_sshd_config_fails(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    result = sshd_check.sshd_syntax_check(LocalTarget(tmp_path))
    assert result.status == "failed" and "no etc/ssh/sshd_config" in result.detail


def test_commands_are_bounded_by_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshd_check, "TIMEOUT", 0.2)
    done = sshd_check._run(["sleep", "5"])
    assert done.returncode == 124 and "timed out" in done.stderr


@needs_sshd
def test_post_quantum_kex_is_accepted_only_where_sshd_supports_it(tmp_path: Path) -> None:
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    offered = subprocess.run(
        [ssh, "-Q", "kex"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.split()
    target = host(tmp_path)
    plan = edit_plan(target, DROPIN, "KexAlgorithms mlkem768x25519-sha256,curve25519-sha256\n")
    result, detail = status(target, plan)
    if "mlkem768x25519-sha256" in offered:
        assert result == "passed", detail
    else:
        assert result == "failed" and "mlkem768x25519-sha256" in detail
