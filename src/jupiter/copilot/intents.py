"""Deterministic intent parsing: a keyword grammar over the message, with
the metadata's keys as a fallback. No network, no model: the same query
always maps to the same intent and parameters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: What the copilot can do, in the order the help text lists them.
CAPABILITIES: dict[str, str] = {
    "create_rollback_point": "create a rollback point of an asset",
    "generate_script": "generate a remediation script for a vulnerability",
    "test_staging": "test a remediation in staging",
    "approve": "approve a remediation",
    "deploy": "deploy a remediation (rolling, canary or blue-green)",
    "validate": "validate that a vulnerability is fixed",
    "rollback": "roll back to a rollback point or undo a remediation",
    "send_siem": "send a remediation's events to the SIEM (Splunk, QRadar/syslog)",
    "update_ticket": "update the Jira ticket of a remediation",
    "generate_config": "generate a hardened ssh, firewall or database configuration",
    "statistics": "show remediation statistics",
    "list_findings": "list findings",
}

_SNAP = re.compile(r"\bSNAP-[A-Za-z0-9][A-Za-z0-9_.-]*", re.IGNORECASE)
_REM = re.compile(r"\b(?:REM|SCRIPT|DEPLOY-REM)-(\d+)\b", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:py|js|ts|rb|php|java|go|conf|ya?ml))\b")
_STRATEGY = re.compile(r"\b(rolling|canary|blue[- ]green)\b", re.IGNORECASE)
_SEVERITY = re.compile(r"\b(critical|high|medium|low)\b", re.IGNORECASE)
_STATUS = re.compile(r"\b(open|fixed|verified|excepted)\b", re.IGNORECASE)
# "... for the database server", "... on web-01": the asset phrase.
_ASSET = re.compile(
    r"\b(?:for|on|of)\s+(?:the\s+)?([\w .-]+?)(?:\s+(?:before|after|with|to|in|using)\b|[.?!]|$)",
    re.IGNORECASE,
)

VULN_TYPES: dict[str, str] = {
    "sql injection": "sql_injection",
    "sqli": "sql_injection",
    "sql_injection": "sql_injection",
}

CONFIG_TYPES: dict[str, str] = {
    "ssh": "ssh",
    "sshd": "ssh",
    "firewall": "firewall",
    "nftables": "firewall",
    "postgresql": "database",
    "postgres": "database",
    "database": "database",
}


@dataclass
class Parsed:
    intent: str
    params: dict[str, Any] = field(default_factory=dict)
    understood: list[str] = field(default_factory=list)


def _has(text: str, *patterns: str) -> bool:
    return any(re.search(p, text) for p in patterns)


_CREATE = r"\b(create|take|make|capture|record|save)\b"
_GENERATE = r"\b(generate|write|create|produce|build|draft)\b"

# (intent, test over the lower-cased message). The first that matches wins:
# the order resolves overlaps ("Create rollback point before remediation"
# is a rollback point, "Send remediation success to Splunk" a SIEM event).
RULES: list[tuple[str, Callable[[str], bool]]] = [
    ("send_siem", lambda t: _has(t, r"\b(siem|splunk|qradar|syslog)\b")),
    ("update_ticket", lambda t: _has(t, r"\b(jira|ticket)\b")),
    (
        "create_rollback_point",
        lambda t: (
            _has(t, r"\b(rollback|restore) point\b", r"\bsnapshot\b", r"\bbackup\b")
            and _has(t, _CREATE)
        ),
    ),
    ("rollback", lambda t: _has(t, r"\broll ?back\b", r"\brestore\b", r"\brevert\b", r"\bundo\b")),
    (
        "generate_config",
        lambda t: (
            _has(t, r"\bconfig(uration)?s?\b", r"\bfirewall rules?\b", r"\bhardened\b")
            and _has(t, _GENERATE)
        ),
    ),
    (
        "generate_script",
        lambda t: _has(t, _GENERATE) and _has(t, r"\b(script|fix|patch|remediation)\b"),
    ),
    ("test_staging", lambda t: _has(t, r"\btest(s|ing)?\b", r"\bstaging\b", r"\bdry[- ]?run\b")),
    ("approve", lambda t: _has(t, r"\bapprove\b")),
    ("deploy", lambda t: _has(t, r"\bdeploy(ment)?\b", r"\broll ?out\b", r"\bship\b")),
    ("validate", lambda t: _has(t, r"\bvalidat", r"\bverif", r"\bis (it|the .+) fixed\b")),
    ("statistics", lambda t: _has(t, r"\b(statistics|stats|metrics|success rate)\b")),
    ("list_findings", lambda t: _has(t, r"\b(findings?|vulnerabilit(y|ies))\b")),
]

# Metadata keys that name an intent when the message does not.
_BY_METADATA: list[tuple[str, str]] = [
    ("config_type", "generate_config"),
    ("snapshot_type", "create_rollback_point"),
    ("vulnerability_type", "generate_script"),
    ("deployment_strategy", "deploy"),
]


def parse(message: str, metadata: dict[str, Any] | None) -> Parsed:
    """The intent and parameters of one query (intent ``unknown`` when
    neither the message nor the metadata names one)."""
    meta = metadata or {}
    text = " ".join(message.lower().split())
    intent = next((name for name, test in RULES if test(text)), None)
    if intent is None:
        intent = next((i for key, i in _BY_METADATA if key in meta), "unknown")
    parsed = Parsed(intent)
    _extract(message, text, parsed)
    return parsed


def _extract(message: str, text: str, parsed: Parsed) -> None:
    p, understood = parsed.params, parsed.understood
    if m := _SNAP.search(message):
        p["snapshot_id"] = m.group(0).upper()
        understood.append(f"rollback point {p['snapshot_id']}")
    if m := _REM.search(message):
        p["remediation"] = f"REM-{m.group(1)}"
        understood.append(f"remediation {p['remediation']}")
    if m := _STRATEGY.search(message):
        p["strategy"] = m.group(1).lower().replace(" ", "-")
        understood.append(f"strategy {p['strategy']}")
    for words, vtype in VULN_TYPES.items():
        if words in text:
            p["vulnerability_type"] = vtype
            understood.append(f"vulnerability type {vtype}")
            break
    for word, ctype in CONFIG_TYPES.items():
        if re.search(rf"\b{word}\b", text):
            p["config_type"] = ctype
            break
    if m := _PATH.search(message):
        p["component"] = m.group(1)
        understood.append(f"component {p['component']}")
    if parsed.intent == "list_findings":
        if m := _SEVERITY.search(text):
            p["severity"] = m.group(1)
        if m := _STATUS.search(text):
            p["status"] = m.group(1)
    asset_intents = ("create_rollback_point", "generate_config", "list_findings")
    if parsed.intent in asset_intents and (m := _ASSET.search(message)):
        phrase = m.group(1).strip()
        if phrase and not _SNAP.fullmatch(phrase):
            p["asset_ref"] = phrase
            understood.append(f"asset {phrase!r}")
    if "production" in text:
        p["environment"] = "production"
    elif "staging" in text:
        p["environment"] = "staging"


def help_text() -> str:
    return "; ".join(CAPABILITIES.values())
