"""Detection: which findings, where, how severe, at which level."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.models import Category, Severity
from jupiter.plugins.registry import load_registry
from jupiter.plugins.sshd.detect import RULES, check
from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
from jupiter.targets.local import LocalTarget

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sshd"
MAIN = "etc/ssh/sshd_config"
CLOUD = "etc/ssh/sshd_config.d/50-cloud-init.conf"
LEGACY = "etc/ssh/sshd_config.d/60-legacy-clients.conf"

BASELINE = {
    ("SSHD-LOGIN-GRACE-TIME", MAIN, 12),
    ("SSHD-ROOT-LOGIN", MAIN, 13),  # "permitrootlogin yes"; line 14's "no" is ignored
    ("SSHD-MAX-AUTH-TRIES", MAIN, 16),  # MaxAuthTries=10
    ("SSHD-X11-FORWARDING", MAIN, 32),
    ("SSHD-CLIENT-ALIVE", MAIN, None),  # unset: ClientAliveInterval 0
    ("SSHD-WEAK-CIPHERS", MAIN, 35),
    ("SSHD-WEAK-MACS", MAIN, 36),
    ("SSHD-WEAK-KEX", LEGACY, 2),
    # unset: OpenSSH's defaults sign with and accept ECDSA on NIST curves
    ("SSHD-WEAK-HOSTKEY-ALGORITHMS", MAIN, None),
    ("SSHD-MATCH-OVERRIDE", MAIN, 50),  # Match Address: X11Forwarding yes
}
STRICT = BASELINE | {
    ("SSHD-PASSWORD-AUTH", CLOUD, 1),  # the drop-in wins over line 22's "no"
    ("SSHD-KBD-INTERACTIVE", MAIN, 28),  # ChallengeResponseAuthentication yes
    ("SSHD-MATCH-OVERRIDE", MAIN, 46),  # Match User backup: PasswordAuthentication yes
    ("SSHD-RSA-KEY-SIZE", MAIN, None),  # RequiredRSASize 1024 by default
    ("SSHD-WEAK-PUBKEY-ALGORITHMS", MAIN, None),  # users' ECDSA keys: may lock out
}
MAXIMUM = STRICT | {
    ("SSHD-AGENT-FORWARDING", MAIN, None),
    ("SSHD-TCP-FORWARDING", MAIN, None),
    ("SSHD-MATCH-OVERRIDE", MAIN, 51),  # Match Address: AllowTcpForwarding yes
}


def host(tmp_path: Path, name: str) -> LocalTarget:
    shutil.copytree(FIXTURES / name, tmp_path / name)
    return LocalTarget(tmp_path / name)


def keyset(findings: list) -> set[tuple[str, str | None, int | None]]:  # type: ignore[type-arg]
    return {(f.rule_id, f.location.path, f.location.start_line) for f in findings}


@pytest.mark.parametrize(
    ("level", "expected"), [("baseline", BASELINE), ("strict", STRICT), ("maximum", MAXIMUM)]
)
def test_messy_config_findings_per_level(tmp_path: Path, level: str, expected: set) -> None:  # type: ignore[type-arg]
    view = host(tmp_path, "messy")
    findings = check(view, level)  # type: ignore[arg-type]
    assert keyset(findings) == expected
    assert len(findings) == len(expected)
    for f in findings:
        assert f.category is Category.CONFIG_SSH
        assert f.extra["level"] == level
        if f.location.start_line is not None:
            lines = (view.root / f.location.path).read_text().splitlines()  # type: ignore[operator]
            assert f.evidence == lines[f.location.start_line - 1].strip()


def test_default_detect_is_strict_and_params_select_the_level(tmp_path: Path) -> None:
    view = host(tmp_path, "messy")
    plugin = SshdHardening()
    assert keyset(plugin.detect(view)) == STRICT
    assert keyset(plugin.detect(view, SshdParams(level="baseline"))) == BASELINE


def test_severities_and_evidence(tmp_path: Path) -> None:
    findings = {(f.rule_id, f.location.start_line): f for f in check(host(tmp_path, "messy"))}
    root = findings[("SSHD-ROOT-LOGIN", 13)]
    assert root.severity is Severity.HIGH
    assert root.evidence == "permitrootlogin yes   # TODO: switch off after the migration (2019)"
    assert findings[("SSHD-WEAK-CIPHERS", 35)].severity is Severity.MEDIUM
    assert "CWE-327" in findings[("SSHD-WEAK-CIPHERS", 35)].cwe
    assert findings[("SSHD-X11-FORWARDING", 32)].severity is Severity.LOW
    kbd = findings[("SSHD-KBD-INTERACTIVE", 28)]
    assert "ChallengeResponseAuthentication yes" in kbd.title
    alive = findings[("SSHD-CLIENT-ALIVE", None)]
    assert alive.extra["unset"] == ["ClientAliveInterval"]
    assert "not set" in (alive.evidence or "")
    override = findings[("SSHD-MATCH-OVERRIDE", 46)]
    assert override.extra["overrides"] == "SSHD-PASSWORD-AUTH"
    assert override.extra["match"] == "User backup"
    assert override.evidence == "PasswordAuthentication yes"


def test_unset_insecure_defaults_are_reported_on_the_main_file(tmp_path: Path) -> None:
    view = host(tmp_path, "debian-stock")
    found = keyset(check(view, "strict"))
    assert found == {
        ("SSHD-ROOT-LOGIN", MAIN, None),  # prohibit-password by default
        ("SSHD-MAX-AUTH-TRIES", MAIN, None),  # 6
        ("SSHD-LOGIN-GRACE-TIME", MAIN, None),  # 120
        ("SSHD-CLIENT-ALIVE", MAIN, None),  # 0
        ("SSHD-WEAK-MACS", MAIN, None),  # default includes hmac-sha1, umac-64
        ("SSHD-WEAK-KEX", MAIN, None),  # default includes ecdh-sha2-nistp*
        ("SSHD-WEAK-HOSTKEY-ALGORITHMS", MAIN, None),  # ecdsa-sha2-nistp*
        ("SSHD-WEAK-PUBKEY-ALGORITHMS", MAIN, None),
        ("SSHD-RSA-KEY-SIZE", MAIN, None),  # 1024
        ("SSHD-PASSWORD-AUTH", MAIN, None),  # yes
        ("SSHD-X11-FORWARDING", MAIN, 90),  # Debian sets it to yes
    }
    root = next(f for f in check(view) if f.rule_id == "SSHD-ROOT-LOGIN")
    assert root.severity is Severity.MEDIUM


def test_hardened_config_is_clean_at_every_level(tmp_path: Path) -> None:
    view = host(tmp_path, "hardened")
    for level in ("baseline", "strict", "maximum"):
        assert check(view, level) == []  # type: ignore[arg-type]


def test_no_sshd_config_means_no_findings(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    assert check(LocalTarget(tmp_path)) == []


@pytest.mark.parametrize(
    ("line", "rule", "bad"),
    [
        ("LoginGraceTime 0", "SSHD-LOGIN-GRACE-TIME", True),  # 0 = no limit
        ("LoginGraceTime 1m", "SSHD-LOGIN-GRACE-TIME", False),
        ("MaxAuthTries 4", "SSHD-MAX-AUTH-TRIES", False),
        ("MaxAuthTries 5", "SSHD-MAX-AUTH-TRIES", True),
        ("ClientAliveInterval 5m", "SSHD-CLIENT-ALIVE", False),
        ("ClientAliveInterval 301", "SSHD-CLIENT-ALIVE", True),
        ("PermitRootLogin without-password", "SSHD-ROOT-LOGIN", True),
        ("PermitEmptyPasswords YES", "SSHD-EMPTY-PASSWORDS", True),
        ("Ciphers -aes128-ctr", "SSHD-WEAK-CIPHERS", False),
        ("KexAlgorithms diffie-hellman-group14-sha1", "SSHD-WEAK-KEX", True),
        ("MACs -*sha1*,umac-64*", "SSHD-WEAK-MACS", False),
    ],
)
def test_value_judgement(tmp_path: Path, line: str, rule: str, bad: bool) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / MAIN).write_text(
        f"{line}\nClientAliveCountMax 0\n" if "Alive" in line else f"{line}\n"
    )
    rules = {f.rule_id for f in check(LocalTarget(tmp_path), "baseline")}
    if "Alive" in line:
        assert "SSHD-CLIENT-ALIVE" in rules  # CountMax 0 disables the timeout
        (tmp_path / MAIN).write_text(f"{line}\n")
        rules = {f.rule_id for f in check(LocalTarget(tmp_path), "baseline")}
    assert (rule in rules) is bad


def test_plugin_is_registered_with_its_rules() -> None:
    registry = load_registry()
    assert "sshd-hardening" not in registry.errors
    plugin = registry.get("sshd-hardening")
    assert isinstance(plugin, SshdHardening)
    extra = {"SSHD-MATCH-OVERRIDE", "SSHD-WEAK-HOST-KEY", "SSHD-DH-MODULI", "SSHD-INLINE-CONFIG"}
    assert {r.rule_id for r in RULES} | extra == set(plugin.rule_ids)
    assert plugin.parse_params({"level": "maximum"}) == SshdParams(level="maximum")
    with pytest.raises(ValueError, match="level"):
        plugin.parse_params({"level": "paranoid"})


@pytest.mark.parametrize("name", ["messy", "debian-stock"])
def test_every_finding_has_its_own_fingerprint(tmp_path: Path, name: str) -> None:
    # several unset defaults share (main file, no line): the rule id must tell them apart
    findings = check(host(tmp_path, name), "maximum")
    assert len({f.fingerprint("web-01") for f in findings}) == len(findings)
