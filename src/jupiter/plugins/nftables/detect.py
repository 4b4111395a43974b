"""Built-in checks of the host firewall ruleset (``etc/nftables.conf``, Debian).

Rule ids (category ``config.firewall``):

* ``FW-NO-RULESET`` — no ruleset file, or one without any input filter chain
  Jupiter can read (nothing filters incoming traffic at boot);
* ``FW-INPUT-POLICY-ACCEPT`` — an input filter chain whose policy is accept
  (or has no policy: nft's default is accept) and that does not end with an
  unconditional drop/reject;
* ``FW-UNDECLARED-OPEN-PORT`` — an accept rule that admits new TCP/UDP
  connections from any source to ports the asset does not declare. One
  finding per rule, listing its undeclared ports.

The checks read the *file* that is loaded at boot, not the kernel's live
ruleset. In a repository (no ``etc/nftables.conf``) every ruleset
:mod:`jupiter.plugins.nftables.sources` takes is checked the same way, and
its findings carry ``extra.config_file`` (path and why it was taken).

What the asset declares comes from the caller; when it gives nothing, the
``# jupiter-declared:`` line that Jupiter writes into rulesets it generates
is used, and otherwise only TCP 22 (SSH) counts as declared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.configs import TakenFile
from jupiter.plugins.nftables.evaluate import (
    OpenRule,
    PortRanges,
    format_ranges,
    subtract,
    world_open_ports,
)
from jupiter.plugins.nftables.parse import Ruleset, parse_ruleset
from jupiter.targets.base import TargetView

SCANNER = "jupiter-firewall"
RULESET_PATH = "etc/nftables.conf"
DECLARED_MARK = "# jupiter-declared:"
_DECLARED_RE = re.compile(r"^# jupiter-declared:\s*tcp=([\d,]*)\s+udp=([\d,]*)\s*$", re.M)


@dataclass(frozen=True)
class DeclaredServices:
    """Ports the asset is meant to serve to any source."""

    tcp: frozenset[int] = frozenset({22})
    udp: frozenset[int] = frozenset()

    def header(self) -> str:
        """The ``# jupiter-declared:`` line recording these ports in a ruleset."""
        tcp = ",".join(str(p) for p in sorted(self.tcp))
        udp = ",".join(str(p) for p in sorted(self.udp))
        return f"{DECLARED_MARK} tcp={tcp} udp={udp}"


def declared_from_text(text: str) -> DeclaredServices | None:
    """The declaration recorded in a Jupiter-generated ruleset, if any."""
    found = _DECLARED_RE.search(text)
    if not found:
        return None

    def ports(raw: str) -> frozenset[int]:
        return frozenset(int(p) for p in raw.split(",") if p)

    return DeclaredServices(ports(found.group(1)), ports(found.group(2)))


def _finding(
    rule_id: str,
    title: str,
    severity: Severity,
    line: int | None,
    evidence: str,
    path: str = RULESET_PATH,
    **extra: object,
) -> FindingRecord:
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rule_id,
        category=Category.CONFIG_FIREWALL,
        title=title,
        severity=severity,
        location=Location(path=path, start_line=line, end_line=line),
        evidence=evidence,
        extra=dict(extra),
    )


def _source_line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def read_ruleset(view: TargetView, path: str = RULESET_PATH) -> tuple[str, Ruleset] | None:
    """The ruleset file's text and parse, or None when there is no file."""
    try:
        text = view.read_bytes(path).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return text, parse_ruleset(text, path)


def scan_firewall(
    view: TargetView, declared: DeclaredServices | None = None
) -> tuple[list[FindingRecord], list[str], list[TakenFile]]:
    """Findings of the host's ruleset, or of every ruleset of a repository,
    with what could not be read and the files taken (and why)."""
    from jupiter.plugins.nftables import sources

    found = sources.survey(view)
    if found.host:
        return check_firewall(view, declared), [], []
    findings: list[FindingRecord] = []
    for unit in found.units:
        note = {"config_file": {"path": unit.path, "evidence": unit.evidence}}
        findings.extend(
            f.model_copy(update={"extra": {**f.extra, **note}})
            for f in check_firewall(view, declared, unit.path)
        )
    return findings, found.problems, found.files


def check_firewall(
    view: TargetView, declared: DeclaredServices | None = None, path: str = RULESET_PATH
) -> list[FindingRecord]:
    """Findings for the ruleset at ``path`` on ``view``; see the module docstring."""
    try:
        loaded = read_ruleset(view, path)
    except InputError as exc:
        return [
            _finding(
                "FW-NO-RULESET",
                "The firewall ruleset cannot be parsed",
                Severity.HIGH,
                None,
                str(exc),
                path,
            )
        ]
    if loaded is None:
        if view.stat("etc") is None:
            # Not a host (an application repository, say): no firewall to have.
            return []
        return [
            _finding(
                "FW-NO-RULESET",
                "No nftables ruleset is loaded at boot",
                Severity.HIGH,
                None,
                f"{RULESET_PATH} does not exist",
            )
        ]
    text, ruleset = loaded
    if declared is None:
        declared = declared_from_text(text) or DeclaredServices()
    chains = ruleset.input_chains()
    if not chains:
        skipped = [f"line {n}: {s}" for n, s in ruleset.unparsed] + [
            f"line {n}: include {p} (not followed)" for n, p in ruleset.includes
        ]
        evidence = "no chain with 'type filter hook input'"
        if skipped:
            evidence += "; not interpreted: " + "; ".join(skipped[:5])
        return [
            _finding(
                "FW-NO-RULESET",
                "The nftables ruleset does not filter incoming traffic",
                Severity.HIGH,
                None,
                evidence,
                path,
            )
        ]
    findings: list[FindingRecord] = []
    for table, chain in chains:
        if chain.effective_policy() == "accept":
            policy = chain.policy or "accept (no policy given)"
            findings.append(
                _finding(
                    "FW-INPUT-POLICY-ACCEPT",
                    f"Input chain {table.family} {table.name} {chain.name} accepts by default",
                    Severity.HIGH,
                    chain.line,
                    f"chain {chain.name}: type {chain.type} hook {chain.hook}; policy {policy}",
                    path,
                    table=f"{table.family} {table.name}",
                    chain=chain.name,
                )
            )
    merged: dict[int, tuple[OpenRule, PortRanges, PortRanges]] = {}
    for opened in world_open_ports(ruleset):
        # One finding per rule line: vmap entries of one rule share the line,
        # and the store merges findings by (path, line, category).
        tcp = subtract(opened.tcp, set(declared.tcp))
        udp = subtract(opened.udp, set(declared.udp))
        if tcp or udp:
            first, t0, u0 = merged.get(opened.line, (opened, [], []))
            merged[opened.line] = (first, t0 + tcp, u0 + udp)
    for line, (opened, tcp, udp) in sorted(merged.items()):
        tcp, udp = subtract(tcp, set()), subtract(udp, set())
        parts = [f"{name} {format_ranges(r)}" for name, r in (("tcp", tcp), ("udp", udp)) if r]
        ports = "; ".join(parts)
        evidence = _source_line(text, line)
        if opened.notes:
            evidence += " (" + "; ".join(opened.notes) + ")"
        findings.append(
            _finding(
                "FW-UNDECLARED-OPEN-PORT",
                f"Firewall opens undeclared ports to any source: {ports}",
                Severity.MEDIUM,
                line,
                evidence,
                path,
                chain=opened.chain,
                tcp=[list(r) for r in tcp],
                udp=[list(r) for r in udp],
            )
        )
    return findings
