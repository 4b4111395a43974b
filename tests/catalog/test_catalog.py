"""The fix catalog as data: validation of entries, lookup, coverage, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jupiter.catalog import build_catalog, load_catalog, markdown_table
from jupiter.errors import InputError
from tests.conftest import run_cli

GOOD = """
- id: aws-s3-versioning
  title: S3 bucket versioning on
  framework: terraform
  provider: aws
  checks: {checkov: [CKV_AWS_21], trivy: [AVD-AWS-0090]}
  resources: [aws_s3_bucket]
  path: versioning.enabled
  value: true
  class: safe
- id: azure-kv-purge-protection
  title: Key Vault purge protection
  framework: terraform
  provider: azure
  checks: {checkov: [CKV_AZURE_42]}
  resources: [azurerm_key_vault]
  path: purge_protection_enabled
  value: true
  class: risk
  risk: irreversible; the vault cannot be deleted before its retention ends
- id: aws-sg-open-ssh
  title: Security group open to the world on 22
  framework: terraform
  provider: aws
  checks: {checkov: [CKV_AWS_24, CKV_AWS_21]}
  resources: [aws_security_group]
  class: needs_manual
  decision: which networks must reach SSH
"""


def test_entries_lookup_and_coverage() -> None:
    cat = build_catalog([("t.yaml", GOOD)])
    assert [e.id for e in cat.for_rule("ckv_aws_21")] == ["aws-s3-versioning", "aws-sg-open-ssh"]
    assert cat.for_rule("AVD-AWS-0090")[0].path == "versioning.enabled"
    cov = cat.coverage("checkov")
    # CKV_AWS_21 counts once, as safe, though a needs_manual entry names it too
    assert cov["rule_ids"] == 3 and cov["fixable"] == 2
    assert cov["by_class"] == {"safe": 1, "risk": 1, "needs_manual": 1}
    assert [e.id for e in cat.select("terraform", "risk")] == ["azure-kv-purge-protection"]
    assert "| terraform | aws | S3 bucket versioning on | safe |" in markdown_table(cat.select())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- id: x\n  title: t\n  framework: terraform\n  checks: {checkov: [A]}\n"
            "  class: risk\n",
            "entry x, field (entry): Value error, a 'risk' fix must name its risk",
        ),
        (
            "- id: x\n  title: t\n  framework: terraform\n  checks: {checkov: [A]}\n"
            "  class: needs_manual\n",
            "must name the decision",
        ),
        (
            "- id: x\n  title: t\n  framework: helm\n  checks: {checkov: [A]}\n  class: safe\n",
            "entry x, field framework",
        ),
        (
            "- id: x\n  title: t\n  framework: terraform\n  checks: {checkov: [A]}\n  class: safe\n"
            "  colour: red\n",
            "field colour: Extra inputs are not permitted",
        ),
        ("- id: x\n  title: [\n", "catalog bad.yaml:3 is not valid YAML"),
        ("id: x\n", "must be a list of entries"),
    ],
)
def test_bad_entries_are_one_sentence(text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        build_catalog([("bad.yaml", text)])


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(InputError, match=r"defined in a\.yaml and b\.yaml"):
        build_catalog([("a.yaml", GOOD), ("b.yaml", GOOD)])


def test_builtin_catalog_loads_and_cli_lists_it(tmp_path: Path) -> None:
    cat = load_catalog()
    r = run_cli("catalog", "--json", home=tmp_path / "ws")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["entries"]) == len(cat.entries)
    assert data["coverage"] == cat.coverage("checkov")
    r = run_cli("catalog", "--class", "cheap", home=tmp_path / "ws")
    assert r.returncode == 2 and "unknown class 'cheap'" in r.stderr
