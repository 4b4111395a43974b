"""CloudFormation benchmark: detect + fix over a generated tree, and Checkov.

Generates ``--templates`` templates (default 60, alternating YAML and JSON)
of ``--resources`` resources each (default 10), every resource seeded to
fail one fixable catalog entry (safe or risk, cycling through the catalog).
Then times, in one run:

* ``detect`` of ``cloudformation-hardening`` over the tree;
* ``fix``: plan + apply of every finding, one at a time as the engine does
  (each plan re-reads the file the previous apply changed), with every risk
  fix approved and the per-fix gate reduced to its re-parse checks;
* ``verify``: detect again (nothing may remain);
* Checkov's own scan of the same tree before and after (``--framework
  cloudformation --skip-download``), when a checkov executable is found
  (``--checkov PATH``, ``.tools/checkov/bin/checkov`` or PATH): the failed
  checks before and after give the fix rate by class.

Prints one JSON object on stdout.

    .venv/bin/python benchmarks/cloudformation.py --templates 60 --resources 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from jupiter.plans import WriteFile
from jupiter.plugins.cloudformation import entries as catalog
from jupiter.plugins.cloudformation.fix import CfnParams, CloudFormationHardening
from jupiter.targets.local import LocalTarget

#: Properties that put a resource where its entry's check looks.
SEEDS: dict[str, dict[str, Any]] = {
    "cfn-elbv2-listener-tls12": {"Protocol": "HTTPS", "Port": 443, "SslPolicy": "old"},
    "cfn-cloudfront-https-default": {
        "DistributionConfig": {"DefaultCacheBehavior": {"ViewerProtocolPolicy": "allow-all"}}
    },
    "cfn-cloudfront-https-behaviors": {
        "DistributionConfig": {"CacheBehaviors": [{"ViewerProtocolPolicy": "allow-all"}]}
    },
    "cfn-cloudfront-tls12": {
        "DistributionConfig": {
            "ViewerCertificate": {
                "AcmCertificateArn": "arn:aws:acm:x",
                "MinimumProtocolVersion": "TLSv1",
            }
        }
    },
    "cfn-codebuild-artifact-encryption": {"Artifacts": {"Type": "S3", "EncryptionDisabled": True}},
    "cfn-docdb-tls": {"Parameters": {"tls": "disabled"}},
    "cfn-docdb-audit-logs": {"Parameters": {"audit_logs": "disabled"}},
    "cfn-docdb-backup-retention": {"BackupRetentionPeriod": 1},
    "cfn-ecs-efs-transit-encryption": {
        "Volumes": [{"Name": "d", "EFSVolumeConfiguration": {"FilesystemId": "fs-1"}}]
    },
    "cfn-launch-configuration-ebs-encryption": {
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}]
    },
    "cfn-mq-audit-logs": {"EngineType": "ACTIVEMQ"},
    "cfn-dynamodb-global-table-pitr": {"Replicas": [{"Region": "us-east-1"}]},
    "cfn-redshift-require-ssl": {
        "Parameters": [{"ParameterName": "require_ssl", "ParameterValue": "false"}]
    },
    "cfn-qldb-deletion-protection": {"DeletionProtection": False},
    "cfn-rds-iam-auth": {"Engine": "postgres"},
    "cfn-s3-default-encryption": {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "NONE"}}
            ]
        }
    },
}


def generate(root: Path, templates: int, per: int) -> int:
    fixable = [e for e in catalog.entries() if e.fix_class in ("safe", "risk")]
    n = 0
    for t in range(templates):
        resources = {}
        for r in range(per):
            entry = fixable[n % len(fixable)]
            body: dict[str, Any] = {"Type": entry.resources[0]}
            if entry.id in SEEDS:
                body["Properties"] = SEEDS[entry.id]
            resources[f"R{t}x{r}"] = body
            n += 1
        doc = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
        if t % 2:
            (root / f"stack{t}.json").write_text(json.dumps(doc, indent=2) + "\n")
        else:
            with (root / f"stack{t}.yaml").open("w") as fh:
                YAML().dump(doc, fh)
    return n


def checkov_failed(binary: str, root: Path) -> tuple[float, set[tuple[str, str, str]]]:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            binary,
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "--framework",
            "cloudformation",
            "-d",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    took = time.perf_counter() - start
    doc = json.loads(proc.stdout or "{}")
    failed = set()
    for report in doc if isinstance(doc, list) else [doc]:
        for c in report.get("results", {}).get("failed_checks", []):
            failed.add((c["check_id"], c["file_path"], c["resource"]))
    return took, failed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", type=int, default=60)
    ap.add_argument("--resources", type=int, default=10)
    ap.add_argument("--checkov")
    args = ap.parse_args()
    os.environ["JUPITER_CFN_GATE"] = "parse"
    checkov = args.checkov or shutil.which("checkov")
    local = Path(".tools/checkov/bin/checkov")
    if checkov is None and local.exists():
        checkov = str(local)
    with tempfile.TemporaryDirectory(prefix="jupiter-cfn-bench-") as tmp:
        root = Path(tmp)
        resources = generate(root, args.templates, args.resources)
        before = checkov_failed(checkov, root) if checkov else None
        plugin, target, params = (
            CloudFormationHardening(),
            LocalTarget(str(root)),
            CfnParams(approve=["all"]),
        )
        t0 = time.perf_counter()
        findings = plugin.detect(target, params)
        t1 = time.perf_counter()
        applied = manual = 0
        for finding in findings:
            plan = plugin.plan(finding, target, params)
            manual += plan.needs_manual is not None
            for change in plan.changes:
                assert isinstance(change, WriteFile)
                (root / change.path).write_text(change.content)
                applied += 1
        t2 = time.perf_counter()
        left = plugin.detect(target, params)
        t3 = time.perf_counter()
        after = checkov_failed(checkov, root) if checkov else None
        out: dict[str, Any] = {
            "benchmark": "cloudformation",
            "python": platform.python_version(),
            "templates": args.templates,
            "resources": resources,
            "findings": len(findings),
            "applied": applied,
            "needs_manual": manual,
            "left_after": len(left),
            "detect_s": round(t1 - t0, 3),
            "fix_s": round(t2 - t1, 3),
            "verify_s": round(t3 - t2, 3),
            "templates_per_s": round(args.templates / max(t2 - t0, 1e-9), 1),
        }
        if before is not None and after is not None:
            fixed = before[1] - after[1]
            classes: dict[str, list[int]] = {}
            for check_id, _, _ in before[1]:
                entries = catalog.for_rule(check_id)
                cls = entries[0].fix_class if entries else "uncatalogued"
                classes.setdefault(cls, [0, 0])[0] += 1
            for check_id, _, _ in fixed:
                entries = catalog.for_rule(check_id)
                cls = entries[0].fix_class if entries else "uncatalogued"
                classes.setdefault(cls, [0, 0])[1] += 1
            out.update(
                {
                    "checkov_scan_s": round(before[0], 3),
                    "checkov_failed_before": len(before[1]),
                    "checkov_failed_after": len(after[1]),
                    "checkov_new_failures": len(after[1] - before[1]),
                    "fix_rate": round(len(fixed) / max(len(before[1]), 1), 3),
                    "fix_rate_by_class": {
                        c: round(f / max(n, 1), 3) for c, (n, f) in sorted(classes.items())
                    },
                }
            )
        print(json.dumps(out))


if __name__ == "__main__":
    main()
