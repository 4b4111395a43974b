"""The ``python-security`` remediator: fixes Bandit's findings in Python code
where a fix is safe, and names the decision for the others (from the catalog)."""

from __future__ import annotations

import difflib
import posixpath
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from jupiter.errors import InputError
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plans import Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.kit import decode_text, project_files
from jupiter.plugins.python_security import RULE_CATEGORIES
from jupiter.plugins.python_security import codemods as cm
from jupiter.plugins.python_security import detect as det
from jupiter.targets.base import TargetView

SCANNER = "jupiter-python"
XML_RULES = frozenset({r for r, _ in det.XML_CALLS.values()})
XML_IMPORT_RULES = frozenset({"B405", "B406", "B407", "B408", "B409"})
_REQUIREMENTS = ("requirements.txt", "requirements.in")
#: Set on the finding by plan() for is_fixed(): where the site's first line
#: is after the fix, and the site's code before it.
_SITE_AFTER = "python_security_site_after"
_SITE_CODE = "python_security_site_code"
_SKIP = frozenset({"tests", "test", "migrations", "site-packages"})


class PythonSecurityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: float = Field(default=30.0, gt=0, le=3600, description="B113: seconds")
    ca_bundle: str | None = Field(
        default=None, description="B501: a CA bundle path to verify against instead of True"
    )


class PythonSecurity(Remediator[PythonSecurityParams]):
    name = "python-security"
    summary = "Fix Bandit findings in Python code (timeouts, safe YAML, TLS, shell, XML, ...)"
    categories: ClassVar[frozenset[str]] = frozenset(RULE_CATEGORIES.values())
    # B103 (chmod in code) stays a ``permissions`` finding; this plugin
    # answers it in code, with the decision a person must make.
    rule_ids: ClassVar[frozenset[str]] = frozenset({*RULE_CATEGORIES, "B103"})
    params_model = PythonSecurityParams

    def handles(self, finding: FindingRecord) -> bool:
        path = finding.location.path
        if path is not None and not path.endswith(".py"):
            return False
        return finding.rule_id.upper() in self.rule_ids

    # -- detection ---------------------------------------------------------
    def detect(
        self, view: TargetView, params: PythonSecurityParams | None = None
    ) -> list[FindingRecord]:
        return self._detect(view, tolerant=False)[0]

    def survey(
        self, view: TargetView, params: PythonSecurityParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        return self._detect(view, tolerant=True)

    def _detect(self, view: TargetView, tolerant: bool) -> tuple[list[FindingRecord], list[str]]:
        findings: list[FindingRecord] = []
        problems: list[str] = []
        paths = project_files(
            view, lambda p: p.endswith(".py") and not _SKIP & set(p.split("/")[:-1])
        )
        for path in paths:
            try:
                source = decode_text(path, view.read_bytes(path))
                hits = det.scan(path, source)
            except InputError as exc:
                if not tolerant:
                    raise
                problems.append(str(exc))
                continue
            seen: set[tuple[str, int]] = set()
            for hit in hits:
                if (hit.rule_id, hit.line) in seen:
                    continue  # two calls of one rule on a line are one finding
                seen.add((hit.rule_id, hit.line))
                findings.append(_record(path, hit))
        return findings, problems

    def is_fixed(
        self, finding: FindingRecord, view: TargetView, params: PythonSecurityParams
    ) -> bool:
        """Gone when its site is no longer reported. Imports added or removed
        above a call move it, so the site is found by where the fix left it
        (recorded by :meth:`plan`) or by its code, never by a stale line."""
        path = finding.location.path
        if not path:
            return False
        try:
            source = decode_text(path, view.read_bytes(path))
        except FileNotFoundError:
            return True
        rule = finding.rule_id.upper()
        hits = [h for h in det.scan(path, source) if h.rule_id == rule]
        if rule in XML_RULES | XML_IMPORT_RULES:
            return not hits
        after = finding.extra.get(_SITE_AFTER)
        code = _site_code(finding)
        if isinstance(after, int):
            return not any(h.line == after and (code is None or _same(h, code)) for h in hits)
        if code is not None:
            return not any(_same(h, code) for h in hits)
        return not any(h.line == finding.location.start_line for h in hits)

    # -- planning ----------------------------------------------------------
    def plan(self, finding: FindingRecord, view: TargetView, params: PythonSecurityParams) -> Plan:
        from jupiter.catalog import load_catalog

        rule = finding.rule_id.upper()
        entries = load_catalog().for_rule(rule)
        base = {
            "remediator": self.name,
            "rule_id": finding.rule_id,
            # never the scanner's title: Bandit's B105 title quotes the secret
            "title": det.TITLES.get(rule) or (entries[0].title if entries else rule),
            "severity": finding.severity,
        }
        entry = next((e for e in entries if e.framework == "python"), None)
        if entry is None or entry.fix_class == "needs_manual" or not cm.can_rewrite(rule):
            decision = entry.decision if entry is not None and entry.decision else None
            return Plan(
                **base,
                needs_manual=_where(finding) + (decision or "review this finding by hand"),
            )
        path = finding.location.path
        line = finding.location.start_line
        if not path or not line:
            return Plan(**base, needs_manual="the finding names no file and line to fix")
        path = posixpath.normpath(path)
        try:
            data = view.read_bytes(path)
        except FileNotFoundError:
            return Plan(**base, needs_manual=f"{path} does not exist on {view.describe()}")
        source = decode_text(path, data)
        tree = det.parse_module(path, source)
        hits = [h for h in det.scan(path, source) if h.rule_id == rule]
        if not hits:
            return Plan(**base)  # fixed already
        site = hits[0]
        if rule not in XML_RULES | XML_IMPORT_RULES:
            located, why = _locate(hits, finding, source)
            if located is None and why == "gone":
                return Plan(**base)  # its code is no longer reported: fixed already
            if located is None:
                return Plan(
                    **base,
                    needs_manual=(
                        f"{path} line {line}: no {rule} call is there any more while others "
                        "remain in the module (it changed since the scan); scan again"
                    ),
                )
            site = located
            line = site.call_line
        options = cm.Options(timeout=params.timeout, ca_bundle=params.ca_bundle)
        try:
            new_source, _ = cm.rewrite(source, rule, line, det.Names(tree), tree, options)
        except cm.ManualFix as exc:
            return Plan(**base, needs_manual=f"{path} line {line}: {exc.reason}")
        if rule in XML_IMPORT_RULES and any(h.rule_id == rule for h in det.scan(path, new_source)):
            return Plan(
                **base,
                needs_manual=(
                    f"{path} line {line}: the xml module is still used for more than parsing "
                    "(building documents); keep it, and make sure every parse goes through "
                    "defusedxml"
                ),
            )
        if new_source == source:
            return Plan(**base)
        finding.extra[_SITE_AFTER] = _map_line(source, new_source, site.line)
        finding.extra[_SITE_CODE] = site.code
        changes = [WriteFile(path=path, content=new_source, before_sha256=sha256_bytes(data))]
        diff = unified_diff(path, source, new_source)
        warnings = [f"{path}: run the project's tests for the changed code before deploying"]
        if "defusedxml" in new_source and "defusedxml" not in source:
            dep = _declare_defusedxml(view, path)
            if dep is None:
                return Plan(
                    **base,
                    needs_manual=(
                        f"{path} line {line}: moving to defusedxml needs it declared as a "
                        "dependency and the project has no requirements file Jupiter can edit; "
                        "add defusedxml to its dependencies, then fix again"
                    ),
                )
            if isinstance(dep, tuple):
                changes.append(dep[0])
                diff += dep[1]
        if entry.fix_class == "risk" and entry.risk:
            warnings.append(entry.risk)
        return Plan(
            **base,
            changes=changes,
            diff=diff,
            risk=Risk(change_kind="code", warnings=warnings),
        )

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        from jupiter.plugins.python_security.validate import check_candidate

        return check_candidate(plan, candidate)


def _record(path: str, hit: det.Hit) -> FindingRecord:
    return FindingRecord(
        scanner=SCANNER,
        rule_id=hit.rule_id,
        category=RULE_CATEGORIES[hit.rule_id],
        title=det.TITLES.get(hit.rule_id, hit.rule_id),
        severity=Severity(det.SEVERITY.get(hit.rule_id, "low")),
        location=Location(path=path, start_line=hit.line, end_line=hit.end_line),
        extra={"code": hit.code},
    )


def _site_code(finding: FindingRecord) -> str | None:
    """The site's code: recorded by plan(), or by the detector (``extra.code``)."""
    for key in (_SITE_CODE, "code"):
        value = finding.extra.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _same(hit: det.Hit, code: str) -> bool:
    return hit.code == code


def _evidence_line(finding: FindingRecord) -> str | None:
    """The source text of the finding's line from a scanner's snippet
    (Bandit's ``code``: ``"21 r = requests.get(url)"`` lines)."""
    line = finding.location.start_line
    if not finding.evidence or not line:
        return None
    for raw in finding.evidence.splitlines():
        number, _, text = raw.strip().partition(" ")
        if number == str(line):
            return text.strip()
    return None


def _locate(hits: list[det.Hit], finding: FindingRecord, source: str) -> tuple[det.Hit | None, str]:
    """The hit the finding means, in a module earlier steps may have edited.

    By its code (Jupiter's own findings; nearest the reported line): no hit
    with that code means ``"gone"``. Else by the text of its line in the
    scanner's snippet, else by its line: no match means ``"lost"`` (the file
    changed since the scan) — never taken for fixed.
    """
    line = finding.location.start_line or 0
    code = _site_code(finding)
    if code is not None:
        same = [h for h in hits if _same(h, code)]
        if not same:
            return None, "gone"
        return min(same, key=lambda h: abs(h.line - line)), ""
    text = _evidence_line(finding)
    if text is not None:
        lines = source.splitlines()
        same = [h for h in hits if 0 < h.line <= len(lines) and lines[h.line - 1].strip() == text]
        if same:
            return min(same, key=lambda h: abs(h.line - line)), ""
    at_line = next((h for h in hits if h.line == line), None)
    return at_line, "" if at_line is not None else "lost"


def _map_line(old: str, new: str, line: int) -> int:
    """Where line ``line`` of ``old`` is in ``new`` (1-based)."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        if i1 <= line - 1 < i2:
            return j1 + (line - 1 - i1) + 1 if tag == "equal" else j1 + 1
    return line


def _where(finding: FindingRecord) -> str:
    loc = finding.location
    return f"{loc.path} line {loc.start_line}: " if loc.path and loc.start_line else ""


def _declare_defusedxml(view: TargetView, module: str) -> tuple[WriteFile, str] | bool | None:
    """The requirements file edit that declares defusedxml: ``True`` if it is
    declared already, ``None`` if there is no requirements file to edit."""
    folder = posixpath.dirname(module)
    while True:
        for name in _REQUIREMENTS:
            path = posixpath.join(folder, name) if folder else name
            state = view.stat(path)
            if state is None or state.kind != "file":
                continue
            data = view.read_bytes(path)
            text = decode_text(path, data)
            if any(
                line.split("#")[0].strip().lower().startswith("defusedxml")
                for line in text.splitlines()
            ):
                return True
            newline = "\r\n" if "\r\n" in text else "\n"
            sep = "" if not text or text.endswith(("\n", "\r")) else newline
            new = f"{text}{sep}defusedxml>=0.7.1{newline}"
            return (
                WriteFile(path=path, content=new, before_sha256=sha256_bytes(data)),
                unified_diff(path, text, new),
            )
        if not folder:
            return None
        folder = posixpath.dirname(folder)
