"""Checkov's CKV_AWS ids are shared by Terraform and CloudFormation: the
framework decides which domain a finding belongs to."""

from __future__ import annotations

import json
from pathlib import Path

from jupiter.ingest import checkov as checkov_ingest
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plugins.cloudformation.fix import CloudFormationHardening
from jupiter.plugins.cloudformation.template import looks_like_template
from jupiter.plugins.domains import category_for


def test_cloudformation_claims_only_its_framework() -> None:
    assert category_for("CKV_AWS_19", (), "", "cloudformation") == "iac.cloudformation"
    assert category_for("CKV_AWS_19", (), "", "terraform") != "iac.cloudformation"
    assert category_for("CKV_AWS_19") != "iac.cloudformation"
    assert category_for("CKV_K8S_20", (), "", "kubernetes") == "iac.kubernetes"


def test_checkov_report_is_classified_by_check_type(tmp_path: Path) -> None:
    failed = {
        "check_id": "CKV_AWS_21",
        "check_name": "Ensure the S3 bucket has versioning enabled",
        "file_path": "/infra/storage.yaml",
        "file_line_range": [3, 9],
        "resource": "AWS::S3::Bucket.Logs",
    }
    report = [
        {"check_type": "cloudformation", "results": {"failed_checks": [failed]}},
        {
            "check_type": "terraform",
            "results": {"failed_checks": [{**failed, "file_path": "/main.tf"}]},
        },
    ]
    path = tmp_path / "checkov.json"
    path.write_text(json.dumps(report))
    cfn, tf = list(checkov_ingest.parse(path))
    assert cfn.category == "iac.cloudformation" and tf.category != "iac.cloudformation"
    plugin = CloudFormationHardening()
    assert plugin.handles(cfn) and not plugin.handles(tf)


def test_remediator_handles_templates_from_scanners_without_a_framework() -> None:
    plugin = CloudFormationHardening()

    def finding(path: str) -> FindingRecord:
        return FindingRecord(
            scanner="sarif",
            rule_id="CKV_AWS_21",
            title="versioning",
            severity=Severity.LOW,
            location=Location(path=path),
        )

    assert plugin.handles(finding("infra/storage.yaml"))
    assert not plugin.handles(finding("main.tf"))
    assert not plugin.handles(finding("main.tf.json"))


def test_only_templates_are_read_as_templates() -> None:
    assert looks_like_template('Resources:\n  B:\n    Type: "AWS::S3::Bucket"\n')
    assert looks_like_template('{"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}')
    assert not looks_like_template('{"Statement": [{"Resource": "arn:aws:s3:::b", "x": "AWS::"}]}')
    assert not looks_like_template("apiVersion: v1\nkind: ConfigMap\n")
