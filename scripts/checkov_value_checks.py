"""List Checkov's Terraform value checks as catalog candidates (JSON on stdout).

Run it with Checkov's own interpreter (it imports Checkov; never install
Checkov or its ``bc-python-hcl2`` into Jupiter's venv):

    .tools/checkov/bin/python scripts/checkov_value_checks.py aws azure gcp > candidates.json

Each candidate names the check id, resource types, the attribute path Checkov
inspects, the values it accepts and what it says when the attribute is
missing. These are *candidates*: every catalog entry is reviewed by hand for
safety (some expected values break workloads or force replacement) before it
goes into ``src/jupiter/plugins/terraform/catalog/<provider>.yaml``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys


def main(providers: list[str]) -> None:
    from checkov.common.models.consts import ANY_VALUE
    from checkov.terraform.checks.resource.base_resource_negative_value_check import (
        BaseResourceNegativeValueCheck,
    )
    from checkov.terraform.checks.resource.base_resource_value_check import (
        BaseResourceValueCheck,
    )

    out = []
    for provider in providers:
        pkg = importlib.import_module(f"checkov.terraform.checks.resource.{provider}")
        for info in pkgutil.iter_modules(pkg.__path__):
            try:
                module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            except Exception:  # noqa: BLE001, S112 - a check that does not import is skipped
                continue
            check = getattr(module, "check", None)
            if check is None:
                continue
            row = {
                "id": check.id,
                "name": check.name,
                "provider": provider,
                "resources": list(check.supported_resources),
            }
            if isinstance(check, BaseResourceValueCheck):
                values = check.get_expected_values()
                row.update(
                    kind="value",
                    key=check.get_inspected_key(),
                    expected=["ANY" if v == ANY_VALUE else v for v in values],
                    missing=str(check.missing_block_result),
                )
            elif isinstance(check, BaseResourceNegativeValueCheck):
                row.update(
                    kind="forbidden",
                    key=check.get_inspected_key(),
                    forbidden=[str(v) for v in check.get_forbidden_values()],
                    missing=str(check.missing_attribute_result),
                )
            else:
                row["kind"] = "custom"
            out.append(row)
    json.dump(out, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1:] or ["aws", "azure", "gcp"])
