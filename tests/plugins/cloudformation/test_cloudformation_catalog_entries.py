"""Every ``safe`` and ``risk`` CloudFormation catalog entry against real
Checkov: one generated template holds one resource per entry, written so that
the entry's check fails; one Checkov run before, every entry planned and
applied, one Checkov run after. Each entry's checks must fail before and pass
after on its resource, and no check that passed before may fail after.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from jupiter.plans import WriteFile
from jupiter.plugins.cloudformation import entries as catalog
from jupiter.plugins.cloudformation.fix import CfnParams, CloudFormationHardening
from jupiter.targets.local import LocalTarget
from tests.plugins.cloudformation.checkov_run import checkov_cfn

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0000"
#: Properties that put a resource where the entry's check looks (and fails).
SEEDS: dict[str, dict[str, Any]] = {
    "cfn-elbv2-listener-tls12": {
        "Protocol": "HTTPS",
        "Port": 443,
        "SslPolicy": "ELBSecurityPolicy-2016-08",
    },
    "cfn-cloudfront-https-default": {
        "DistributionConfig": {
            "Enabled": True,
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"},
        }
    },
    "cfn-cloudfront-https-behaviors": {
        "DistributionConfig": {
            "Enabled": True,
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "https-only"},
            "CacheBehaviors": [
                {"PathPattern": "/a/*", "TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"}
            ],
        }
    },
    "cfn-cloudfront-tls12": {
        "DistributionConfig": {
            "Enabled": True,
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "https-only"},
            "ViewerCertificate": {"AcmCertificateArn": CERT, "MinimumProtocolVersion": "TLSv1"},
        }
    },
    "cfn-codebuild-artifact-encryption": {
        "Artifacts": {"Type": "S3", "Location": "bucket", "EncryptionDisabled": True}
    },
    "cfn-docdb-tls": {"Family": "docdb4.0", "Description": "d", "Parameters": {"tls": "disabled"}},
    "cfn-docdb-audit-logs": {
        "Family": "docdb4.0",
        "Description": "d",
        "Parameters": {"audit_logs": "disabled"},
    },
    "cfn-docdb-backup-retention": {"BackupRetentionPeriod": 1},
    "cfn-ecs-efs-transit-encryption": {
        "Volumes": [{"Name": "data", "EFSVolumeConfiguration": {"FilesystemId": "fs-1"}}]
    },
    "cfn-launch-configuration-ebs-encryption": {
        "ImageId": "ami-1",
        "InstanceType": "t3.micro",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    },
    "cfn-mq-audit-logs": {"EngineType": "ACTIVEMQ"},
    "cfn-dynamodb-global-table-pitr": {"Replicas": [{"Region": "us-east-1"}]},
    "cfn-redshift-require-ssl": {
        "Description": "r",
        "ParameterGroupFamily": "redshift-1.0",
        "Parameters": [{"ParameterName": "require_ssl", "ParameterValue": "false"}],
    },
    "cfn-kms-key-rotation": {"EnableKeyRotation": False},
    "cfn-qldb-deletion-protection": {"PermissionsMode": "STANDARD", "DeletionProtection": False},
    "cfn-rds-iam-auth": {"Engine": "postgres", "DBInstanceClass": "db.t3.micro"},
    "cfn-s3-default-encryption": {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "NONE"}}
            ]
        }
    },
}


def _logical_id(entry_id: str) -> str:
    return "".join(w.capitalize() for w in re.split(r"[^a-z0-9]+", entry_id))


def _own(entry_id: str) -> str:
    return f"{_logical_id(entry_id)}/{entry_id}"


def test_every_fixable_cloudformation_entry_against_checkov(tmp_path: Path) -> None:
    fixable = [e for e in catalog.entries() if e.fix_class in ("safe", "risk")]
    assert len({r for e in fixable for r in e.rule_ids()}) >= 40
    resources = {}
    for entry in fixable:
        body: dict[str, Any] = {"Type": entry.resources[0]}
        if entry.id in SEEDS:
            body["Properties"] = SEEDS[entry.id]
        resources[_logical_id(entry.id)] = body
    root = tmp_path / "catalog"
    root.mkdir()
    with (root / "all.yaml").open("w") as fh:
        YAML().dump({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, fh)

    before = checkov_cfn(root)
    not_failing = [
        entry.id
        for entry in fixable
        if not any(
            before.get((ck, f"{entry.resources[0]}.{_logical_id(entry.id)}")) == "FAILED"
            for ck in entry.rule_ids()
        )
    ]
    assert not not_failing

    target = LocalTarget(str(root))
    plugin = CloudFormationHardening()
    params = CfnParams(approve=["all"])
    found, errors = plugin.survey(target, params)
    assert not errors
    # other resources may trip an entry too (a distribution without a custom
    # certificate for the TLS entry); each entry is judged on its own resource
    findings = [
        f for f in found if f.identity == f"{_logical_id(f.extra['entry'])}/{f.extra['entry']}"
    ]
    seen = {f.extra["entry"] for f in findings}
    assert seen == {e.id for e in fixable}, sorted(seen ^ {e.id for e in fixable})
    for finding in findings:
        plan = plugin.plan(finding, target, params)
        assert plan.needs_manual is None, (finding.identity, plan.needs_manual)
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            (root / change.path).write_text(change.content)
        assert plugin.is_fixed(finding, target, params), finding.identity
    again, _ = plugin.survey(target, params)
    assert not {f.identity for f in again} & {f.identity for f in findings}

    after = checkov_cfn(root)
    for entry in fixable:
        key = f"{entry.resources[0]}.{_logical_id(entry.id)}"
        for ck in entry.rule_ids():
            if before.get((ck, key)) == "FAILED":
                assert after.get((ck, key)) != "FAILED", (entry.id, ck)
    regressed = {k for k, v in after.items() if v == "FAILED" and before.get(k) == "PASSED"}
    assert not regressed, sorted(regressed)
