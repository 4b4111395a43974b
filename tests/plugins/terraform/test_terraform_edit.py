"""Byte-exact edits, unaddressable values, provider versions, bad input and
classification of findings by file type."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plugins.domains import category_for
from jupiter.plugins.terraform.fix import TerraformIac, TerraformParams
from jupiter.plugins.terraform.hcl import parse
from jupiter.plugins.terraform.providers import Unknown, Version, provider_major
from jupiter.targets.local import LocalTarget

HEADER = (
    'terraform {\n  required_providers {\n    aws = {\n      version = "~> 5.0"\n    }\n  }\n}\n'
)


def _finding(rule: str, path: str, address: str) -> FindingRecord:
    return FindingRecord(
        scanner="checkov",
        rule_id=rule,
        category="iac.terraform",
        title=rule,
        severity=Severity.MEDIUM,
        location=Location(path=path),
        extra={"resource": address},
    )


def _plan(tmp_path: Path, text: str, rule: str, address: str, approve: list[str] | None = None):
    (tmp_path / "main.tf").write_text(text)
    return TerraformIac().plan(
        _finding(rule, "main.tf", address),
        LocalTarget(str(tmp_path)),
        TerraformParams(approve=approve or []),
    )


def test_changing_a_value_keeps_every_other_byte(tmp_path: Path) -> None:
    text = (
        HEADER
        + '# keys\nresource "aws_kms_key" "k" {\n'
        + '  description         = "x"   # why\n'
        + "  enable_key_rotation = false # TODO\n"
        + '  policy = <<EOF\n{"Version": "2012-10-17"}\nEOF\n}\n'
        + 'resource "aws_kms_key" "other" {\n    enable_key_rotation=false\n}\n'
    )
    plan = _plan(tmp_path, text, "CKV_AWS_7", "aws_kms_key.k")
    after = plan.changes[0].content  # type: ignore[union-attr]
    assert after == text.replace("rotation = false # TODO", "rotation = true # TODO", 1)


def test_a_missing_attribute_joins_the_aligned_run(tmp_path: Path) -> None:
    text = (
        HEADER
        + 'resource "aws_ebs_volume" "v" {\n  availability_zone = "a"\n  size              = 1\n}\n'
    )
    plan = _plan(tmp_path, text, "CKV_AWS_3", "aws_ebs_volume.v", ["risk"])
    after = plan.changes[0].content  # type: ignore[union-attr]
    assert after == text.replace("= 1\n}", "= 1\n  encrypted         = true\n}")


def test_one_line_block_is_opened_up(tmp_path: Path) -> None:
    text = HEADER + 'resource "aws_ecr_repository" "r" { name = "r" }\n'
    plan = _plan(tmp_path, text, "CKV_AWS_163", "aws_ecr_repository.r")
    after = plan.changes[0].content  # type: ignore[union-attr]
    assert after.endswith(
        'resource "aws_ecr_repository" "r" {\n  name = "r"\n'
        "  image_scanning_configuration {\n    scan_on_push = true\n  }\n}\n"
    )
    parse("main.tf", after.encode())


def test_risk_needs_approval_naming_the_risk(tmp_path: Path) -> None:
    text = HEADER + 'resource "aws_ebs_volume" "v" {\n  size = 1\n}\n'
    plan = _plan(tmp_path, text, "CKV_AWS_3", "aws_ebs_volume.v")
    assert not plan.changes
    assert "approval needed" in (plan.needs_manual or "")
    assert "replacement" in (plan.needs_manual or "")


def test_expression_and_dynamic_block_are_needs_manual(tmp_path: Path) -> None:
    text = HEADER + 'resource "aws_kms_key" "k" {\n  enable_key_rotation = var.rotate\n}\n'
    plan = _plan(tmp_path, text, "CKV_AWS_7", "aws_kms_key.k")
    assert "var.rotate" in (plan.needs_manual or "")
    text = (
        HEADER + 'resource "aws_instance" "i" {\n  dynamic "metadata_options" {\n'
        '    for_each = [1]\n    content {\n      http_tokens = "optional"\n    }\n  }\n}\n'
    )
    plan = _plan(tmp_path, text, "CKV_AWS_79", "aws_instance.i", ["risk"])
    assert "dynamic" in (plan.needs_manual or "")


def test_counted_resource_is_fixed_in_its_block(tmp_path: Path) -> None:
    text = HEADER + 'resource "aws_kms_key" "k" {\n  count = 2\n  enable_key_rotation = false\n}\n'
    plan = _plan(tmp_path, text, "CKV_AWS_7", "aws_kms_key.k[1]")
    assert "enable_key_rotation = true" in plan.changes[0].content  # type: ignore[union-attr]


def test_counted_bucket_companion_is_needs_manual(tmp_path: Path) -> None:
    text = HEADER + 'resource "aws_s3_bucket" "b" {\n  count  = 2\n  bucket = "b"\n}\n'
    plan = _plan(tmp_path, text, "CKV2_AWS_6", "aws_s3_bucket.b[0]")
    assert "count" in (plan.needs_manual or "")


def test_module_resource_is_needs_manual(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(HEADER + 'module "s3" {\n  source = "x"\n}\n')
    plan = TerraformIac().plan(
        _finding("CKV_AWS_21", "main.tf", "module.s3.aws_s3_bucket.this"),
        LocalTarget(str(tmp_path)),
        TerraformParams(),
    )
    assert "module 's3'" in (plan.needs_manual or "")


def test_provider_3_gets_inline_versioning(tmp_path: Path) -> None:
    text = (
        HEADER.replace("~> 5.0", "~> 3.76") + 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
    )
    plan = _plan(tmp_path, text, "CKV_AWS_21", "aws_s3_bucket.b")
    after = plan.changes[0].content  # type: ignore[union-attr]
    assert "versioning {\n    enabled = true\n  }" in after
    assert "aws_s3_bucket_versioning" not in after


def test_lock_file_wins_over_the_constraint(tmp_path: Path) -> None:
    tf = parse("main.tf", HEADER.replace("~> 5.0", ">= 3.0").encode())
    lock = 'provider "registry.terraform.io/hashicorp/aws" {\n  version = "3.76.1"\n}\n'
    found = provider_major("aws", [tf], lock, "")
    assert isinstance(found, Version) and found.major == 3
    found = provider_major("aws", [tf], None, "")
    assert isinstance(found, Version) and found.major >= 4
    odd = parse("main.tf", HEADER.replace("~> 5.0", "banana").encode())
    assert isinstance(provider_major("aws", [odd], None, ""), Unknown)
    none = parse("main.tf", b'resource "aws_s3_bucket" "b" {}\n')
    assert provider_major("aws", [none], None, "").assumed  # type: ignore[union-attr]


def test_unknown_provider_version_is_one_sentence_and_needs_manual(tmp_path: Path) -> None:
    text = (
        HEADER.replace("~> 5.0", "banana") + 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
    )
    plan = _plan(tmp_path, text, "CKV_AWS_21", "aws_s3_bucket.b")
    assert "banana" in (plan.needs_manual or "")
    _found, problems = TerraformIac().survey(LocalTarget(str(tmp_path)))
    assert any("banana" in p for p in problems)


def test_a_broken_file_is_reported_with_its_line_and_the_rest_goes_on(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "main.tf").write_text(
        HEADER + 'resource "aws_kms_key" "k" {\n  enable_key_rotation = false\n}\n'
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "main.tf").write_text('resource "x" "y" {\n  a = 1\n\n  b = = 2\n}\n')
    found, problems = TerraformIac().survey(LocalTarget(str(tmp_path)))
    assert [f.rule_id for f in found] == ["CKV_AWS_7"]
    assert len(problems) == 1 and problems[0].startswith("bad/main.tf:4:")
    with pytest.raises(InputError, match=r"bad/main.tf:4"):
        parse("bad/main.tf", (tmp_path / "bad" / "main.tf").read_bytes())


def test_second_plan_is_empty_and_website_bucket_stays_public(tmp_path: Path) -> None:
    text = (
        HEADER + 'resource "aws_s3_bucket" "site" {\n  bucket = "www"\n  website {\n'
        '    index_document = "index.html"\n  }\n}\n'
    )
    plan = _plan(tmp_path, text, "CKV2_AWS_6", "aws_s3_bucket.site")
    assert "public website" in (plan.needs_manual or "")
    plan = _plan(tmp_path, text, "CKV_AWS_21", "aws_s3_bucket.site")
    (tmp_path / "main.tf").write_text(plan.changes[0].content)  # type: ignore[union-attr]
    again = TerraformIac().plan(
        _finding("CKV_AWS_21", "main.tf", "aws_s3_bucket.site"),
        LocalTarget(str(tmp_path)),
        TerraformParams(),
    )
    assert not again.changes and not again.needs_manual


def test_checkov_ids_are_terraform_only_in_tf_files() -> None:
    assert category_for("CKV_AWS_21", path="infra/main.tf") == "iac.terraform"
    assert category_for("CKV_AWS_21", path="stack/template.yaml") != "iac.terraform"
    assert category_for("CKV_AZURE_35", path="x.tf") == "iac.terraform"
    plugin = TerraformIac()
    assert plugin.handles(_finding("CKV_AWS_21", "a/main.tf", "aws_s3_bucket.b"))
    assert not plugin.handles(_finding("CKV_AWS_21", "a/template.json", "AWS::S3::Bucket.B"))


def test_ingest_classifies_shared_checkov_ids_by_file(tmp_path: Path) -> None:
    import json

    from jupiter.ingest import checkov as checkov_ingest
    from jupiter.ingest import sarif

    def check(path: str) -> dict[str, object]:
        return {"check_id": "CKV_AWS_21", "check_name": "versioning", "file_path": path,
                "file_line_range": [1, 3], "resource": "r"}  # fmt: skip

    report = tmp_path / "checkov.json"
    report.write_text(
        json.dumps(
            [
                {"check_type": "terraform", "results": {"failed_checks": [check("/main.tf")]}},
                {"check_type": "cloudformation", "results": {"failed_checks": [check("/t.yaml")]}},
            ]
        )
    )
    got = {r.location.path: r.category for r in checkov_ingest.parse(report)}
    assert got["main.tf"] == "iac.terraform"
    assert got["t.yaml"] != "iac.terraform"

    log = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "checkov", "rules": [{"id": "CKV_AWS_21"}]}},
                "results": [
                    {
                        "ruleId": "CKV_AWS_21",
                        "message": {"text": "versioning"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": p}}}],
                    }
                    for p in ("main.tf", "t.yaml")
                ],
            }
        ],
    }  # fmt: skip
    sarif_file = tmp_path / "r.sarif"
    sarif_file.write_text(json.dumps(log))
    got = {r.location.path: r.category for r in sarif.parse(sarif_file)}
    assert got["main.tf"] == "iac.terraform"
    assert got["t.yaml"] != "iac.terraform"


def test_rules_open_to_the_world_are_needs_manual_without_a_scanner(tmp_path: Path) -> None:
    (tmp_path / "net.tf").write_text(
        HEADER
        + 'resource "aws_security_group" "web" {\n'
        + '  ingress {\n    from_port = 3000\n    to_port = 3400\n    protocol = "tcp"\n'
        + '    cidr_blocks = ["0.0.0.0/0"]\n  }\n'
        + '  ingress {\n    from_port = 443\n    to_port = 443\n    protocol = "tcp"\n'
        + '    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n'
        + 'resource "aws_security_group_rule" "office" {\n  type = "ingress"\n  from_port = 22\n'
        + '  to_port = 22\n  protocol = "tcp"\n  cidr_blocks = ["10.0.0.0/8"]\n}\n'
        + 'resource "google_compute_firewall" "all" {\n  name = "all"\n  network = "n"\n'
        + '  allow {\n    protocol = "all"\n  }\n  source_ranges = ["0.0.0.0/0"]\n}\n'
        + 'resource "azurerm_network_security_rule" "rdp" {\n  direction = "Inbound"\n'
        + '  access = "Allow"\n  source_address_prefix = "Internet"\n'
        + '  destination_port_range = "3380-3390"\n}\n'
    )
    plugin = TerraformIac()
    target = LocalTarget(str(tmp_path))
    found = plugin.detect(target)
    wanted = ("CKV_AWS_25", "CKV2_GCP_12", "CKV_AZURE_9")
    open_rules = {(f.rule_id, f.identity) for f in found if f.rule_id in wanted}
    assert open_rules == {
        ("CKV_AWS_25", "aws_security_group.web"),
        ("CKV2_GCP_12", "google_compute_firewall.all"),
        ("CKV_AZURE_9", "azurerm_network_security_rule.rdp"),
    }
    assert not [f for f in found if f.identity == "aws_security_group_rule.office"]
    before = (tmp_path / "net.tf").read_bytes()
    for f in found:
        if (f.rule_id, f.identity) in open_rules:
            plan = plugin.plan(f, target, TerraformParams(approve=["risk"]))
            assert not plan.changes and "network exposure" in (plan.needs_manual or "")
    assert (tmp_path / "net.tf").read_bytes() == before


def test_crlf_file_stays_crlf(tmp_path: Path) -> None:
    text = (HEADER + 'resource "aws_ecr_repository" "r" {\n  name = "r"\n}\n').replace("\n", "\r\n")
    (tmp_path / "main.tf").write_bytes(text.encode())
    plan = TerraformIac().plan(
        _finding("CKV_AWS_163", "main.tf", "aws_ecr_repository.r"),
        LocalTarget(str(tmp_path)),
        TerraformParams(),
    )
    after = plan.changes[0].content  # type: ignore[union-attr]
    assert "\n" not in after.replace("\r\n", "")
    assert after.startswith(text[: text.index('  name = "r"')])
    assert "scan_on_push = true\r\n" in after
