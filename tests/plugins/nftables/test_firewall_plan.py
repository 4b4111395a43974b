"""nftables-firewall: plan, validate with the real nft, apply, verify, and the
generated ruleset's own logic evaluated against a packet model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import FindingRecord
from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.nftables import fix as fw
from jupiter.plugins.nftables.evaluate import Decision, Packet, evaluate
from jupiter.plugins.nftables.fix import FirewallParams, NftablesFirewall, render_ruleset
from jupiter.plugins.nftables.parse import parse_ruleset
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.conftest import need_service

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "firewall"


@pytest.fixture
def _nft_installed() -> None:
    need_service(
        shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin") is not None,
        "nft is not installed; run scripts/services.sh",
    )


needs_nft = pytest.mark.usefixtures("_nft_installed")


def host(tmp_path: Path, ruleset: str | None = None) -> LocalTarget:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    if ruleset is not None:
        (root / "etc" / "nftables.conf").write_text(ruleset)
    return LocalTarget(root)


def apply(target: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        current = target.stat(change.path)
        expected = sha256_bytes(target.read_bytes(change.path)) if current else None
        assert expected == change.before_sha256, "plan precondition no longer holds"
        target.write_bytes(change.path, change.content.encode(), change.mode)


def first(findings: list[FindingRecord], rule_id: str) -> FindingRecord:
    return next(f for f in findings if f.rule_id == rule_id)


WEB: dict[str, object] = {
    "asset_type": "web_server",
    "admin_cidr": "10.0.0.0/8",
    "allow_udp_ports": "53",
}


@needs_nft
def test_host_without_firewall_plan_validate_apply_verify(tmp_path: Path) -> None:
    target = host(tmp_path)
    rem = NftablesFirewall()
    params = rem.parse_params(WEB)
    finding = first(rem.detect(target), "FW-NO-RULESET")

    plan = rem.plan(finding, target, params)
    [change] = plan.changes
    assert isinstance(change, WriteFile)
    assert (change.path, change.before_sha256, change.mode) == ("etc/nftables.conf", None, 0o755)
    assert change.content == render_ruleset(params)
    assert plan.diff.startswith("--- /dev/null\n+++ b/etc/nftables.conf\n")
    assert plan.risk.services_to_reload == ["nftables"]
    assert plan.risk.disruption is True
    assert any("only from 10.0.0.0/8" in w and "locks you out" in w for w in plan.risk.warnings)
    assert any("console" in s for s in plan.risk.manual_steps)
    assert any("above 60/minute (burst 20) from one source" in w for w in plan.risk.warnings)

    [result] = rem.validate(plan, OverlayView(target, plan))
    assert (result.validator, result.status) == ("nft -c", "passed"), result.detail

    apply(target, plan)
    assert (target.root / "etc/nftables.conf").stat().st_mode & 0o777 == 0o755
    # Verification with the remediator as the registry builds it (no params):
    # the declaration written into the ruleset keeps 80/443/53 declared.
    assert rem.detect(target) == []
    assert NftablesFirewall(params).detect(target) == []
    assert rem.detect(target, params) == []
    # Declaring less than the ruleset opens is noticed again.
    less = rem.parse_params({"admin_cidr": "10.0.0.0/8", "allow_udp_ports": [53]})
    [stale] = rem.detect(target, less)
    assert stale.rule_id == "FW-UNDECLARED-OPEN-PORT"
    assert stale.extra["tcp"] == [[80, 80], [443, 443]]
    assert rem.plan(finding, target, params).empty


def test_generated_ruleset_keeps_declared_services_reachable(tmp_path: Path) -> None:
    text = render_ruleset(WEB)
    ruleset = parse_ruleset(text)

    def fate(pkt: Packet) -> str:
        decision = evaluate(ruleset, pkt)
        assert not decision.uncertain, f"the model could not read a rule for {pkt}"
        return decision.verdict

    world, admin, world6 = "203.0.113.9", "10.1.2.3", "2001:db8::9"
    for port in (80, 443):
        assert fate(Packet("tcp", world, port)) == "accept"
        assert fate(Packet("tcp", world6, port)) == "accept"
    assert fate(Packet("udp", world, 53)) == "accept"
    assert fate(Packet("tcp", admin, 22)) == "accept"
    assert fate(Packet("tcp", world, 22)) == "drop"
    assert fate(Packet("tcp", world6, 22)) == "drop"
    for proto, port in (("tcp", 3306), ("tcp", 8080), ("udp", 161), ("tcp", 53), ("udp", 80)):
        assert fate(Packet(proto, world, port)) == "drop", (proto, port)
    assert fate(Packet("tcp", world, 3306, ct_state="established")) == "accept"
    assert fate(Packet("tcp", world, 3306, ct_state="related")) == "accept"
    assert fate(Packet("tcp", world, 80, ct_state="invalid")) == "drop"
    assert fate(Packet("tcp", "127.0.0.1", 3306, iif="lo")) == "accept"
    assert fate(Packet("icmp", world, icmp_type="echo-request")) == "accept"
    assert fate(Packet("icmp", world, icmp_type="timestamp-request")) == "drop"
    assert fate(Packet("icmpv6", world6, icmp_type="nd-neighbor-solicit")) == "accept"
    assert fate(Packet("icmpv6", world6, icmp_type="packet-too-big")) == "accept"
    # The decisive rule is the declared-port rule, not some accident.
    line = evaluate(ruleset, Packet("tcp", world, 443)).line
    assert line is not None
    assert text.splitlines()[line - 1].strip() == "tcp dport { 80, 443 } accept"


def test_packet_model_on_policy_accept_ruleset() -> None:
    ruleset = parse_ruleset((FIXTURES / "debian-default.nft").read_text())
    assert evaluate(ruleset, Packet("tcp", "203.0.113.9", 3306)) == Decision("accept", None)


@needs_nft
def test_replacing_a_hand_written_ruleset(tmp_path: Path) -> None:
    original = (FIXTURES / "hand-written.nft").read_text()
    target = host(tmp_path, original)
    (target.root / "etc/nftables.conf").chmod(0o600)
    rem = NftablesFirewall()
    finding = first(rem.detect(target), "FW-UNDECLARED-OPEN-PORT")
    plan = rem.plan(finding, target, rem.parse_params({"allow_ports": [8080]}))
    [change] = plan.changes
    assert isinstance(change, WriteFile)
    assert change.before_sha256 == sha256_bytes(original.encode())
    assert change.mode is None  # keep the file's own mode
    assert '-\t\tudp dport 161 log prefix "snmp: " accept\n' in plan.diff
    # 11 rules in chain input + 2 in chain services
    assert "the 13 rules of the current etc/nftables.conf are not" in plan.risk.warnings[0]
    assert any("stay open to any source" in w for w in plan.risk.warnings)
    assert "FW-UNDECLARED-OPEN-PORT" in plan.related_findings
    assert rem.validate(plan, OverlayView(target, plan))[0].status == "passed"
    apply(target, plan)
    assert (target.root / "etc/nftables.conf").stat().st_mode & 0o777 == 0o600
    assert rem.detect(target) == []
    assert rem.plan(finding, target, rem.parse_params({"allow_ports": [8080]})).empty


def test_plan_is_empty_when_the_finding_is_already_gone(tmp_path: Path) -> None:
    target = host(tmp_path)
    rem = NftablesFirewall()
    finding = first(rem.detect(target), "FW-NO-RULESET")
    fixed_by_hand = (
        "table inet f {\n chain i {\n  type filter hook input priority 0; policy drop;\n"
        "  tcp dport 22 accept\n }\n}\n"
    )
    (target.root / "etc/nftables.conf").write_text(fixed_by_hand)
    plan = rem.plan(finding, target, rem.parse_params({}))
    assert plan.empty and plan.needs_manual is None


@needs_nft
def test_validator_rejects_a_broken_candidate(tmp_path: Path) -> None:
    target = host(tmp_path)
    broken = "table inet filter {\n chain input {\n  tcp dport { 22, 80 accept\n }\n}\n"
    plan = Plan(
        remediator="nftables-firewall",
        rule_id="FW-NO-RULESET",
        title="t",
        changes=[WriteFile(path="etc/nftables.conf", content=broken, before_sha256=None)],
    )
    [result] = NftablesFirewall().validate(plan, OverlayView(target, plan))
    assert result.status == "failed"
    assert "etc/nftables.conf:3:" in result.detail and "syntax error" in result.detail


def test_validator_is_skipped_without_nft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(fw, "_SBIN_PATH", str(tmp_path))
    result = fw.check_with_nft(b"flush ruleset\n")
    assert (result.status, result.detail) == ("skipped", "nft is not installed on this machine")
    target = host(tmp_path)
    assert (
        NftablesFirewall().validate(Plan(remediator="x", rule_id="y", title="z"), target)[0].detail
        == "etc/nftables.conf is absent"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"allow_ports": "80,abc"}, r"parameter allow_ports: 'abc' is not a port number"),
        ({"allow_ports": [80, 70000]}, r"allow_ports: 70000 is not a port number"),
        ({"admin_ports": [0]}, r"admin_ports: 0 is not a port number"),
        ({"allow_udp_ports": [True]}, r"allow_udp_ports: True is not a port number"),
        ({"admin_cidr": "10.0.0.1/8"}, r"admin_cidr: '10.0.0.1/8' is not an IPv4/IPv6 network"),
        ({"admin_cidr": "bastion"}, r"admin_cidr: 'bastion' is not"),
        ({"asset_type": "mainframe"}, r"parameter asset_type: Input should be"),
        ({"allow_port": [80]}, r"parameter allow_port: Extra inputs are not permitted"),
    ],
)
def test_bad_params_are_input_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        NftablesFirewall().parse_params(raw)
    with pytest.raises(InputError, match=message):
        render_ruleset(raw)


def test_params_defaults_and_declarations() -> None:
    assert FirewallParams().public_tcp() == [22]
    web = fw.parse_firewall_params({"asset_type": "web_server", "allow_ports": "8443, 80"})
    assert web.allow_ports == [80, 8443]
    assert web.public_tcp() == [22, 80, 443, 8443]
    assert web.admin_tcp() == []
    db = fw.parse_firewall_params({"asset_type": "database", "admin_cidr": "2001:db8::/32"})
    assert (db.public_tcp(), db.admin_tcp()) == ([], [22])
    assert "ip6 saddr 2001:db8::/32 tcp dport { 22 } accept" in render_ruleset(db)
    assert "# jupiter-declared: tcp= udp=" in render_ruleset(db)
    assert render_ruleset(db) == render_ruleset(db.model_dump())


@needs_nft
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None,
    reason="needs root, setpriv and unshare to take CAP_NET_ADMIN away from nft",
)
def test_validator_without_cap_net_admin_is_skipped_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An nft that runs without CAP_NET_ADMIN, as for an unprivileged user
    # (inside unshare's namespace too, since the shim drops it after entering).
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "nft"
    nft = shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin")
    shim.write_text(f'#!/bin/sh\nexec setpriv --bounding-set=-net_admin {nft} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim_dir}:/usr/bin:/bin")
    monkeypatch.setattr(fw, "_SBIN_PATH", str(shim_dir))
    monkeypatch.setattr(fw.os, "geteuid", lambda: 1000)
    result = fw.check_with_nft(render_ruleset({}).encode())
    assert result.status == "skipped"
    assert result.detail.startswith("nft -c needs CAP_NET_ADMIN")
    # A syntax error is still a failure: nft parses before it asks the kernel.
    broken = fw.check_with_nft(b"table inet t {\n chain c {\n  tcp dport { 22 accept\n }\n}\n")
    assert broken.status == "failed" and "syntax error" in broken.detail
