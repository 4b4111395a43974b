"""Plans: plan → apply → detect clean → re-plan empty, at every level."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.sshd.detect import RULES_BY_ID
from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sshd"
MAIN = "etc/ssh/sshd_config"
PLUGIN = SshdHardening()


def host(tmp_path: Path, name: str) -> LocalTarget:
    shutil.copytree(FIXTURES / name, tmp_path / name)
    return LocalTarget(tmp_path / name)


def apply(target: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        assert sha256_bytes(target.read_bytes(change.path)) == change.before_sha256
        target.write_bytes(change.path, change.content.encode())


def match_blocks(text: str) -> str:
    return text[text.index("\nMatch ") :]


def fix_everything(
    target: LocalTarget, level: str, *, check: bool = False
) -> tuple[list[FindingRecord], list[Plan]]:
    """Plan, (validate,) apply one finding after the other, as the engine does."""
    params = SshdParams(level=level)  # type: ignore[arg-type]
    findings = PLUGIN.detect(target, params)
    manual = []
    for finding in findings:
        plan = PLUGIN.plan(finding, target, params)
        if plan.needs_manual:
            assert finding.rule_id == "SSHD-MATCH-OVERRIDE"
            assert not plan.changes
            manual.append(plan)
            continue
        assert plan.changes, finding.rule_id
        if check:
            results = PLUGIN.validate(plan, OverlayView(target, plan))
            assert [r.status for r in results] == ["passed"], results
        apply(target, plan)
    return findings, manual


@pytest.mark.parametrize("level", ["baseline", "strict", "maximum"])
def test_fix_every_finding_then_detect_is_clean_except_match_overrides(
    tmp_path: Path, level: str
) -> None:
    target = host(tmp_path, "messy")
    before = (target.root / MAIN).read_text()
    findings, manual = fix_everything(target, level, check=True)
    params = SshdParams(level=level)  # type: ignore[arg-type]
    after = (target.root / MAIN).read_text()

    remaining = PLUGIN.detect(target, params)
    assert {f.rule_id for f in remaining} == {"SSHD-MATCH-OVERRIDE"}
    assert len(remaining) == len(manual)
    assert match_blocks(after) == match_blocks(before)  # Match blocks byte-identical
    comments = [ln for ln in before.splitlines() if ln.lstrip().startswith("#")]
    assert [ln for ln in after.splitlines() if ln.lstrip().startswith("#")] == comments
    assert "permitrootlogin no   # TODO: switch off after the migration (2019)" in after
    for finding in findings:  # re-plan: nothing left to change
        plan = PLUGIN.plan(finding, target, params)
        assert plan.changes == []
        assert bool(plan.needs_manual) == (finding.rule_id == "SSHD-MATCH-OVERRIDE")
    final = Plan(remediator="sshd-hardening", rule_id="all", title="final state")
    assert [r.status for r in PLUGIN.validate(final, target)] == ["passed"]


def test_strict_result_in_detail(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    fix_everything(target, "strict")
    main = (target.root / MAIN).read_text().splitlines()
    assert main[11] == "LoginGraceTime 60"
    assert main[15] == "MaxAuthTries=4"
    assert main[27] == "ChallengeResponseAuthentication no"
    assert "Ciphers aes256-ctr,aes256-gcm@openssh.com" in main
    assert "MACs hmac-sha2-512" in main
    # the unset setting lands after the last global line, above the Match comment
    sub = main.index("Subsystem\tsftp\t/usr/lib/openssh/sftp-server")
    # settings nobody wrote are written explicitly, because the defaults of
    # this OpenSSH offer what the level refuses
    inserted = main[sub + 1 : sub + 5]
    assert {ln.split()[0] for ln in inserted} == {
        "ClientAliveInterval",
        "HostKeyAlgorithms",
        "PubkeyAcceptedAlgorithms",
        "RequiredRSASize",
    }
    assert "ClientAliveInterval 300" in inserted and "RequiredRSASize 2048" in inserted
    assert "ecdsa" not in " ".join(inserted)
    assert main[sub + 5 : sub + 7] == [
        "",
        "# The backup robot still logs in with a password (ticket OPS-1422)",
    ]
    cloud = (target.root / "etc/ssh/sshd_config.d/50-cloud-init.conf").read_text()
    assert cloud == "PasswordAuthentication no\n"
    legacy = (target.root / "etc/ssh/sshd_config.d/60-legacy-clients.conf").read_text()
    assert legacy.startswith("# Old Java SFTP client")
    assert "group1-sha1" not in legacy and "KexAlgorithms sntrup761x25519" in legacy


def test_baseline_fix_verifies_at_baseline_but_not_at_strict(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    fix_everything(target, "baseline")
    baseline = SshdParams(level="baseline")
    assert {f.rule_id for f in PLUGIN.detect(target, baseline)} == {"SSHD-MATCH-OVERRIDE"}
    strict_left = {f.rule_id for f in PLUGIN.detect(target)}
    assert {"SSHD-PASSWORD-AUTH", "SSHD-KBD-INTERACTIVE"} <= strict_left
    # a strict-only finding planned at baseline changes nothing, and says why
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-PASSWORD-AUTH")
    plan = PLUGIN.plan(finding, target, baseline)
    assert plan.changes == [] and plan.needs_manual is None
    assert "from level 'strict'" in plan.risk.warnings[0]


def test_each_plan_touches_only_its_own_setting(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    params = SshdParams(level="maximum")
    for finding in PLUGIN.detect(target, params):
        if finding.rule_id == "SSHD-MATCH-OVERRIDE":
            continue
        plan = PLUGIN.plan(finding, target, params)
        keywords = {s.keyword.lower() for s in RULES_BY_ID[finding.rule_id].settings}
        if finding.rule_id == "SSHD-KBD-INTERACTIVE":
            keywords.add("challengeresponseauthentication")
        changed = [
            ln[1:]
            for ln in plan.diff.splitlines()
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
        ]
        assert changed
        for line in changed:
            assert re.split(r"[\s=]", line.strip(), maxsplit=1)[0].lower() in keywords, line


def test_password_plan_carries_lockout_risk(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-PASSWORD-AUTH")
    plan = PLUGIN.plan(finding, target, SshdParams())
    assert plan.risk.change_kind == "config"
    assert plan.risk.services_to_reload == ["sshd"]
    assert plan.risk.disruption is True
    assert any("locked out" in w for w in plan.risk.warnings)
    assert any("SSH keys are deployed for every user" in s for s in plan.risk.manual_steps)
    assert plan.touched_paths() == ["etc/ssh/sshd_config.d/50-cloud-init.conf"]
    assert plan.diff.startswith("--- a/etc/ssh/sshd_config.d/50-cloud-init.conf")


def test_applying_a_plan_twice_is_the_same_as_once(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-ROOT-LOGIN")
    plan = PLUGIN.plan(finding, target, SshdParams())
    apply(target, plan)
    once = (target.root / MAIN).read_bytes()
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        target.write_bytes(change.path, change.content.encode())
    assert (target.root / MAIN).read_bytes() == once


def test_insert_without_match_goes_after_last_directive_not_into_comments(
    tmp_path: Path,
) -> None:
    target = host(tmp_path, "debian-stock")
    fix_everything(target, "maximum")
    text = (target.root / MAIN).read_text()
    assert PLUGIN.detect(target, SshdParams(level="maximum")) == []
    tail = text[text.index("Subsystem\tsftp") :].splitlines()
    assert tail[1:4] == ["PermitRootLogin no", "MaxAuthTries 4", "LoginGraceTime 60"]
    assert text.endswith("#\tForceCommand cvs server\n")  # example block untouched


def test_crlf_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / MAIN).write_bytes(b"# windows editor\r\nX11Forwarding yes\r\nPort 22")
    target = LocalTarget(tmp_path)
    fix_everything(target, "strict")
    data = (tmp_path / MAIN).read_bytes()
    assert data.startswith(b"# windows editor\r\nX11Forwarding no\r\nPort 22\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_match_all_value_is_overridden_by_a_global_line(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / MAIN).write_text("Port 22\nMatch all\n\tX11Forwarding yes\n")
    target = LocalTarget(tmp_path)
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-X11-FORWARDING")
    assert finding.location.start_line == 3
    apply(target, PLUGIN.plan(finding, target, SshdParams()))
    expected = "Port 22\nX11Forwarding no\nMatch all\n\tX11Forwarding yes\n"
    assert (tmp_path / MAIN).read_text() == expected
    # the Match all line now overrides for every connection: a manual finding
    left = [f for f in PLUGIN.detect(target) if "X11" in f.title]
    assert [(f.rule_id, f.location.start_line) for f in left] == [("SSHD-MATCH-OVERRIDE", 4)]


def test_match_override_plan_is_manual_and_empty_once_resolved(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    finding = next(f for f in PLUGIN.detect(target) if f.location.start_line == 46)
    plan = PLUGIN.plan(finding, target, SshdParams())
    assert plan.changes == []
    assert plan.needs_manual is not None
    assert "Match User backup" in plan.needs_manual
    assert "SSHD-PASSWORD-AUTH" in plan.needs_manual
    text = (
        (target.root / MAIN)
        .read_text()
        .replace("\tPasswordAuthentication yes\n\tForceCommand", "\tForceCommand")
    )
    target.write_bytes(MAIN, text.encode())
    plan = PLUGIN.plan(finding, target, SshdParams())
    assert plan.changes == [] and plan.needs_manual is None


def test_finding_for_a_file_that_no_longer_exists(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-PASSWORD-AUTH")
    target.remove("etc/ssh/sshd_config.d/50-cloud-init.conf")
    with pytest.raises(ConflictError, match=r"50-cloud-init\.conf .*no longer exists"):
        PLUGIN.plan(finding, target, SshdParams())
    kex = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-WEAK-KEX")
    target.remove(MAIN)
    with pytest.raises(ConflictError, match=r"^etc/ssh/sshd_config no longer exists on local:"):
        PLUGIN.plan(kex, target, SshdParams())
    alive = FindingRecord(
        scanner="jupiter-sshd",
        rule_id="SSHD-CLIENT-ALIVE",
        category=Category.CONFIG_SSH,
        title="t",
        severity=Severity.LOW,
        location=Location(path=MAIN),
    )
    with pytest.raises(ConflictError, match="sshd_config named by finding SSHD-CLIENT-ALIVE"):
        PLUGIN.plan(alive, target, SshdParams())


def test_foreign_rule_is_refused(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    finding = FindingRecord(
        scanner="x", rule_id="B608", title="t", severity=Severity.LOW, location=Location(path=MAIN)
    )
    assert not PLUGIN.handles(finding)
    with pytest.raises(InputError, match="cannot plan rule 'B608'"):
        PLUGIN.plan(finding, target, SshdParams())


def test_password_auth_is_not_turned_off_while_pubkey_is_off(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / MAIN).write_text("PubkeyAuthentication no\nPasswordAuthentication yes\n")
    target = LocalTarget(tmp_path)
    plans = {f.rule_id: PLUGIN.plan(f, target, SshdParams()) for f in PLUGIN.detect(target)}
    assert set(plans) == {
        "SSHD-PUBKEY-AUTH",
        "SSHD-PASSWORD-AUTH",
        "SSHD-KBD-INTERACTIVE",
        "SSHD-ROOT-LOGIN",
        "SSHD-MAX-AUTH-TRIES",
        "SSHD-LOGIN-GRACE-TIME",
        "SSHD-CLIENT-ALIVE",
        "SSHD-WEAK-MACS",
        "SSHD-WEAK-KEX",  # the defaults of OpenSSH 9.x include ecdh-sha2-nistp*
        "SSHD-WEAK-HOSTKEY-ALGORITHMS",
        "SSHD-WEAK-PUBKEY-ALGORITHMS",
        "SSHD-RSA-KEY-SIZE",
    }
    for rule in ("SSHD-PASSWORD-AUTH", "SSHD-KBD-INTERACTIVE"):
        assert plans[rule].changes == []
        assert "lock every user out" in (plans[rule].needs_manual or "")
    apply(target, plans["SSHD-PUBKEY-AUTH"])
    finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-PASSWORD-AUTH")
    plan = PLUGIN.plan(finding, target, SshdParams())
    assert plan.needs_manual is None and plan.changes


def test_invalid_params_are_refused_once_at_the_boundary() -> None:
    """Parameters are validated once, by the engine, into the plugin's own
    model; the plugin never re-validates them."""
    from jupiter.runs import params_for

    with pytest.raises(InputError, match=r"remediator sshd-hardening, parameter level: .*baseline"):
        params_for(PLUGIN, {"sshd-hardening": {"level": "paranoid"}})
    assert isinstance(params_for(PLUGIN, {}), SshdParams)


def test_example_host_for_the_demo(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "host"
    shutil.copytree(example, tmp_path / "host")
    target = LocalTarget(tmp_path / "host")
    found = {(f.rule_id, f.location.path, f.location.start_line) for f in PLUGIN.detect(target)}
    crypto = "etc/ssh/sshd_config.d/90-legacy-crypto.conf"
    assert found == {
        ("SSHD-ROOT-LOGIN", MAIN, 30),
        ("SSHD-MAX-AUTH-TRIES", MAIN, 32),
        ("SSHD-X11-FORWARDING", MAIN, 52),
        ("SSHD-LOGIN-GRACE-TIME", MAIN, None),
        ("SSHD-CLIENT-ALIVE", MAIN, 56),
        ("SSHD-WEAK-CIPHERS", crypto, 2),
        ("SSHD-WEAK-MACS", crypto, 3),
        ("SSHD-PASSWORD-AUTH", "etc/ssh/sshd_config.d/50-cloud-init.conf", 1),
        ("SSHD-MATCH-OVERRIDE", MAIN, 67),
        # from OpenSSH's defaults: the config never names these
        ("SSHD-WEAK-KEX", MAIN, None),
        ("SSHD-WEAK-HOSTKEY-ALGORITHMS", MAIN, None),
        ("SSHD-WEAK-PUBKEY-ALGORITHMS", MAIN, None),
        ("SSHD-RSA-KEY-SIZE", MAIN, None),
    }
    fix_everything(target, "strict", check=True)
    assert [f.rule_id for f in PLUGIN.detect(target)] == ["SSHD-MATCH-OVERRIDE"]
    text = (target.root / MAIN).read_text()
    assert "ClientAliveInterval 300\nClientAliveCountMax 3\n" in text
    assert (target.root / crypto).read_text().splitlines()[1:] == [
        "Ciphers aes256-ctr",
        "MACs=hmac-sha2-256",
    ]


def test_match_override_from_elsewhere_without_details_is_manual(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    finding = FindingRecord(
        scanner="lynis",
        rule_id="SSHD-MATCH-OVERRIDE",
        title="t",
        severity=Severity.MEDIUM,
        location=Location(path=MAIN),
    )
    plan = PLUGIN.plan(finding, target, SshdParams())
    assert plan.changes == [] and "review the Match blocks" in (plan.needs_manual or "")


def test_maximum_keeps_only_the_strongest_algorithms(tmp_path: Path) -> None:
    target = host(tmp_path, "messy")
    fix_everything(target, "maximum")
    main = (target.root / MAIN).read_text().splitlines()
    # the configured strong ones are kept (AEAD and CTR)
    assert "Ciphers aes256-ctr,aes256-gcm@openssh.com" in main
    # nothing left: the level's list
    assert (
        "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com"
        in main
    )
    assert "RequiredRSASize 3072" in main
    assert "AllowAgentForwarding no" in main and "AllowTcpForwarding no" in main
    legacy = (target.root / "etc/ssh/sshd_config.d/60-legacy-clients.conf").read_text()
    # post-quantum only: what OpenSSH 9.2 (Debian) supports of it
    kex = legacy.splitlines()[1].split(" ", 1)[1].split(",")
    assert kex and set(kex) <= {
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
    }
