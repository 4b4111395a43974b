"""Every CloudFormation catalog entry against real Checkov.

One generated template holds one resource per entry, written so that the
entry's check fails. One Checkov run before; every ``safe``/``risk`` entry is
planned and applied from the built-in detector's findings, and every
``needs_manual`` entry is planned from Checkov's own finding (through the
real Checkov ingest) and must name its decision; one Checkov run after. Each
fixable entry's checks fail before and pass after on its resource, and no
check that passed before fails after.

The ``soak`` variant puts each fixable entry in its own JSON template and
sends every plan through the full gate (cfn-lint and a Checkov rescan per
fix, as a production run does).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from jupiter.ingest import checkov as checkov_ingest
from jupiter.plans import WriteFile
from jupiter.plugins.cloudformation import entries as catalog
from jupiter.plugins.cloudformation.fix import CfnParams, CloudFormationHardening
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
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
    "cfn-security-group-open-ingress": {
        "GroupDescription": "web",
        "SecurityGroupIngress": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}
        ],
    },
    "cfn-rds-public": {"Engine": "postgres", "PubliclyAccessible": True},
    "cfn-redshift-public": {"PubliclyAccessible": True},
    "cfn-s3-public-acl": {"AccessControl": "PublicReadWrite"},
    "cfn-ebs-volume-encryption": {"Size": 8, "Encrypted": False},
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


def _resources(entries: list[Any]) -> dict[str, Any]:
    out = {}
    for entry in entries:
        body: dict[str, Any] = {"Type": entry.resources[0]}
        if entry.id in SEEDS:
            body["Properties"] = SEEDS[entry.id]
        out[_logical_id(entry.id)] = body
    return out


def _key(entry: Any) -> tuple[str, str]:
    return entry.resources[0], f"{entry.resources[0]}.{_logical_id(entry.id)}"


def test_every_cloudformation_entry_against_checkov(tmp_path: Path) -> None:
    fixable = [e for e in catalog.entries() if e.fix_class in ("safe", "risk")]
    manual = [e for e in catalog.entries() if e.fix_class == "needs_manual"]
    assert len({r for e in fixable for r in e.rule_ids()}) >= 40
    root = tmp_path / "catalog"
    root.mkdir()
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": _resources(fixable + manual),
    }
    with (root / "all.yaml").open("w") as fh:
        YAML().dump(template, fh)

    report = tmp_path / "before.json"
    before = checkov_cfn(root, report)
    not_failing = [
        entry.id
        for entry in fixable
        if not any(before.get((ck, _key(entry)[1])) == "FAILED" for ck in entry.rule_ids())
    ]
    assert not not_failing

    target = LocalTarget(str(root))
    plugin = CloudFormationHardening()
    params = CfnParams(approve=["all"])

    # needs_manual: Checkov's own findings, through the real ingest
    checkov_findings = list(checkov_ingest.parse(report))
    judged = 0
    for entry in manual:
        key = _key(entry)[1]
        mine = [
            f
            for f in checkov_findings
            if f.extra.get("resource") == key and f.rule_id in entry.rule_ids()
        ]
        for finding in mine:
            assert plugin.handles(finding), finding.rule_id
            plan = plugin.plan(finding, target, params)
            assert plan.changes == [], entry.id
            assert entry.decision and entry.decision in (plan.needs_manual or ""), entry.id
            judged += 1
    assert judged >= 40, judged

    found, errors = plugin.survey(target, params)
    assert not errors
    # other resources may trip an entry too (a distribution without a custom
    # certificate for the TLS entry); each entry is judged on its own resource
    own = [f for f in found if f.identity == _own(f.extra["entry"])]
    fixable_ids = {e.id for e in fixable}
    findings = [f for f in own if f.extra["entry"] in fixable_ids]
    # the detector reports explicit insecure values of needs_manual entries too
    for finding in (f for f in own if f.extra["entry"] not in fixable_ids):
        plan = plugin.plan(finding, target, params)
        assert plan.changes == [] and plan.needs_manual, finding.identity
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
        key = _key(entry)[1]
        for ck in entry.rule_ids():
            if before.get((ck, key)) == "FAILED":
                assert after.get((ck, key)) != "FAILED", (entry.id, ck)
    regressed = {k for k, v in after.items() if v == "FAILED" and before.get(k) == "PASSED"}
    assert not regressed, sorted(regressed)


@pytest.mark.soak
def test_each_fixable_entry_alone_through_the_full_gate(tmp_path: Path) -> None:
    """Each fixable entry in its own JSON template; every plan passes the
    gate a production run applies (re-parse, cfn-lint, Checkov rescan)."""
    plugin = CloudFormationHardening()
    params = CfnParams(approve=["all"])
    for entry in (e for e in catalog.entries() if e.fix_class in ("safe", "risk")):
        root = tmp_path / entry.id
        root.mkdir()
        doc = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": _resources([entry])}
        (root / "template.json").write_text(json.dumps(doc, indent=4) + "\n")
        target = LocalTarget(str(root))
        [finding] = [f for f in plugin.detect(target) if f.extra["entry"] == entry.id]
        plan = plugin.plan(finding, target, params)
        assert plan.changes, entry.id
        results = plugin.validate(plan, OverlayView(target, plan))
        assert {r.validator for r in results} == {"cfn-lint", "checkov-rescan"}, entry.id
        assert all(r.status == "passed" for r in results), (entry.id, results)
