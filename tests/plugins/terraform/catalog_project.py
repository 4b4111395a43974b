"""A project with one insecure sample per fixable catalog entry, and a
driver that fixes it the way the engine does (one plan per finding, each
on the state the previous one left)."""

from __future__ import annotations

from pathlib import Path

from jupiter.catalog import FixEntry, load_catalog
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plans import WriteFile
from jupiter.plugins.terraform.fix import TerraformIac, TerraformParams
from jupiter.plugins.terraform.samples import Sample, module_header, samples
from jupiter.targets.local import LocalTarget

DIRS = {"~> 5.0": "v5", "~> 3.76": "v3"}


def fixable_entries() -> list[FixEntry]:
    return [
        e for e in load_catalog().select(framework="terraform") if e.fix_class != "needs_manual"
    ]


def build(root: Path, entries: list[FixEntry], copies: int = 1) -> list[tuple[Sample, str]]:
    """Write the samples under ``root``; returns each with its file path."""
    out = []
    for constraint, name in DIRS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "versions.tf").write_text(module_header(constraint))
    for copy in range(copies):
        tag = f"_{copy}" if copies > 1 else ""
        for entry in entries:
            for sample in samples(entry, tag):
                rel = f"{DIRS[sample.module]}/{entry.id}{tag}.tf"
                with (root / rel).open("a") as fh:
                    fh.write(sample.text + "\n")
                out.append((sample, rel))
    return out


def finding(rule_id: str, path: str, address: str) -> FindingRecord:
    return FindingRecord(
        scanner="checkov",
        rule_id=rule_id,
        category="iac.terraform",
        title=rule_id,
        severity=Severity.MEDIUM,
        location=Location(path=path),
        extra={"resource": address},
    )


def fix_all(root: Path, cases: list[tuple[Sample, str]], approve: list[str]) -> dict[str, int]:
    """Plan and apply one finding per sample; counts of plan outcomes."""
    plugin = TerraformIac()
    params = TerraformParams(approve=approve)
    target = LocalTarget(str(root))
    counts = {"changed": 0, "empty": 0, "manual": 0}
    for sample, rel in cases:
        plan = plugin.plan(finding(sample.entry.rule_ids()[0], rel, sample.address), target, params)
        if plan.needs_manual:
            counts["manual"] += 1
            continue
        if not plan.changes:
            counts["empty"] += 1
            continue
        counts["changed"] += 1
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            target.write_bytes(change.path, change.content.encode())
    return counts
