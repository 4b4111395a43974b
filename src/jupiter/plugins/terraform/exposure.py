"""Network rules open to the whole internet, found without a scanner.

Security groups, network security rules and firewalls that admit any source
address to SSH, RDP, HTTP or every port are reported under the Checkov id
that means the same, so ``jupiter fix`` lists them as ``needs_manual`` with
the catalog's decision even when no Checkov report was ingested. Nothing
here ever edits a rule: who may reach a port is a person's decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jupiter.plugins.terraform.hcl import Block, Expr, Resource

WORLD = frozenset({"0.0.0.0/0", "::/0", "*", "internet", "any"})

#: port -> Checkov id, per cloud
PORTS: dict[str, dict[int, str]] = {
    "aws": {22: "CKV_AWS_24", 3389: "CKV_AWS_25", 80: "CKV_AWS_260"},
    "azure": {22: "CKV_AZURE_10", 3389: "CKV_AZURE_9", 80: "CKV_AZURE_160"},
    "gcp": {22: "CKV_GCP_2", 3389: "CKV_GCP_3"},
}
ALL_PORTS = {"aws": "CKV_AWS_277", "gcp": "CKV2_GCP_12"}


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def _open_to_world(values: Any) -> bool:
    return any(v.strip().lower() in WORLD for v in _strings(values))


def _covers(low: int, high: int) -> Iterator[int]:
    for port in (22, 3389, 80):
        if low <= port <= high:
            yield port


def _int(value: Any) -> int | None:
    if isinstance(value, bool | Expr):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _aws_rule(attrs: dict[str, Any]) -> list[str]:
    sources = _strings(attrs.get("cidr_blocks")) + _strings(attrs.get("ipv6_cidr_blocks"))
    if not _open_to_world(sources):
        return []
    protocol = str(attrs.get("protocol", "")).lower()
    low, high = _int(attrs.get("from_port")), _int(attrs.get("to_port"))
    if protocol in ("-1", "all") or (low == 0 and high == 65535):
        return [ALL_PORTS["aws"]]
    if low is None or high is None:
        return []
    return [PORTS["aws"][p] for p in _covers(low, high)]


def _values(block: Block) -> dict[str, Any]:
    return {name: attr.value for name, attr in block.attributes().items()}


def _azure_ports(values: dict[str, Any]) -> list[str]:
    ranges = _strings(values.get("destination_port_range")) + _strings(
        values.get("destination_port_ranges")
    )
    found: list[str] = []
    for text in ranges:
        text = text.strip()
        if text == "*":
            low, high = 0, 65535
        elif "-" in text:
            a, _, b = text.partition("-")
            low, high = _int(a) or 0, _int(b) or -1
        elif (n := _int(text)) is not None:
            low = high = n
        else:
            continue
        found += [PORTS["azure"][p] for p in _covers(low, high)]
    return found


def _azure_rule(values: dict[str, Any]) -> list[str]:
    if str(values.get("direction", "")).lower() != "inbound":
        return []
    if str(values.get("access", "")).lower() != "allow":
        return []
    sources = _strings(values.get("source_address_prefix")) + _strings(
        values.get("source_address_prefixes")
    )
    if not _open_to_world(sources):
        return []
    return _azure_ports(values)


def _gcp_firewall(res: Resource) -> list[str]:
    values = _values(res.block)
    if str(values.get("direction", "INGRESS")).upper() != "INGRESS":
        return []
    if not _open_to_world(values.get("source_ranges")):
        return []
    found: list[str] = []
    for allow in res.block.blocks("allow"):
        rule = _values(allow)
        ports = _strings(rule.get("ports"))
        if str(rule.get("protocol", "")).lower() == "all" or not ports:
            found.append(ALL_PORTS["gcp"])
            continue
        for text in ports:
            a, _, b = text.partition("-")
            low, high = _int(a), _int(b or a)
            if low is not None and high is not None:
                found += [PORTS["gcp"][p] for p in _covers(low, high) if p in PORTS["gcp"]]
    return found


def exposures(res: Resource) -> list[str]:
    """Checkov ids of the open-to-the-world rules in ``res`` (deduplicated)."""
    found: list[str] = []
    if res.type == "aws_security_group":
        for ingress in res.block.blocks("ingress"):
            found += _aws_rule(_values(ingress))
    elif res.type == "aws_security_group_rule":
        values = _values(res.block)
        if str(values.get("type", "")).lower() == "ingress":
            found += _aws_rule(values)
    elif res.type == "azurerm_network_security_rule":
        found += _azure_rule(_values(res.block))
    elif res.type == "azurerm_network_security_group":
        for rule in res.block.blocks("security_rule"):
            found += _azure_rule(_values(rule))
    elif res.type == "google_compute_firewall":
        found += _gcp_firewall(res)
    return list(dict.fromkeys(found))
