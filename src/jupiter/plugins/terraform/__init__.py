"""Terraform for AWS, Azure and Google Cloud: the fix catalog applied to
``.tf`` files by byte-span edits of their syntax tree.

This package is the domain's whole home: ``hcl`` (the syntax tree),
``edit`` (byte spans), ``providers`` (provider versions), ``rules`` (catalog
entries evaluated and fixed on one resource), ``detect``, ``fix`` and
``gate`` (Checkov before/after) side by side; ``catalog/*.yaml`` holds the
entries, one file per cloud. This module only declares the domain as data,
so importing it costs nothing (see :mod:`jupiter.plugins.domains`).

Checkov uses the same ``CKV_AWS_*`` ids for Terraform and CloudFormation,
so the domain claims them only for findings in ``.tf`` files.
"""

from __future__ import annotations

import re

from jupiter.plugins.domains import Domain

CATEGORY = "iac.terraform"

DOMAIN = Domain(
    name="terraform",
    summary="Terraform for AWS, Azure and Google Cloud (the fix catalog, byte-exact edits)",
    categories=(CATEGORY,),
    order=30,
    rule_prefixes=("CKV_AWS_", "CKV2_AWS_", "CKV_AZURE_", "CKV2_AZURE_", "CKV_GCP_", "CKV2_GCP_"),
    paths=re.compile(r"\.tf$"),
    catalog="jupiter.plugins.terraform",
)
