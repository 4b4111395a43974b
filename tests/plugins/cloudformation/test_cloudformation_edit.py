"""Byte-preserving edits, intrinsic values and bad input, without external tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import FindingRecord, Location
from jupiter.plans import WriteFile
from jupiter.plugins.cloudformation.fix import CfnParams, CloudFormationHardening
from jupiter.plugins.cloudformation.splice import Editor, parse_path
from jupiter.plugins.cloudformation.template import Intrinsic, parse, value
from jupiter.targets.local import LocalTarget

PLUGIN = CloudFormationHardening()


def _fix_all(root: Path, params: CfnParams | None = None) -> list[str]:
    """Plan and apply every finding; the needs_manual reasons."""
    target = LocalTarget(str(root))
    p = params or CfnParams()
    manual = []
    for finding in PLUGIN.detect(target, p):
        plan = PLUGIN.plan(finding, target, p)
        if plan.needs_manual:
            manual.append(plan.needs_manual)
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            (root / change.path).write_text(change.content)
    return manual


def test_yaml_edit_keeps_tags_comments_and_odd_indentation(tmp_path: Path) -> None:
    text = (
        "# top comment\n"
        "Resources:\n"
        "   Key:   # three-space indent\n"
        "      Type: AWS::KMS::Key\n"
        "      Properties:\n"
        "         Description: !Sub '${AWS::StackName} key'  # keep\n"
        "         EnableKeyRotation: 'false'\n"
        "   Trail:\n"
        "      Type: AWS::CloudTrail::Trail\n"
        "      Properties: {S3BucketName: !Ref Logs, IsLogging: true}\n"
        "Outputs:\n"
        "   K: {Value: !GetAtt Key.Arn}\n"
    )
    (tmp_path / "t.yaml").write_text(text)
    manual = _fix_all(tmp_path)
    assert manual == [] or all("risk fix" in m for m in manual)
    after = (tmp_path / "t.yaml").read_text()
    assert "         EnableKeyRotation: true\n" in after  # a boolean, not the string
    assert "{S3BucketName: !Ref Logs, IsLogging: true, EnableLogFileValidation: true}" in after
    # only the two spans changed
    assert (
        after.replace("Rotation: true", "Rotation: 'false'").replace(
            ", EnableLogFileValidation: true", ""
        )
        == text
    )
    assert _fix_all(tmp_path) == manual  # a second run edits nothing
    assert (tmp_path / "t.yaml").read_text() == after


def test_json_member_indented_like_its_siblings(tmp_path: Path) -> None:
    doc = {
        "Resources": {
            "Repo": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "x"}}
        }
    }
    text = json.dumps(doc, indent="\t") + "\n"
    (tmp_path / "t.json").write_text(text)
    _fix_all(tmp_path)
    after = (tmp_path / "t.json").read_text()
    assert json.loads(after)["Resources"]["Repo"]["Properties"] == {
        "RepositoryName": "x",
        "ImageScanningConfiguration": {"ScanOnPush": True},
    }
    assert (
        '\t\t\t\t"ImageScanningConfiguration": {\n\t\t\t\t\t"ScanOnPush": true\n\t\t\t\t}' in after
    )
    assert after.startswith(text.split('"RepositoryName": "x"')[0])


def test_missing_properties_block_is_added(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n  Other:\n    Type: AWS::SNS::Topic\n"
    )
    _fix_all(tmp_path)
    after = (tmp_path / "t.yaml").read_text()
    assert after.startswith(
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n"
        "      EnableKeyRotation: true\n  Other:\n"
    )


def test_value_computed_by_an_intrinsic_is_left_to_a_person(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "Conditions:\n  Prod: !Equals [!Ref Env, prod]\nResources:\n  Key:\n"
        "    Type: AWS::KMS::Key\n    Properties:\n"
        "      EnableKeyRotation: !If [Prod, true, false]\n"
    )
    target = LocalTarget(str(tmp_path))
    assert PLUGIN.detect(target) == []  # the detector does not judge computed values
    finding = FindingRecord(
        scanner="checkov",
        rule_id="CKV_AWS_7",
        severity="medium",
        title="Ensure rotation for customer created CMKs is enabled",
        location=Location(path="t.yaml", start_line=4, end_line=7),
        extra={"check_type": "cloudformation", "resource": "AWS::KMS::Key.Key"},
    )
    assert PLUGIN.handles(finding)
    plan = PLUGIN.plan(finding, target, CfnParams())
    assert plan.changes == []
    assert plan.needs_manual and "computed by !If" in plan.needs_manual


def test_risk_fix_needs_approval(tmp_path: Path) -> None:
    body = "Resources:\n  Logs:\n    Type: AWS::Logs::LogGroup\n"
    (tmp_path / "t.yaml").write_text(body)
    manual = _fix_all(tmp_path)
    assert any("approve it with" in m and "deleted for good" in m for m in manual)
    assert (tmp_path / "t.yaml").read_text() == body
    assert _fix_all(tmp_path, CfnParams.model_validate({"approve": "CKV_AWS_66"})) == []
    assert "RetentionInDays: 365" in (tmp_path / "t.yaml").read_text()


def test_website_bucket_keeps_public_access(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "Resources:\n  Site:\n    Type: AWS::S3::Bucket\n    Properties:\n"
        "      WebsiteConfiguration: {IndexDocument: index.html}\n"
    )
    manual = _fix_all(tmp_path)
    blocks = [m for m in manual if "public access" in m]
    assert len(blocks) == 4 and all("static website" in m for m in blocks)
    assert "PublicAccessBlock" not in (tmp_path / "t.yaml").read_text()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("tag.yaml", "Resources:\n  K:\n    Type: AWS::KMS::Key\n    X: !Bogus 1\n", "t.yaml:4"),
        ("bad.yaml", "Resources:\n  K:\n    Type: AWS::KMS::Key\n   - oops: [\n", "bad.yaml:"),
        ("bad.json", '{"Resources": {"K": {"Type": "AWS::KMS::Key",}}}', "bad.json:1"),
        (
            "dup.yaml",
            "Resources:\n  K:\n    Type: AWS::KMS::Key\n  K:\n    Type: AWS::SNS::Topic\n",
            "dup.yaml:4",
        ),
    ],
)
def test_bad_templates_are_one_sentence_and_the_run_goes_on(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    (tmp_path / "good.yaml").write_text("Resources:\n  K:\n    Type: AWS::KMS::Key\n")
    found, errors = PLUGIN.survey(LocalTarget(str(tmp_path)))
    assert [f.location.path for f in found] == ["good.yaml"]
    assert len(errors) == 1
    error = errors[0]
    assert message.replace("t.yaml", name) in error and "\n" not in error
    with pytest.raises(InputError):
        parse(name, text)


def test_paths_and_values() -> None:
    segs = parse_path("A.B[0].C[Key=x.y].D[*].E")
    assert [(s.key, s.sel) for s in segs] == [
        ("A", None),
        ("B", "0"),
        ("C", "Key=x.y"),
        ("D", "*"),
        ("E", None),
    ]
    t = parse(
        "t.yaml",
        "Resources:\n  R:\n    Type: AWS::S3::Bucket\n    Properties:\n"
        "      Name: !Sub '${A}'\n      N: 3\n      B: yes\n",
    )
    props = t.resources[0].properties()
    assert value(props) == {"Name": Intrinsic("!Sub", "${A}"), "N": 3, "B": "yes"}
    editor = Editor(t)
    assert editor.result() == t.text
