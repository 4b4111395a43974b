"""The fix catalog: what Jupiter can fix, as data (ARCHITECTURE contract 12).

One entry per fix: the scanner rule ids it answers, the resource types and
the attribute path it sets, the secure value, any provider-version condition,
and its class:

* ``safe`` — applied by a fix run;
* ``risk`` — applied only through approval; ``risk`` names the risk (an
  irreversible setting, a TLS minimum that cuts off old clients, a cost);
* ``needs_manual`` — never applied; ``decision`` names the decision a person
  must make (network exposure, customer-managed keys, a forced replacement).

A domain ships its entries as YAML files in a ``catalog/`` folder of its
package and names that package in its :class:`~jupiter.plugins.domains.Domain`
(``catalog="jupiter.plugins.terraform"``). Fixers read their entries from
here; ``jupiter catalog`` prints them; README's table is generated from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jupiter.errors import InputError

Framework = Literal["terraform", "cloudformation", "kubernetes", "dockerfile", "python"]
FixClass = Literal["safe", "risk", "needs_manual"]
FRAMEWORKS: tuple[str, ...] = ("terraform", "cloudformation", "kubernetes", "dockerfile", "python")
CLASSES: tuple[str, ...] = ("safe", "risk", "needs_manual")


class FixEntry(BaseModel):
    """One fix the catalog knows."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    """Stable kebab-case id, unique across the catalog."""
    title: str = Field(min_length=1)
    framework: Framework
    provider: Literal["aws", "azure", "gcp"] | None = None
    checks: dict[str, list[str]] = Field(min_length=1)
    """Scanner → the rule ids this fix answers, e.g. ``{"checkov": ["CKV_AWS_19"],
    "trivy": ["AVD-AWS-0088"]}``."""
    resources: list[str] = Field(default_factory=list)
    """Resource types (``aws_s3_bucket``, ``AWS::S3::Bucket``, ``Deployment``)."""
    path: str | None = None
    """The attribute or block path the fix sets, dotted (``versioning.enabled``)."""
    value: Any = None
    """The secure value written at ``path``."""
    fix_class: FixClass = Field(alias="class")
    risk: str | None = None
    decision: str | None = None
    provider_versions: str | None = None
    """A version specifier on the provider (``>=4``) this entry applies to."""
    notes: str | None = None

    @model_validator(mode="after")
    def _explained(self) -> FixEntry:
        if self.fix_class == "risk" and not self.risk:
            raise ValueError("a 'risk' fix must name its risk")
        if self.fix_class == "needs_manual" and not self.decision:
            raise ValueError("a 'needs_manual' entry must name the decision a person must make")
        return self

    def rule_ids(self) -> list[str]:
        return [rid for ids in self.checks.values() for rid in ids]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class Catalog:
    entries: tuple[FixEntry, ...]
    _by_rule: dict[str, tuple[FixEntry, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[FixEntry]] = {}
        for entry in self.entries:
            for rid in entry.rule_ids():
                index.setdefault(rid.upper(), []).append(entry)
        object.__setattr__(self, "_by_rule", {k: tuple(v) for k, v in index.items()})

    def for_rule(self, rule_id: str) -> tuple[FixEntry, ...]:
        """The entries that answer ``rule_id`` (any scanner's id)."""
        return self._by_rule.get(rule_id.upper(), ())

    def select(self, framework: str | None = None, fix_class: str | None = None) -> list[FixEntry]:
        if framework is not None and framework not in FRAMEWORKS:
            raise InputError(
                f"unknown framework {framework!r}; use one of: {', '.join(FRAMEWORKS)}"
            )
        if fix_class is not None and fix_class not in CLASSES:
            raise InputError(f"unknown class {fix_class!r}; use one of: {', '.join(CLASSES)}")
        return [
            e
            for e in self.entries
            if (framework is None or e.framework == framework)
            and (fix_class is None or e.fix_class == fix_class)
        ]

    def coverage(self, scanner: str = "checkov") -> dict[str, Any]:
        """Distinct rule ids of ``scanner`` covered, by class and framework.
        A rule counted as ``safe`` or ``risk`` is not counted again as
        ``needs_manual`` (an attribute may be fixable while another entry on
        the same check asks a person)."""
        best: dict[str, str] = {}
        frameworks: dict[str, str] = {}
        rank = {"safe": 0, "risk": 1, "needs_manual": 2}
        for entry in self.entries:
            for rid in entry.checks.get(scanner, []):
                if rid not in best or rank[entry.fix_class] < rank[best[rid]]:
                    best[rid] = entry.fix_class
                frameworks.setdefault(rid, entry.framework)
        by_class = Counter(best.values())
        return {
            "scanner": scanner,
            "rule_ids": len(best),
            "fixable": by_class["safe"] + by_class["risk"],
            "by_class": {c: by_class[c] for c in CLASSES},
            "by_framework": dict(Counter(frameworks.values())),
        }


def parse_catalog_file(name: str, text: str) -> list[FixEntry]:
    """The entries of one catalog YAML file (a list of mappings); one
    :class:`InputError` naming the file, the entry and the field otherwise."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise InputError(f"catalog {name}{where} is not valid YAML ({exc}); fix the file") from None
    if not isinstance(data, list):
        raise InputError(f"catalog {name} must be a list of entries; fix the file")
    out = []
    for i, raw in enumerate(data, 1):
        try:
            out.append(FixEntry.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(entry)"
            ident = raw.get("id", f"#{i}") if isinstance(raw, dict) else f"#{i}"
            raise InputError(
                f"catalog {name}, entry {ident}, field {loc}: {err['msg']}; fix the file"
            ) from None
    return out


def build_catalog(files: list[tuple[str, str]]) -> Catalog:
    """A catalog from ``(name, yaml text)`` pairs; ids must be unique."""
    entries: list[FixEntry] = []
    seen: dict[str, str] = {}
    for name, text in files:
        for entry in parse_catalog_file(name, text):
            if entry.id in seen:
                raise InputError(
                    f"catalog entry {entry.id!r} is defined in {seen[entry.id]} and {name}; "
                    "ids must be unique"
                )
            seen[entry.id] = name
            entries.append(entry)
    return Catalog(tuple(entries))


@cache
def load_catalog() -> Catalog:
    """Every registered domain's catalog files, in domain order."""
    from jupiter.plugins.domains import load_domains

    files: list[tuple[str, str]] = []
    for domain in load_domains().ordered:
        if domain.catalog is None:
            continue
        folder = resources.files(domain.catalog) / "catalog"
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith((".yaml", ".yml")):
                files.append((f"{domain.name}/{item.name}", item.read_text(encoding="utf-8")))
    return build_catalog(files)


def markdown_table(entries: list[FixEntry]) -> str:
    """README's table of fixes."""
    lines = [
        "| framework | provider | fix | class | checks |",
        "|---|---|---|---|---|",
    ]
    for e in sorted(entries, key=lambda e: (e.framework, e.provider or "", e.id)):
        checks = ", ".join(f"`{r}`" for r in e.rule_ids())
        lines.append(
            f"| {e.framework} | {e.provider or ''} | {e.title} | {e.fix_class} | {checks} |"
        )
    return "\n".join(lines) + "\n"
