"""Insecure example resources for the fix catalog's Terraform entries.

One resource per ``safe``/``risk`` entry with the entry's attribute missing
(when the scanner fails a missing attribute) or set to an insecure value,
and, for boolean settings, a second one with the insecure value written
out, so a fixer is exercised on both "add" and "change". The catalog test
scans them with Checkov before and after fixing; the benchmark multiplies
them into a large project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupiter.catalog import FixEntry
from jupiter.plugins.terraform.edit import nested_text
from jupiter.plugins.terraform.hcl import render
from jupiter.plugins.terraform.rules import COMPANION

_MISSING = object()

#: Insecure values where the secure one has no obvious opposite.
INSECURE: dict[str, Any] = {
    "CKV_AWS_211": "rds-ca-2019",
    "CKV_AWS_234": "DISABLED",
    "CKV_AWS_20": "public-read-write",
    "CKV_AZURE_15": "1.0",
    "CKV_AZURE_145": "1.0",
    "CKV_AZURE_154": "1.0",
    "CKV_AZURE_223": "1.0",
    "CKV_AZURE_34": "blob",
    "CKV_AZURE_105": "Disabled",
    "CKV_AWS_341": 2,
    "CKV_AWS_331": "enable",
    "CKV_AWS_328": "monitor",
    "CKV_GCP_68": {"enable_secure_boot": False, "enable_integrity_monitoring": True},
    "CKV_GCP_72": False,
    # A node pool without node_config is out of scope of CKV_GCP_68; writing
    # one in would bring that check in (the run-level Checkov gate sees it).
    "CKV_GCP_69": "GCE_METADATA",
}

#: Arguments a resource needs before the scanner judges the setting at all.
CONTEXT: dict[str, dict[str, Any]] = {
    "CKV_AWS_152": {"load_balancer_type": "network"},
    "CKV_AWS_161": {"engine": "mysql"},
    "CKV_AZURE_138": {"sku": "Premium"},
}

#: Provider constraints a sample module pins, by entry provider_versions.
VERSIONS = {None: "~> 5.0", ">=4": "~> 5.0", "<4": "~> 3.76"}


@dataclass(frozen=True)
class Sample:
    entry: FixEntry
    address: str
    module: str
    """The provider constraint of the module directory it goes into."""
    text: str


def insecure(entry: FixEntry) -> Any:
    """The insecure value a sample sets, or ``_MISSING`` to leave it out."""
    rule = entry.rule_ids()[0]
    if rule in INSECURE:
        return INSECURE[rule]
    allowed = entry.accepted if entry.accepted is not None else [entry.value]
    if None not in allowed:
        return _MISSING
    for a in allowed:
        if isinstance(a, str) and a.startswith("!="):
            return int(a[2:]) if a[2:].isdigit() else a[2:]
    if isinstance(entry.value, bool):
        return not entry.value
    raise ValueError(f"no insecure value known for {entry.id}")


def _block(kind: str, name: str, lines: list[str]) -> str:
    return "\n".join([f'resource "{kind}" "{name}" {{', *lines, "}"]) + "\n"


def samples(entry: FixEntry, tag: str = "") -> list[Sample]:
    """The sample resources of one fixable entry."""
    if entry.fix_class == "needs_manual" or entry.path is None:
        return []
    kind = entry.resources[0]
    module = VERSIONS[entry.provider_versions]
    base = f"{entry.id.replace('-', '_')}{tag}"
    context = [f"  {k} = {render(v)}" for k, v in CONTEXT.get(entry.rule_ids()[0], {}).items()]
    if entry.path.startswith(COMPANION):
        return [Sample(entry, f"{kind}.{base}", module, _block(kind, base, context))]
    segs = entry.path.split(".")
    out = []
    bad = insecure(entry)
    if bad is _MISSING:
        out.append(Sample(entry, f"{kind}.{base}", module, _block(kind, base, context)))
        if isinstance(entry.value, bool):
            bad = not entry.value
    if bad is not _MISSING:
        name = f"{base}_set"
        lines = context + nested_text("  ", segs, bad)
        out.append(Sample(entry, f"{kind}.{name}", module, _block(kind, name, lines)))
    return out


def module_header(constraint: str) -> str:
    providers = "\n    ".join(
        f'{p} = {{ source = "hashicorp/{p}", version = "{v}" }}'
        for p, v in (("aws", constraint), ("azurerm", "~> 4.0"), ("google", "~> 6.0"))
    )
    return f"terraform {{\n  required_providers {{\n    {providers}\n  }}\n}}\n"
