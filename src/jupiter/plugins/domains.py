"""Remediation domains: what each one calls its findings, and how a finding
from any scanner is recognised as one of them.

A domain (``sshd``, ``kubernetes``, a third party's ``terraform``) declares its
categories and the scanner rules it answers as data in its package's
``__init__`` — cheap to import, no parser loaded — and registers it through
the ``jupiter.domains`` entry-point group. Ingest asks :func:`category_for`
instead of a closed list, so a new domain needs no edit anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.metadata import entry_points

from jupiter.models import Category, known_category

GROUP = "jupiter.domains"
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class Domain:
    """One remediation domain, as data.

    A finding belongs to the first domain (by ``order``) whose rules match:
    an exact rule id, a rule-id prefix (``CKV_K8S_``), a pattern on the rule
    id's last segment (``KSV001`` in ``trivy/KSV001``), a CWE, or words in
    the rule id or title. Rule ids and CWEs are compared upper-case.

    A domain that names ``frameworks`` (Checkov's ``check_type``:
    ``cloudformation``, ``terraform`` ...) matches only findings that come
    with one of them, because scanners share rule ids across frameworks
    (``CKV_AWS_19`` is a Terraform and a CloudFormation check).
    """

    name: str
    categories: tuple[str, ...]
    summary: str = ""
    order: int = 100
    rule_ids: frozenset[str] = frozenset()
    rule_prefixes: tuple[str, ...] = ()
    rule_tail: re.Pattern[str] | None = None
    cwes: frozenset[str] = frozenset()
    text: re.Pattern[str] | None = None
    category: str = field(default="")
    """The category given to a finding recognised by the rules above
    (default: the first of ``categories``)."""
    frameworks: frozenset[str] = frozenset()
    rule_categories: Mapping[str, str] = field(default_factory=dict)
    """Exact rule ids (upper-case) that get a category of their own, for a
    domain whose findings fall into several (Bandit's B113 is
    ``code.requests_timeout``, B506 ``code.yaml_load``); checked first."""
    paths: re.Pattern[str] | None = None
    """When set, only findings whose file path matches belong here: scanners
    share rule ids across formats (Checkov's ``CKV_AWS_*`` fire on Terraform
    and CloudFormation alike), so a domain may claim them for its files only."""
    catalog: str | None = None
    """The package whose ``catalog/*.yaml`` files hold this domain's fix
    catalog entries (see :mod:`jupiter.catalog`), if it has any."""

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError(f"domain {self.name!r} declares no category")
        for cat in self.categories:
            if not _CATEGORY.match(cat):
                raise ValueError(f"domain {self.name!r}: category {cat!r} is not dotted lower-case")
        if not self.category:
            object.__setattr__(self, "category", self.categories[0])
        unknown = set(self.rule_categories.values()) - set(self.categories)
        if unknown:
            raise ValueError(f"domain {self.name!r}: rule categories {sorted(unknown)} undeclared")

    def accepts(self, framework: str, path: str = "") -> bool:
        """Whether a finding may belong here at all: by the scanner's
        framework when the domain names frameworks and the finding has one
        (Checkov's ``check_type``), else by its file (``paths``); a domain
        with neither restriction takes anything."""
        if self.frameworks and framework:
            return framework.lower() in self.frameworks
        if self.paths is not None:
            return bool(self.paths.search(path))
        return not self.frameworks

    def matches(
        self,
        rid: str,
        tail: str,
        cwes: frozenset[str],
        rule_id: str,
        text: str | None,
        framework: str = "",
        path: str = "",
    ) -> bool:
        """Whether the finding is this domain's (``text`` None: judged
        without the finding's text)."""
        if not self.accepts(framework, path):
            return False
        return bool(
            rid in self.rule_ids
            or (self.rule_prefixes and rid.startswith(self.rule_prefixes))
            or (self.rule_tail is not None and self.rule_tail.match(tail))
            or (self.cwes & cwes)
            or (
                self.text is not None
                and (self.text.search(rule_id) or (text is not None and self.text.search(text)))
            )
        )


@dataclass(frozen=True)
class Domains:
    ordered: tuple[Domain, ...]
    errors: dict[str, str]

    def categories(self) -> list[str]:
        """Every category a finding can have: Jupiter's own and the domains'."""
        found = {c.value for c in Category}
        for domain in self.ordered:
            found.update(domain.categories)
        return sorted(found)


@cache
def load_domains() -> Domains:
    """The registered domains, in classification order; one that fails to
    load is reported by name in ``errors`` and the others keep working."""
    found: list[Domain] = []
    errors: dict[str, str] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
            if not isinstance(obj, Domain):
                raise TypeError(f"{ep.value} is not a jupiter Domain")
            found.append(obj)
        except Exception as exc:  # noqa: BLE001 - isolate one broken plugin
            errors[ep.name] = f"{type(exc).__name__}: {exc}"
    found.sort(key=lambda d: (d.order, d.name))
    return Domains(tuple(found), errors)


Plan = tuple[tuple[tuple[re.Pattern[str], str], ...], str, re.Pattern[str] | None]
_FLAGS = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s"}


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One pattern matching where any of ``patterns`` does (each with its own
    flags, scoped), to rule most texts out in one search; None when a
    pattern's flags cannot be scoped."""
    if len(patterns) < 2:
        return None
    parts = []
    for p in patterns:
        flags = p.flags & ~re.UNICODE
        if flags & ~(re.IGNORECASE | re.MULTILINE | re.DOTALL):
            return None
        letters = "".join(c for f, c in _FLAGS.items() if flags & f)
        parts.append(f"(?{letters}:{p.pattern})" if letters else f"(?:{p.pattern})")
    try:
        return re.compile("|".join(parts))
    except re.error:
        return None


@lru_cache(maxsize=8192)
def _plan(rule_id: str, cwes: frozenset[str], framework: str, path: str) -> Plan:
    """How to classify findings of one rule: the domains (in order) that only
    words in a finding's text could still claim, each with its category, and
    the category if none of them does. Everything but the text is decided
    here once per rule, not once per finding (a report's messages are all
    different, so a cache keyed by text misses every time)."""
    rid = rule_id.upper()
    tail = rid.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    by_text: list[tuple[re.Pattern[str], str]] = []
    for domain in load_domains().ordered:
        if rid in domain.rule_categories and domain.accepts(framework, path):
            return _done(by_text, known_category(domain.rule_categories[rid]))
        if not domain.accepts(framework, path):
            continue
        if domain.matches(rid, tail, cwes, rule_id, None, framework, path):
            return _done(by_text, known_category(domain.category))
        if domain.text is not None:
            by_text.append((domain.text, known_category(domain.category)))
    return _done(by_text, Category.OTHER)


def _done(by_text: list[tuple[re.Pattern[str], str]], otherwise: str) -> Plan:
    return tuple(by_text), otherwise, _any_of([p for p, _ in by_text])


def category_for(
    rule_id: str,
    cwes: Iterable[str] = (),
    text: str = "",
    framework: str = "",
    path: str | None = None,
) -> str:
    """The category of a finding from its rule id, CWEs, descriptive text,
    the scanner's framework (Checkov's ``check_type``) and file path, by the
    first registered domain whose rules match; ``other`` if none does."""
    # Only the suffix matters to the domains' path patterns; keeping the
    # cache key short keeps the cache useful for big reports.
    suffix = (path or "").rsplit("/", 1)[-1].rpartition(".")[2].lower()
    by_text, otherwise, any_of = _plan(
        rule_id, frozenset(c.upper() for c in cwes), framework, "." + suffix if suffix else ""
    )
    if any_of is not None and not any_of.search(text):
        return otherwise
    for pattern, category in by_text:
        if pattern.search(text):
            return category
    return otherwise
