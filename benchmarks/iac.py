"""Terraform benchmark: detect + fix over a generated three-cloud project,
against Checkov's own scan time of the same tree.

Generates ``--copies`` copies (default 2) of one insecure sample resource per
fixable catalog entry (``jupiter.plugins.terraform.samples``; about 360
resources per copy over AWS, Azure and Google Cloud, in provider-5 and
provider-3 modules), then in one run times

* ``detect``: the built-in detector over the whole tree;
* ``fix``: plan + apply of every Checkov finding Jupiter handles, one at a
  time as the engine would (each plan reads the files the previous one
  changed, each write is fsync'ed), ``risk`` fixes approved;
* Checkov's scan of the same tree before and after (``--skip-download``).

Fix rate per class: of the checks Checkov failed before, the share that
passes after, grouped by the class of the catalog entry that answers the
check for that resource type (``uncatalogued``: no entry). Prints one JSON
object on stdout.

    .venv/bin/python benchmarks/iac.py --copies 2
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from jupiter.catalog import load_catalog
from jupiter.ingest import checkov as checkov_ingest
from jupiter.plans import WriteFile
from jupiter.plugins.terraform import gate
from jupiter.plugins.terraform.fix import TerraformIac, TerraformParams
from jupiter.plugins.terraform.samples import module_header, samples
from jupiter.targets.local import LocalTarget

DIRS = {"~> 5.0": "v5", "~> 3.76": "v3"}


def generate(root: Path, copies: int) -> int:
    for constraint, name in DIRS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "versions.tf").write_text(module_header(constraint))
    entries = [
        e for e in load_catalog().select(framework="terraform") if e.fix_class != "needs_manual"
    ]
    resources = 0
    for copy in range(copies):
        for entry in entries:
            for sample in samples(entry, f"_{copy}"):
                path = root / DIRS[sample.module] / f"{entry.provider}_{copy}_{entry.id}.tf"
                with path.open("a") as fh:
                    fh.write(sample.text + "\n")
                resources += 1
    return resources


def class_of(check: str, address: str) -> str:
    kind = address.split("[")[0].split(".")[0]
    classes = [e.fix_class for e in load_catalog().for_rule(check) if kind in e.resources]
    if not classes:
        return "uncatalogued"
    return min(classes, key=["safe", "risk", "needs_manual"].index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--checkov", type=Path, default=gate.find_checkov(Path.cwd()))
    args = parser.parse_args()
    if args.checkov is None or not args.checkov.is_file():
        sys.exit("Checkov not found: run scripts/tools.sh or pass --checkov PATH")

    tmp = Path(tempfile.mkdtemp(prefix="jupiter-iac-bench-"))
    try:
        root = tmp / "project"
        resources = generate(root, args.copies)
        files = len(list(root.rglob("*.tf")))

        before = gate.scan(root, args.checkov)
        report = tmp / "checkov.json"
        argv = [str(args.checkov), "--skip-download", "--framework", "terraform"]
        proc = subprocess.run(
            [*argv, "-d", str(root.resolve()), "-o", "json"],
            capture_output=True,
            timeout=900,
            check=False,
        )
        report.write_bytes(proc.stdout)
        findings = list(checkov_ingest.parse(report))

        plugin = TerraformIac()
        target = LocalTarget(str(root))
        params = TerraformParams(approve=["risk"])
        t0 = time.perf_counter()
        detected, problems = plugin.survey(target, params)
        detect_s = time.perf_counter() - t0

        outcomes: Counter[str] = Counter()
        t0 = time.perf_counter()
        for finding in findings:
            if not plugin.handles(finding):
                outcomes["unhandled"] += 1
                continue
            plan = plugin.plan(finding, target, params)
            if plan.needs_manual:
                outcomes["needs_manual"] += 1
            elif not plan.changes:
                outcomes["already_fixed"] += 1
            else:
                for change in plan.changes:
                    assert isinstance(change, WriteFile)
                    target.write_bytes(change.path, change.content.encode())
                outcomes["fixed"] += 1
        fix_s = time.perf_counter() - t0

        after = gate.scan(root, args.checkov)
        result = gate.compare(before, after)
        per_class: dict[str, dict[str, float]] = {}
        for key in result.fixed | result.still_failing:
            row = per_class.setdefault(class_of(key[0], key[2]), {"failed": 0, "fixed": 0})
            row["failed"] += 1
            row["fixed"] += key in result.fixed
        for row in per_class.values():
            row["rate"] = round(row["fixed"] / row["failed"], 3)
        print(
            json.dumps(
                {
                    "benchmark": "iac-terraform",
                    "python": platform.python_version(),
                    "resources": resources,
                    "files": files,
                    "clouds": sorted(
                        {e.provider or "" for e in load_catalog().select(framework="terraform")}
                    ),
                    "checkov_failed_before": len(result.fixed) + len(result.still_failing),
                    "fix_rate": round(result.fix_rate(), 3),
                    "fix_rate_by_class": per_class,
                    "regressed": sorted(result.regressed)[:10],
                    "new_failures": sorted(result.new)[:10],
                    "safe_not_fixed": sorted(
                        k for k in result.still_failing if class_of(k[0], k[2]) == "safe"
                    )[:10],
                    "plans": dict(outcomes),
                    "detect_findings": len(detected),
                    "detect_problems": len(problems),
                    "detect_s": round(detect_s, 3),
                    "fix_s": round(fix_s, 3),
                    "files_per_s": round(files / (detect_s + fix_s), 1),
                    "detect_files_per_s": round(files / detect_s, 1),
                    "checkov_scan_s": round(before.seconds, 3),
                    "checkov_rescan_s": round(after.seconds, 3),
                    "checkov_files_per_s": round(files / before.seconds, 1),
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
