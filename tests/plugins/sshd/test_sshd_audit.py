"""Each level keeps its promise where SSH administrators check it: a real
sshd started with the fixed (or generated) configuration, judged by
ssh-audit. ``maximum``: 0 failures and 0 warnings; ``strict`` and
``baseline``: 0 failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jupiter.generate import generate
from jupiter.plugins.sshd.fix import SshdParams
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.conftest import ROOT, run_cli
from tests.plugins.sshd import auditor
from tests.plugins.sshd.test_sshd_remediate import PLUGIN, apply

EXAMPLE = ROOT / "examples" / "host"


@pytest.fixture(scope="module")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    auditor.tools_present()
    return auditor.make_host_keys(tmp_path_factory.mktemp("hostkeys"))


def example(tmp_path: Path) -> LocalTarget:
    shutil.copytree(EXAMPLE, tmp_path / "host")
    return LocalTarget(tmp_path / "host")


def fix_crypto(target: LocalTarget, params: SshdParams) -> None:
    """Apply every algorithm plan the remediator makes, as the engine would."""
    for finding in PLUGIN.detect(target, params):
        plan = PLUGIN.plan(finding, target, params)
        if plan.changes:
            results = PLUGIN.validate(plan, OverlayView(target, plan))
            assert [r.status for r in results] == ["passed"], results
            apply(target, plan)


def test_example_estate_before_the_fix_fails_as_the_issue_reports(
    tmp_path: Path, host_keys: list[Path]
) -> None:
    verdict = auditor.audit_target(example(tmp_path), tmp_path, host_keys)
    # from OpenSSH 9.2's defaults: the config never names KexAlgorithms
    assert {"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"} <= (verdict.failing())
    # from the legacy drop-in
    assert {"3des-cbc", "hmac-md5"} <= verdict.failing()
    assert {"hmac-sha2-256", "diffie-hellman-group14-sha256"} <= verdict.warned()
    assert verdict.returncode != 0


@pytest.mark.parametrize("level", ["baseline", "strict", "maximum"])
def test_fixed_example_estate_keeps_the_level_promise(
    tmp_path: Path, host_keys: list[Path], level: str
) -> None:
    target = example(tmp_path)
    fix_crypto(target, SshdParams(level=level))  # type: ignore[arg-type]
    verdict = auditor.audit_target(target, tmp_path, host_keys)
    assert verdict.failures == []
    if level == "maximum":
        assert verdict.warnings == []
        assert verdict.returncode == 0
        assert set(verdict.offered["kex"]) <= {
            "mlkem768x25519-sha256",
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "kex-strict-s-v00@openssh.com",
        }
    else:
        # strict keeps what ssh-audit only warns about: the levels differ
        assert verdict.warnings
    # the detector agrees with the auditor: nothing left at that level
    left = {f.rule_id for f in PLUGIN.detect(target, SshdParams(level=level))}  # type: ignore[arg-type]
    assert not left & {"SSHD-WEAK-KEX", "SSHD-WEAK-MACS", "SSHD-WEAK-CIPHERS"}


def test_legacy_clients_keep_only_their_algorithms_at_baseline(
    tmp_path: Path, host_keys: list[Path]
) -> None:
    target = example(tmp_path)
    params = SshdParams(
        level="baseline", ssh_clients="legacy", ssh_clients_reason="monitoring appliance NET-311"
    )
    fix_crypto(target, params)
    verdict = auditor.audit_target(target, tmp_path, host_keys)
    # what old clients need stays (and ssh-audit says so) ...
    assert {"ecdh-sha2-nistp256"} <= verdict.failing()
    # ... but nothing that is broken for everyone
    assert not verdict.failing() & {"3des-cbc", "hmac-md5", "diffie-hellman-group1-sha1"}


def test_jupiter_fix_maximum_on_the_example_estate(tmp_path: Path, host_keys: list[Path]) -> None:
    """The whole command an administrator runs, then the auditor."""
    target = example(tmp_path)
    done = run_cli(
        "fix",
        str(target.root),
        "--only",
        "config.ssh",
        "--yes",
        "--json",
        "-p",
        "sshd-hardening.level=maximum",
        home=tmp_path / "ws",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    verdict = auditor.audit_target(target, tmp_path, host_keys)
    assert (verdict.failures, verdict.warnings) == ([], [])


@pytest.mark.parametrize("level", ["baseline", "strict", "maximum"])
def test_generated_config_keeps_the_level_promise(
    tmp_path: Path, host_keys: list[Path], level: str
) -> None:
    generated = generate("ssh", {"level": level, "sftp": False})
    target = LocalTarget(tmp_path)
    for path, content in generated.files.items():
        target.write_bytes(path, content.encode())
    verdict = auditor.audit_target(target, tmp_path, host_keys)
    assert verdict.failures == []
    if level == "maximum":
        assert verdict.warnings == []
        assert verdict.returncode == 0
