"""What a parsed ruleset does: a small packet model evaluated against the
input chains, and the list of ports an input chain opens to the world.

Both are deliberately conservative about what they do not understand:

* :func:`evaluate` treats an ``unknown`` match as not matching and marks the
  result ``uncertain``; ``limit rate`` is assumed to be under its limit (so
  ``limit rate over`` never matches).
* :func:`world_open_ports` counts an accept rule as open to the world unless
  it is restricted by a source address (``ip saddr``/``ip6 saddr``, not
  ``0.0.0.0/0``), by the loopback interface, or to non-new connection states.
  Other interface matches and unknown expressions do *not* count as a
  restriction (nothing says the interface does not face the internet); the
  rule is reported with its unknown parts named.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from jupiter.plugins.nftables.parse import Chain, Ruleset, Table
from jupiter.plugins.nftables.rules import Match, Rule, network, port_range, resolve

PortRanges = list[tuple[int, int]]
_ALL_PORTS: PortRanges = [(1, 65535)]
_MAX_DEPTH = 16  # jump/goto nesting; nft itself limits chain depth


@dataclass(frozen=True)
class Packet:
    """An incoming packet as the model sees it."""

    proto: str  # "tcp", "udp", "icmp" or "icmpv6"
    saddr: str
    dport: int | None = None
    ct_state: str = "new"
    iif: str = "eth0"
    icmp_type: str | None = None


@dataclass(frozen=True)
class Decision:
    verdict: str  # "accept" or "drop"
    line: int | None  # the rule that decided, None for the chain policy
    uncertain: bool = False


def _cmp(op: str, hit: bool | None) -> bool | None:
    if hit is None:
        return None
    return not hit if op == "!=" else hit


def _port_hit(m: Match, port: int | None, sets: dict[str, list[str]]) -> bool | None:
    values = resolve(m.values, sets)
    if port is None or values is None:
        return None if values is None else False
    if m.op in ("<", ">", "<=", ">="):
        bound = port_range(values[0]) if values else None
        if bound is None:
            return None
        return {"<": port < bound[0], ">": port > bound[0], "<=": port <= bound[0]}.get(
            m.op, port >= bound[0]
        )
    ranges = [port_range(v) for v in values]
    if any(r is None for r in ranges):
        return None
    return _cmp(m.op, any(r[0] <= port <= r[1] for r in ranges if r is not None))


def _match(m: Match, pkt: Packet, sets: dict[str, list[str]]) -> bool | None:
    version = ipaddress.ip_address(pkt.saddr).version
    values = resolve(m.values, sets)
    if m.key == "limit":
        return m.op != "over"
    if m.key in ("dport_tcp", "dport_udp", "dport_th"):
        proto = {"dport_tcp": "tcp", "dport_udp": "udp"}.get(m.key)
        if pkt.proto not in ("tcp", "udp") or (proto and pkt.proto != proto):
            return False
        return _port_hit(m, pkt.dport, sets)
    if values is None:
        return None
    if m.key in ("saddr4", "saddr6"):
        if version != (4 if m.key == "saddr4" else 6):
            return False
        nets = [network(v) for v in values]
        if any(n is None for n in nets):
            return None
        addr = ipaddress.ip_address(pkt.saddr)
        return _cmp(m.op, any(addr in n for n in nets if n is not None))
    if m.key in ("daddr4", "daddr6"):
        return False if version != (4 if m.key == "daddr4" else 6) else None
    if m.key == "nfproto":
        return _cmp(m.op, f"ipv{version}" in values)
    if m.key.startswith("l4proto"):
        if m.key != "l4proto" and m.key != f"l4proto{version}":
            return False  # "ip protocol" only matches IPv4, "ip6 nexthdr" only IPv6
        names = {"ipv6-icmp": "icmpv6", "icmpv6": "icmpv6", "6": "tcp", "17": "udp", "1": "icmp"}
        return _cmp(m.op, pkt.proto in {names.get(v, v) for v in values})
    if m.key in ("icmp_type", "icmpv6_type"):
        if pkt.proto != ("icmp" if m.key == "icmp_type" else "icmpv6"):
            return False
        return _cmp(m.op, pkt.icmp_type in values)
    if m.key == "ct_state":
        return _cmp(m.op, pkt.ct_state in values)
    if m.key == "iif":
        return _cmp(m.op, pkt.iif in values)
    return None  # unknown, sport, oif on input


@dataclass
class _Walk:
    table: Table
    uncertain: bool = False
    depth: int = 0

    def rule_hits(self, rule: Rule, pkt: Packet) -> bool:
        for m in rule.matches:
            hit = _match(m, pkt, self.table.sets)
            if hit is None:
                self.uncertain = True
            if not hit:
                return False
        return True

    def chain(self, chain: Chain, pkt: Packet) -> tuple[str, int] | None:
        """(verdict, line) or None when the packet falls off the end / returns."""
        if self.depth > _MAX_DEPTH:
            self.uncertain = True
            return None
        for rule in chain.rules:
            if not self.rule_hits(rule, pkt):
                continue
            verdict, target = rule.verdict, rule.target
            if verdict == "vmap":
                entry = next(
                    (e for e in rule.vmap if _vmap_hit(rule.vmap_key, e.value, pkt, self)), None
                )
                if entry is None:
                    continue
                verdict, target = entry.verdict, entry.target
            if verdict in ("accept", "drop", "reject"):
                return ("accept" if verdict == "accept" else "drop"), rule.line
            if verdict == "return":
                return None
            if verdict in ("jump", "goto") and target in self.table.chains:
                self.depth += 1
                result = self.chain(self.table.chains[target], pkt)
                self.depth -= 1
                if result is not None or verdict == "goto":
                    return result
            elif verdict in ("jump", "goto", "queue"):
                self.uncertain = True
        return None


def _vmap_hit(key: str | None, value: str, pkt: Packet, walk: _Walk) -> bool:
    hit = _match(Match(key or "unknown", "==", (value,), value), pkt, walk.table.sets)
    if hit is None:
        walk.uncertain = True
    return bool(hit)


def evaluate(ruleset: Ruleset, pkt: Packet) -> Decision:
    """The fate of ``pkt``: every input base chain must accept it (a drop in
    any of them is final), as in the kernel."""
    last = Decision("accept", None)
    uncertain = False
    for table, chain in ruleset.input_chains():
        walk = _Walk(table)
        result = walk.chain(chain, pkt)
        uncertain |= walk.uncertain
        verdict, line = result if result else (chain.effective_policy(), None)
        if verdict == "drop":
            return Decision("drop", line, uncertain)
        last = Decision("accept", line, uncertain)
    return Decision(last.verdict, last.line, uncertain)


@dataclass
class OpenRule:
    """An accept rule (or vmap entry) letting new connections from anywhere in."""

    line: int
    text: str
    chain: str
    tcp: PortRanges = field(default_factory=list)
    udp: PortRanges = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _ports(matches: list[Match], sets: dict[str, list[str]], notes: list[str]) -> PortRanges:
    ranges: PortRanges = list(_ALL_PORTS)
    for m in matches:
        if not m.key.startswith("dport"):
            continue
        values = resolve(m.values, sets)
        parsed = [port_range(v) for v in values] if values is not None else [None]
        if m.op != "==" or any(p is None for p in parsed):
            notes.append(f"'{m.text}' is counted as every port")
            continue
        ranges = [p for p in parsed if p is not None]
    return ranges


def _restricted(matches: list[Match]) -> bool:
    for m in matches:
        if m.op != "==":
            continue
        if m.key in ("saddr4", "saddr6"):
            nets = [network(v) for v in m.values]
            if all(n is None or n.prefixlen > 0 for n in nets):
                return True
        if m.key == "iif" and m.values and all(v == "lo" for v in m.values):
            return True
        if m.key == "ct_state" and "new" not in m.values:
            return True
        if m.key in ("icmp_type", "icmpv6_type") or (m.key == "limit" and m.op == "over"):
            return True
    return False


def _protocols(matches: list[Match]) -> set[str]:
    protos = {"tcp", "udp"}
    for m in matches:
        if m.key == "dport_tcp":
            protos &= {"tcp"}
        elif m.key == "dport_udp":
            protos &= {"udp"}
        elif m.key.startswith("l4proto") and m.op == "==":
            protos &= {
                "tcp" if v in ("tcp", "6") else "udp" if v in ("udp", "17") else v for v in m.values
            }
    return protos


def world_open_ports(ruleset: Ruleset) -> list[OpenRule]:
    """Accept rules reachable from an input base chain (following jump/goto)
    that admit new TCP/UDP connections from any source."""
    found: list[OpenRule] = []

    def visit(table: Table, chain: Chain, inherited: list[Match], seen: set[str]) -> None:
        for rule in chain.rules:
            conds = inherited + list(rule.matches)
            if rule.verdict in ("jump", "goto") and rule.target in table.chains:
                if rule.target not in seen:
                    visit(table, table.chains[rule.target], conds, seen | {rule.target})
                continue
            accepts: list[list[Match]] = []
            if rule.verdict == "accept":
                accepts.append(conds)
            elif rule.verdict == "vmap" and rule.vmap_key:
                accepts.extend(
                    [*conds, Match(rule.vmap_key, "==", (e.value,), f"{rule.vmap_key} {e.value}")]
                    for e in rule.vmap
                    if e.verdict == "accept"
                )
            for cond in accepts:
                if _restricted(cond):
                    continue
                notes = [f"'{u}' is not interpreted" for u in rule.unknown]
                ports = _ports(cond, table.sets, notes)
                protos = _protocols(cond)
                open_rule = OpenRule(rule.line, rule.text, chain.name, notes=notes)
                if "tcp" in protos:
                    open_rule.tcp = ports
                if "udp" in protos:
                    open_rule.udp = ports
                if open_rule.tcp or open_rule.udp:
                    found.append(open_rule)

    for table, chain in ruleset.input_chains():
        visit(table, chain, [], {chain.name})
    return found


def subtract(ranges: PortRanges, allowed: set[int]) -> PortRanges:
    """``ranges`` without the ports in ``allowed``, merged and sorted."""
    out: PortRanges = []
    for lo, hi in sorted(ranges):
        start = lo
        for port in sorted(p for p in allowed if lo <= p <= hi):
            if start < port:
                out.append((start, port - 1))
            start = port + 1
        if start <= hi:
            out.append((start, hi))
    merged: PortRanges = []
    for lo, hi in out:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def format_ranges(ranges: PortRanges) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
