"""Which major version of a provider a Terraform module uses.

The lock file (``.terraform.lock.hcl``, written by ``terraform init``) names
the exact version and wins; otherwise the ``required_providers`` constraint
of the module's ``terraform`` blocks decides: a constraint that admits no
version from 4 up (``~> 3.74``, ``< 4.0``, ``= 3.76.1``) means 3, one that
admits 4 or later means the newest it admits. No constraint at all means
``terraform init`` takes the newest release (reported, since a later lock
file may say otherwise); a constraint Jupiter cannot read is an
:class:`Unknown` that fixers depending on it turn into ``needs_manual``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jupiter.errors import InputError
from jupiter.plugins.terraform.hcl import Expr, TfFile, parse

#: The provider's newest major release when no constraint limits it.
LATEST = {"aws": 6, "azurerm": 4, "google": 7}
_SOURCES = {"aws": "hashicorp/aws", "azurerm": "hashicorp/azurerm", "google": "hashicorp/google"}
_CLAUSE = re.compile(r"^\s*(~>|>=|<=|!=|>|<|=)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")


@dataclass(frozen=True)
class Version:
    major: int
    source: str
    """Where it came from, for the plan's explanation."""
    assumed: bool = False


@dataclass(frozen=True)
class Unknown:
    reason: str


def provider_major(
    provider: str, module_files: list[TfFile], lock_text: str | None, module_dir: str
) -> Version | Unknown:
    """The major version of ``provider`` (``aws``) that the module uses."""
    if lock_text is not None:
        found = _from_lock(provider, lock_text, module_dir)
        if found is not None:
            return found
    constraints: list[tuple[str, str]] = []
    for tf in module_files:
        for block in tf.blocks:
            if block.kind != "terraform":
                continue
            for req in block.blocks("required_providers"):
                attr = req.attributes().get(provider)
                if attr is None:
                    continue
                value = attr.value
                if isinstance(value, dict):
                    version = value.get("version")
                elif isinstance(value, str):
                    version = value  # the pre-0.13 shorthand `aws = "~> 3.0"`
                else:
                    version = None
                if version is None:
                    continue
                if not isinstance(version, str) or isinstance(version, Expr):
                    return Unknown(
                        f"{tf.path}: the {provider} provider version constraint is not a "
                        "literal string"
                    )
                constraints.append((tf.path, version))
    if not constraints:
        return Version(
            LATEST.get(provider, 1),
            f"no version constraint for the {provider} provider in {module_dir or '.'}: "
            "`terraform init` installs the newest release",
            assumed=True,
        )
    low, high = 0, 10**6
    for path, text in constraints:
        for clause in text.split(","):
            bounds = _bounds(clause)
            if bounds is None:
                return Unknown(
                    f"{path}: cannot read the {provider} provider constraint {text!r}; "
                    "pin it (e.g. `~> 5.0`) or run `terraform init` to write a lock file"
                )
            low, high = max(low, bounds[0]), min(high, bounds[1])
    if low > high:
        return Unknown(
            f"the {provider} provider constraints in {module_dir or '.'} admit no version"
        )
    major = min(high, max(low, LATEST.get(provider, low)))
    where = ", ".join(f"{p}: {t!r}" for p, t in constraints)
    return Version(major, f"required_providers ({where})")


def _bounds(clause: str) -> tuple[int, int] | None:
    """The range of major versions one constraint clause admits."""
    m = _CLAUSE.match(clause)
    if m is None:
        return None
    op, major_s, minor = m.group(1) or "=", m.group(2), m.group(3)
    major = int(major_s)
    if op == "=":
        return major, major
    if op == "!=":
        return 0, 10**6
    if op == "~>":
        return (major, major) if minor is not None else (major, 10**6)
    if op == ">=":
        return major, 10**6
    if op == ">":
        return (major if minor is not None else major + 1), 10**6
    if op == "<":
        both_zero = (minor in (None, "0")) and (m.group(4) in (None, "0"))
        return 0, major - 1 if both_zero else major
    if op == "<=":
        return 0, major
    return None


def _from_lock(provider: str, text: str, module_dir: str) -> Version | None:
    try:
        lock = parse(f"{module_dir}/.terraform.lock.hcl".lstrip("/"), text.encode())
    except InputError:
        return None
    wanted = _SOURCES.get(provider, f"hashicorp/{provider}")
    for block in lock.blocks:
        if block.kind == "provider" and block.labels and block.labels[0].endswith(wanted):
            version = block.attributes().get("version")
            if version is not None and isinstance(version.value, str):
                m = _CLAUSE.match(version.value)
                if m is not None:
                    return Version(
                        int(m.group(2)), f".terraform.lock.hcl pins {provider} {version.value}"
                    )
    return None
