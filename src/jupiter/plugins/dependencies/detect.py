"""Vulnerable Python dependencies: exact pins matched against the OSV database.

:func:`scan_dependencies` reads every dependency file of a target (see
:mod:`jupiter.plugins.dependencies.parse`) and reports one
:class:`FindingRecord` per (package, version, advisory):

* ``rule_id`` is the advisory's canonical id (CVE, else GHSA, else OSV id),
  ``aliases`` its other ids, ``fixed_versions`` its fixes for that package;
* ``category`` is ``dependency``; ``severity`` comes from the GitHub severity
  in ``database_specific`` or else the CVSS vector (``medium`` when neither
  is known, flagged by ``extra["severity_known"] = False``);
* ``location`` carries path, line, PEP 503 package name and pinned version.

Files that cannot be parsed do not stop the scan and are not findings (they
are not vulnerabilities, and a remediator could never "fix" them): they are
returned in :attr:`DependencyScan.errors` — one :class:`InputError` per file
naming ``file:line`` — for the caller to show. :attr:`DependencyScan.notes`
explains an empty result, e.g. an empty advisory database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jupiter.advisories import Advisory, AdvisoryDB
from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.dependencies.parse import PinnedDependency, scan_manifests
from jupiter.targets.base import TargetView

SCANNER = "jupiter-dependencies"
ECOSYSTEM = "PyPI"


@dataclass
class DependencyScan:
    findings: list[FindingRecord] = field(default_factory=list)
    dependencies: list[PinnedDependency] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def scan_dependencies(view: TargetView, db: AdvisoryDB) -> DependencyScan:
    """Find pinned dependencies of ``view`` that an advisory in ``db`` affects."""
    manifests = scan_manifests(view)
    result = DependencyScan(dependencies=manifests.dependencies, errors=manifests.errors)
    if not manifests.files:
        result.notes.append(f"no Python dependency files found in {view.describe()}")
    if db.is_empty():
        result.notes.append(db.status())
        return result
    for dep in manifests.dependencies:
        for advisory in db.query(ECOSYSTEM, dep.name, dep.version):
            result.findings.append(dependency_finding(dep, advisory))
    return result


def dependency_finding(dep: PinnedDependency, advisory: Advisory) -> FindingRecord:
    """The finding for one pinned dependency affected by one advisory."""
    rule_id = advisory.canonical_id
    aliases = sorted({advisory.id, *advisory.aliases} - {rule_id})
    summary = advisory.summary or f"known vulnerability {rule_id}"
    where = f"{dep.path}:{dep.line}" if dep.line else dep.path
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rule_id,
        category=Category.DEPENDENCY,
        title=f"{dep.display_name} {dep.version}: {summary}",
        severity=advisory.severity or Severity.MEDIUM,
        location=Location(
            path=dep.path,
            start_line=dep.line or None,
            end_line=dep.end_line or None,
            package=dep.name,
            version=dep.version,
        ),
        cvss_score=advisory.cvss_score,
        cvss_vector=advisory.cvss_vector,
        aliases=aliases,
        cwe=list(advisory.cwe_ids),
        fixed_versions=list(advisory.fixed_versions),
        evidence=f"{where}: {dep.text}",
        extra={
            "ecosystem": ECOSYSTEM,
            "advisory_id": advisory.id,
            "manifest": dep.kind,
            "hashed": dep.hashed,
            "marker": dep.marker,
            "severity_known": advisory.severity is not None,
        },
    )
