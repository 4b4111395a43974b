"""AWS CloudFormation templates (YAML and JSON): encryption, logging, public
access and other resource settings, from the fix catalog.

This package is the domain's whole home: ``template`` (parse and locate),
``splice`` (byte-span edits), ``entries`` (the catalog entries as checks),
``detect``, ``fix`` and ``validate`` side by side. This module only declares
the domain as data, so importing it costs nothing.

Checkov's ``CKV_AWS_*`` ids are shared by its Terraform and CloudFormation
checks: this domain claims them only for findings whose framework is
``cloudformation`` (Checkov's ``check_type``), leaving the rest to Terraform.
"""

from __future__ import annotations

import re

from jupiter.plugins.domains import Domain

CATEGORY = "iac.cloudformation"

DOMAIN = Domain(
    name="cloudformation",
    summary="AWS CloudFormation templates (encryption, logging, public access)",
    categories=(CATEGORY,),
    order=15,
    rule_prefixes=("CKV_AWS_", "CKV2_AWS_"),
    frameworks=frozenset({"cloudformation"}),
    # a SARIF result names no framework: its file does (templates are YAML
    # or JSON; Terraform claims .tf)
    paths=re.compile(r"\.(ya?ml|json|template)$", re.IGNORECASE),
    catalog="jupiter.plugins.cloudformation",
)
