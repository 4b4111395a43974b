"""``sql-injection-python``: parameterise SQL built from strings in Python code.

Handles its own detector's findings (``PY-SQLI-001/002/003``, see
:mod:`jupiter.plugins.sql_injection.detect`), Bandit ``B608`` and Semgrep rules whose
id names SQL injection. One finding is one sink call; the plan writes the
whole module back with that call rewritten to pass its values as query
parameters (``?`` for sqlite3, ``%s`` for psycopg/pymysql/MySQLdb/Django,
``:name`` via ``bindparams`` for SQLAlchemy ``text()``). Identifiers (table
or column names), IN lists, executemany and unknown drivers are left alone
with a ``needs_manual`` reason.
"""

from __future__ import annotations

import posixpath
from typing import ClassVar

from jupiter.models import Category, FindingRecord
from jupiter.plans import Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import NoParams, Remediator, ValidationResult
from jupiter.plugins.kit import decode_text, keep_line_endings, survey_files
from jupiter.plugins.sql_injection.codemod import rewrite_site
from jupiter.plugins.sql_injection.detect import (
    RULES,
    ModuleScan,
    Site,
    detect_source,
    might_hold_sinks,
    scan_source,
)
from jupiter.plugins.sql_injection.paramstyle import declared_paramstyle
from jupiter.plugins.sql_injection.template import ManualFix
from jupiter.redact import redact_text
from jupiter.targets.base import TargetView

# Directories that hold third-party or generated code, never the project's own.
_SKIP_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "node_modules", "site-packages", "__pycache__", ".tox"}
)
# External reports may point at the line that builds the string rather than
# the call; within one function, the nearest sink this many lines away counts.
_NEARBY_LINES = 15


def _is_external_sqli(rule_id: str) -> bool:
    rid = rule_id.lower()
    # B608: SQL built from strings; B610/B611: Django extra() and RawSQL.
    if rid in ("b608", "b610", "b611"):
        return True
    return "sql" in rid and any(k in rid for k in ("injection", "formatted-sql", "sqli"))


class SqlInjectionPython(Remediator[NoParams]):
    name = "sql-injection-python"
    summary = "Parameterise SQL built with %, f-strings, format() or + in Python code"
    categories: ClassVar[frozenset[Category]] = frozenset({Category.CODE_SQL_INJECTION})
    rule_ids: ClassVar[frozenset[str]] = frozenset({*RULES, "B608", "B610", "B611"})

    def handles(self, finding: FindingRecord) -> bool:
        path = finding.location.path
        if path is not None and not path.endswith(".py"):
            return False
        return finding.rule_id in self.rule_ids or _is_external_sqli(finding.rule_id)

    def detect(self, view: TargetView, params: NoParams | None = None) -> list[FindingRecord]:
        """Every finding; a module that does not parse raises InputError."""
        return self._detect(view, tolerant=False)[0]

    def survey(
        self, view: TargetView, params: NoParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        """Every finding in the modules that parse; the others are reported."""
        return self._detect(view, tolerant=True)

    def _detect(self, view: TargetView, tolerant: bool) -> tuple[list[FindingRecord], list[str]]:
        paths = [
            p
            for p in view.walk()
            if p.endswith(".py") and not _SKIP_DIRS.intersection(p.split("/")[:-1])
        ]

        def scan_one(path: str, data: bytes) -> list[FindingRecord]:
            if not might_hold_sinks(data):
                return []
            return detect_source(path, decode_text(path, data))

        return survey_files(view, paths, scan_one, tolerant)

    def plan(self, finding: FindingRecord, view: TargetView, params: NoParams) -> Plan:
        base = {
            "remediator": self.name,
            "rule_id": finding.rule_id,
            "title": finding.title,
            "severity": finding.severity,
        }
        path = finding.location.path
        if not path or not finding.location.start_line:
            return Plan(**base, needs_manual="the finding names no file and line to fix")
        path = posixpath.normpath(path)
        try:
            data = view.read_bytes(path)
        except FileNotFoundError:
            return Plan(**base, needs_manual=f"{path} does not exist on {view.describe()}")
        source = decode_text(path, data)
        scan = scan_source(path, source)
        if scan.paramstyle is None:
            style, why = declared_paramstyle(view, path)
            if style is not None:
                scan.paramstyle = style
                scan.paramstyle_reason = f"{scan.paramstyle_reason}; {why}"
            else:
                scan.paramstyle_reason = f"{scan.paramstyle_reason}; {why}"
        site, external_miss = self._locate(scan, finding)
        if site is None:
            if external_miss:
                return Plan(
                    **base,
                    needs_manual=(
                        f"no SQL call near {path} line {finding.location.start_line} builds its "
                        "query from strings in a way the codemod understands; review it by hand"
                    ),
                )
            return Plan(**base)  # the call is parameterised already
        try:
            new_source = keep_line_endings(source, rewrite_site(scan, site))
        except ManualFix as exc:
            return Plan(**base, needs_manual=f"{path} line {site.line}: {exc.reason}")
        return Plan(
            **base,
            changes=[WriteFile(path=path, content=new_source, before_sha256=sha256_bytes(data))],
            diff=unified_diff(path, source, new_source),
            risk=Risk(
                change_kind="code",
                warnings=[
                    f"{site.function} now sends its values as query parameters; run the "
                    "project's tests for it before deploying"
                ],
            ),
        )

    def _locate(self, scan: ModuleScan, finding: FindingRecord) -> tuple[Site | None, bool]:
        """The site a finding means; the flag says an external finding matched nothing."""
        line = finding.location.start_line or 0
        if finding.rule_id in RULES:
            same = [s for s in scan.sites if s.rule_id == finding.rule_id]
            # Stored evidence is redacted at ingest (a quoted password in the
            # SQL): compare the detector's text the same way.
            exact = [
                s
                for s in same
                if s.line == line
                and finding.evidence in (None, s.evidence, redact_text(s.evidence))
            ]
            if not exact and finding.evidence:
                # Earlier rewrites in the file may have moved the call: match its text.
                function = finding.extra.get("function")
                exact = sorted(
                    (
                        s
                        for s in same
                        if finding.evidence in (s.evidence, redact_text(s.evidence))
                        and (function is None or s.function == function)
                    ),
                    key=lambda s: abs(s.line - line),
                )
            site = exact[0] if exact else None
            return (site if site is not None and site.dynamic else None), False
        near: list[tuple[int, Site]] = []
        for site in scan.sites:
            first, last = site.function_span
            if site.function != "<module>" and not first <= line <= last:
                continue
            lo, hi = site.construction_lines
            lo, hi = min(lo, site.line), max(hi, site.end_line)
            distance = 0 if lo <= line <= hi else min(abs(line - lo), abs(line - hi))
            if distance <= _NEARBY_LINES:
                near.append((distance, site))
        if not near:
            return None, True
        near.sort(key=lambda pair: (pair[0], not pair[1].dynamic, pair[1].line))
        best = near[0][1]
        return (best if best.dynamic else None), False

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: NoParams) -> bool:
        """Whether the call ``finding`` means no longer builds its SQL from strings.

        External findings (Bandit's line is the string's, not the call's) are
        mapped to a call as in :meth:`plan`; one that maps to no call at all
        is not taken as fixed.
        """
        path = finding.location.path
        if not path:
            return False
        path = posixpath.normpath(path)
        try:
            data = view.read_bytes(path)
        except FileNotFoundError:
            return True
        site, external_miss = self._locate(scan_source(path, decode_text(path, data)), finding)
        return site is None and not external_miss

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Compile every rewritten module with CPython's own compiler."""
        results: list[ValidationResult] = []
        for path in plan.touched_paths():
            if not path.endswith(".py"):
                continue
            source = candidate.read_bytes(path)
            try:
                compile(source, path, "exec", dont_inherit=True)
            except SyntaxError as exc:
                results.append(
                    ValidationResult(
                        "python-compile", "failed", f"{path} line {exc.lineno}: {exc.msg}"
                    )
                )
                continue
            results.append(ValidationResult("python-compile", "passed", f"{path} compiles"))
        return results
