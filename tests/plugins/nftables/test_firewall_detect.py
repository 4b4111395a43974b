"""Firewall detection: the nftables reader and the FW-* checks on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import Category, Severity
from jupiter.plugins.nftables.detect import DeclaredServices, check_firewall, declared_from_text
from jupiter.plugins.nftables.evaluate import Packet, evaluate
from jupiter.plugins.nftables.parse import parse_ruleset
from jupiter.targets.local import LocalTarget

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "firewall"


def host(tmp_path: Path, ruleset: str | None) -> LocalTarget:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    if ruleset is not None:
        (root / "etc" / "nftables.conf").write_text(ruleset)
    return LocalTarget(root)


def by_rule(findings: list, rule_id: str) -> list:  # type: ignore[type-arg]
    return [f for f in findings if f.rule_id == rule_id]


def test_missing_ruleset_is_reported(tmp_path: Path) -> None:
    findings = check_firewall(host(tmp_path, None))
    assert [f.rule_id for f in findings] == ["FW-NO-RULESET"]
    f = findings[0]
    assert f.category is Category.CONFIG_FIREWALL
    assert f.severity is Severity.HIGH
    assert f.location.path == "etc/nftables.conf"
    assert "does not exist" in (f.evidence or "")


def test_ruleset_without_input_chain_is_no_ruleset(tmp_path: Path) -> None:
    text = 'include "/etc/nftables.d/*.nft"\nadd rule inet filter input tcp dport 22 accept\n'
    findings = check_firewall(host(tmp_path, text))
    assert [f.rule_id for f in findings] == ["FW-NO-RULESET"]
    assert "line 2: add rule inet filter input" in (findings[0].evidence or "")
    assert "include" in (findings[0].evidence or "")


def test_broken_ruleset_is_reported_with_its_line(tmp_path: Path) -> None:
    text = "table inet filter {\n  chain input {\n    tcp dport { 22, 80 accept\n"
    findings = check_firewall(host(tmp_path, text))
    assert [f.rule_id for f in findings] == ["FW-NO-RULESET"]
    assert "never closed" in (findings[0].evidence or "")


def test_debian_default_ruleset_accepts_by_default(tmp_path: Path) -> None:
    view = host(tmp_path, (FIXTURES / "debian-default.nft").read_text())
    findings = check_firewall(view)
    assert [f.rule_id for f in findings] == ["FW-INPUT-POLICY-ACCEPT"]
    f = findings[0]
    assert f.location.start_line == 6  # the "chain input {" line
    assert "no policy given" in (f.evidence or "")
    assert f.extra["chain"] == "input"


def test_explicit_policy_accept_and_final_drop(tmp_path: Path) -> None:
    accept = (
        "table ip filter {\n chain in {\n"
        "  type filter hook input priority 0; policy accept;\n  iif lo accept\n }\n}\n"
    )
    assert [f.rule_id for f in check_firewall(host(tmp_path, accept))] == ["FW-INPUT-POLICY-ACCEPT"]
    # An unconditional drop as last rule makes the chain drop by default.
    final_drop = accept.replace("iif lo accept", "iif lo accept\n  counter drop")
    (tmp_path / "host" / "etc" / "nftables.conf").write_text(final_drop)
    assert check_firewall(LocalTarget(tmp_path / "host")) == []


def test_hand_written_ruleset_undeclared_ports(tmp_path: Path) -> None:
    view = host(tmp_path, (FIXTURES / "hand-written.nft").read_text())
    findings = check_firewall(view)
    assert by_rule(findings, "FW-INPUT-POLICY-ACCEPT") == []
    open_ports = {f.location.start_line: f for f in by_rule(findings, "FW-UNDECLARED-OPEN-PORT")}
    # 19 (admin net), 20 (trusted set), 17 (ct state), 29 (icmp) are restricted.
    assert sorted(open_ports) == [21, 22, 26, 27, 34, 35]
    assert open_ports[21].extra["tcp"] == [[80, 80], [443, 443]]
    assert open_ports[22].title.endswith("tcp 8080, 9000-9010")
    assert open_ports[26].extra["udp"] == [[161, 161]]
    assert open_ports[27].extra == {"chain": "input", "tcp": [[53, 53]], "udp": [[53, 53]]}
    assert open_ports[34].extra["chain"] == "services"  # reached through "jump services"
    assert open_ports[34].extra["tcp"] == [[6379, 6379]]  # "25 : drop" is not open
    # An interface match does not say the interface is internal: still reported.
    assert open_ports[35].evidence == 'iifname "eth1" tcp dport 2049 accept'
    assert all(f.severity is Severity.MEDIUM for f in open_ports.values())


def test_declared_ports_are_not_reported(tmp_path: Path) -> None:
    view = host(tmp_path, (FIXTURES / "hand-written.nft").read_text())
    declared = DeclaredServices(
        tcp=frozenset({22, 53, 80, 443, 2049, 6379, 8080, *range(9000, 9011)}),
        udp=frozenset({53}),
    )
    findings = check_firewall(view, declared)
    assert [(f.rule_id, f.location.start_line, f.extra["udp"]) for f in findings] == [
        ("FW-UNDECLARED-OPEN-PORT", 26, [[161, 161]])
    ]


@pytest.mark.parametrize(
    ("rule", "reported"),
    [
        ("tcp dport 3306 accept", "tcp 3306"),
        ("ip saddr 0.0.0.0/0 tcp dport 3306 accept", "tcp 3306"),
        ("ip saddr != 10.0.0.0/8 tcp dport 3306 accept", "tcp 3306"),
        ("tcp dport 3306 ct state new accept", "tcp 3306"),
        ("ip saddr 10.0.0.0/8 tcp dport 3306 accept", None),
        ("iif lo tcp dport 3306 accept", None),
        ("ct state established tcp dport 3306 accept", None),
        ("tcp dport 22 accept", None),
        ("meta l4proto tcp accept", "tcp 1-21, 23-65535"),
        ("accept", "tcp 1-21, 23-65535; udp 1-65535"),
        ("tcp dport >= 1024 accept", "tcp 1-21, 23-65535"),
        ("tcp dport @unknown_set accept", "tcp 1-21, 23-65535"),
    ],
)
def test_open_port_rules(tmp_path: Path, rule: str, reported: str | None) -> None:
    text = (
        "table inet filter {\n chain input {\n"
        "  type filter hook input priority 0; policy drop;\n"
        f"  {rule}\n }}\n}}\n"
    )
    findings = check_firewall(host(tmp_path, text))
    titles = [f.title for f in findings]
    if reported is None:
        assert titles == []
    else:
        assert titles == [f"Firewall opens undeclared ports to any source: {reported}"]
        assert findings[0].location.start_line == 4


def test_unknown_expressions_are_named_in_the_evidence(tmp_path: Path) -> None:
    text = (
        "table inet filter {\n chain input {\n"
        "  type filter hook input priority 0; policy drop;\n"
        "  fib daddr type local tcp dport 8443 accept\n }\n}\n"
    )
    [finding] = check_firewall(host(tmp_path, text))
    assert finding.rule_id == "FW-UNDECLARED-OPEN-PORT"
    assert "'fib daddr type local' is not interpreted" in (finding.evidence or "")


def test_reader_handles_defines_sets_comments_and_continuations() -> None:
    text = (
        "define PORTS = { 22, 443 } # trailing comment\n"
        "table inet t {\n"
        '  chain c { type filter hook input priority filter + 10; policy drop; comment "x # y" }\n'
        "  chain d {\n    tcp dport $PORTS \\\n      accept\n  }\n"
        "  map m { type ipv4_addr : verdict; elements = { 10.0.0.1 : accept } }\n"
        "}\n"
    )
    rs = parse_ruleset(text)
    [table] = rs.tables
    assert table.family == "inet"
    c, d = table.chains["c"], table.chains["d"]
    assert (c.type, c.hook, c.priority, c.policy) == ("filter", "input", "filter + 10", "drop")
    [rule] = d.rules
    assert rule.line == 5 and rule.verdict == "accept"
    assert rule.matches[0].values == ("22", "443")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("table inet t {\n chain c {\n", "line 2: the block opened here is never closed"),
        ('table inet t {\n chain c {\n  log prefix "oops\n }\n}\n', "line 3: a string"),
        ("table inet t {\n}\n}\n", "line 3: unexpected '}'"),
    ],
)
def test_reader_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_ruleset(text, "etc/nftables.conf")


def test_declaration_header_round_trip() -> None:
    declared = DeclaredServices(frozenset({443, 80}), frozenset({53}))
    assert declared.header() == "# jupiter-declared: tcp=80,443 udp=53"
    assert declared_from_text("x\n" + declared.header() + "\ny\n") == declared
    assert declared_from_text("# jupiter-declared: tcp=abc udp=") is None


def test_arch_style_ruleset_is_clean_and_evaluates(tmp_path: Path) -> None:
    text = (FIXTURES / "arch-default.nft").read_text()
    assert check_firewall(host(tmp_path, text)) == []
    rs = parse_ruleset(text)
    assert rs.unparsed == [(6, "destroy table inet filter")]
    assert evaluate(rs, Packet("tcp", "198.51.100.7", 22)).verdict == "accept"  # "ssh"
    assert evaluate(rs, Packet("tcp", "198.51.100.7", 80)).verdict == "drop"
    assert evaluate(rs, Packet("icmp", "198.51.100.7", icmp_type="echo-request")).line == 15
    assert evaluate(rs, Packet("icmpv6", "2001:db8::7", icmp_type="echo-request")).line == 16
    # "ip protocol tcp" implies IPv4: an IPv6 packet is not accepted by it.
    v4_only = text.replace("ip protocol icmp accept", "ip protocol tcp accept")
    rs4 = parse_ruleset(v4_only)
    assert evaluate(rs4, Packet("tcp", "198.51.100.7", 80)).line == 15
    assert evaluate(rs4, Packet("tcp", "2001:db8::7", 80)).verdict == "drop"
