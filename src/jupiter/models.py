"""Domain types shared by ingestion, detection, the store and the CLI.

Pure data, no I/O. Parsers and detectors produce :class:`FindingRecord`; the
store turns records into persisted findings (with ids, status and timestamps).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jupiter.health.model import Probe, unique_probe_keys
from jupiter.workflows.windows import check_window


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Category(StrEnum):
    """Jupiter's own finding categories. A remediation domain may declare
    more (``iac.terraform``): a finding's category is any dotted lower-case
    name, and these members are the ones the core itself knows about."""

    DEPENDENCY = "dependency"
    CONFIG_SSH = "config.ssh"
    CONFIG_DATABASE = "config.database"
    CONFIG_FIREWALL = "config.firewall"
    CODE_SQL_INJECTION = "code.sql_injection"
    IAC_KUBERNETES = "iac.kubernetes"
    IAC_DOCKER = "iac.docker"
    PERMISSIONS = "permissions"
    OTHER = "other"


_CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


class FindingStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    FIXED = "fixed"
    VERIFIED = "verified"
    ROLLED_BACK = "rolled_back"
    EXCEPTED = "excepted"
    FAILED = "failed"


class AssetKind(StrEnum):
    HOST = "host"
    WEB_APP = "web_app"
    REPOSITORY = "repository"
    CONTAINER_IMAGE = "container_image"
    KUBERNETES = "kubernetes"
    DATABASE = "database"


class Environment(StrEnum):
    PROD = "prod"
    STAGING = "staging"
    DEV = "dev"


class Location(BaseModel):
    """Where a finding sits: a file region, a package, or both."""

    model_config = ConfigDict(frozen=True)

    path: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    package: str | None = None
    version: str | None = None


class FindingRecord(BaseModel):
    """One finding as a scanner or detector reports it, before it is stored.

    ``fingerprint`` identifies *the issue*, not the report: two scanners that
    report the same issue on the same asset produce the same fingerprint, so
    the store merges them into one finding with both sources.
    """

    scanner: str
    rule_id: str
    category: str = Category.OTHER
    title: str
    severity: Severity
    asset: str | None = None
    location: Location = Field(default_factory=Location)
    cvss_score: float | None = None
    cvss_vector: str | None = None
    aliases: list[str] = Field(default_factory=list)
    cwe: list[str] = Field(default_factory=list)
    fixed_versions: list[str] = Field(default_factory=list)
    evidence: str | None = None
    detected_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    identity: str | None = None
    """A detector's stable name for the issue within its file (e.g. the
    ``Match`` block and keyword it concerns), used instead of the line number
    so that a finding keeps its identity when an edit elsewhere moves it."""

    @field_validator("category")
    @classmethod
    def _category_name(cls, value: str) -> str:
        try:
            return Category(value)
        except ValueError:
            pass
        if not _CATEGORY_NAME.match(value):
            raise ValueError(
                f"category {value!r} is not a dotted lower-case name such as iac.terraform"
            )
        return value

    @field_validator("cvss_score")
    @classmethod
    def _score_range(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value <= 10.0:
            raise ValueError(f"CVSS score {value} is outside 0.0-10.0")
        return value

    def issue_key(self) -> tuple[str, ...]:
        """The scanner-independent identity of the issue (see docs/findings.md).

        * dependencies: package, version and the advisory's canonical id
          (the CVE when one is known, else the GHSA, else the scanner's id);
        * code findings with a known category (``code.*``): path, start line,
          category — so Bandit's B608 and Semgrep's SQL-injection rule on the
          same line are one finding;
        * findings whose detector gives an ``identity``: path, rule id and
          that identity (line numbers move when a file is edited);
        * everything else: path, start line and rule id (many IaC and config
          checks fire on the same line, and each is its own finding).
        """
        loc = self.location
        if self.identity:
            return ("id", loc.path or "", self.rule_id, self.identity)
        if self.category == Category.DEPENDENCY and loc.package:
            return (
                "dep",
                loc.package.lower().replace("_", "-"),
                loc.version or "",
                canonical_advisory_id([self.rule_id, *self.aliases]),
            )
        if self.category.startswith("code.") and loc.path:
            return ("loc", loc.path, str(loc.start_line or 0), str(self.category))
        return ("rule", loc.path or "", str(loc.start_line or 0), self.rule_id)

    def fingerprint(self, asset_id: str) -> str:
        key = "\x1f".join((asset_id, *self.issue_key()))
        return hashlib.sha256(key.encode()).hexdigest()


def known_category(value: str) -> str:
    """``value`` as the :class:`Category` member when it is one of Jupiter's
    own (so ``is`` comparisons keep working), else the plain string."""
    try:
        return Category(value)
    except ValueError:
        return value


def canonical_advisory_id(ids: list[str]) -> str:
    """Pick one id among an advisory's aliases so that scanners agree on it."""
    upper = sorted({i.upper() for i in ids if i})
    for prefix in ("CVE-", "GHSA-"):
        for candidate in upper:
            if candidate.startswith(prefix):
                return candidate
    return upper[0] if upper else ""


class BlueGreenLayout(BaseModel):
    """``{link: current, slots: [blue, green]}`` under the asset's root:
    ``link`` is a symlink naming the live slot directory."""

    model_config = ConfigDict(extra="forbid")

    link: str = "current"
    slots: list[str] = Field(default_factory=lambda: ["blue", "green"], min_length=2, max_length=2)


class AssetSpec(BaseModel):
    """An asset as declared in ``assets.yaml``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
    name: str | None = None
    kind: AssetKind = AssetKind.HOST
    environment: Environment = Environment.DEV
    criticality: int = Field(default=3, ge=1, le=5)
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    group: str | None = None
    connection: str | None = None
    # What the remediation workflows use (docs/workflows.md): health probes,
    # the asset's own test command, a blue-green layout, a maintenance window.
    probes: list[Probe] = Field(default_factory=list)
    _unique = field_validator("probes")(lambda v: unique_probe_keys(v))
    tests: list[str] | None = Field(default=None, min_length=1)
    blue_green: BlueGreenLayout | None = None
    window: str | None = None
    _check_window = field_validator("window")(check_window)

    @field_validator("connection")
    @classmethod
    def _connection_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme, sep, rest = value.partition(":")
        if not sep or scheme not in {"local", "ssh"} or not rest:
            raise ValueError("connection must be 'local:PATH' or 'ssh:USER@HOST[:PORT]/ROOT'")
        return value
