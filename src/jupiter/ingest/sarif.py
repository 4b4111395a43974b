"""SARIF 2.1.0 (CodeQL, Semgrep, Bandit ``-f sarif``, Checkov, Trivy ``--format sarif``).

Severity, first match wins:

1. ``properties["security-severity"]`` of the result, else of its rule (a
   0-10 score, CodeQL/Trivy style) → the CVSS qualitative rating;
2. ``properties.issue_severity`` of the result (Bandit: its medium results
   carry no ``level`` at all);
3. Checkov runs: Checkov writes ``level: error`` for every check offline, so
   its per-check default applies (see :mod:`jupiter.ingest.checkov`);
4. the result's ``level``, else the rule's ``defaultConfiguration.level``,
   else SARIF's default ``warning``: error → high, warning → medium,
   note → low, none → info.

Paths are the ``artifactLocation.uri`` as reported, percent-decoded, without
``file://``; an absolute URI under one of the run's ``originalUriBaseIds`` is
made relative to it. Trivy's vulnerability results (package and versions only
in the message text) become dependency findings.

Reports up to 256 MiB are parsed whole with orjson (``json_document``);
larger ones stream (:mod:`jupiter.ingest.sarif_stream`). For the whole-file path:
measured on the 100,000-result, 94 MB file of ``benchmarks/ingest_data.py``
(CPU time on this 2-core machine), ``json.load`` 1.34-1.40 s, ``orjson.loads``
0.92 s, ijson's yajl2_c ``items`` over the results 0.93 s; this parser, records
included, 1.8-1.9 s. Streaming would bound memory (13 MB vs ~500 MB peak) but
a result must be tied to its run's rule table, which ijson can only give with
extra passes over the file (0.65 s each), so for the sizes scanners write
orjson is the better trade.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jupiter.ingest import checkov, sarif_stream
from jupiter.ingest.common import (
    ProgressCallback,
    arr,
    cwe_ids,
    fail,
    json_document,
    json_type,
    obj,
    opt_obj,
    report_path,
    score,
    severity_from_score,
    severity_word,
    text,
)
from jupiter.limits import quote
from jupiter.models import Category, FindingRecord, Severity
from jupiter.plugins.domains import category_for

_LEVELS = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.INFO,
}
_TRIVY_PACKAGE = re.compile(r"^Package: (?P<pkg>\S+)\s*$", re.MULTILINE)
_TRIVY_INSTALLED = re.compile(r"^Installed Version: (?P<ver>\S+)\s*$", re.MULTILINE)
_TRIVY_FIXED = re.compile(r"^Fixed Version: (?P<fixed>.+?)\s*$", re.MULTILINE)


class _Rule:
    """What a run's rule table says about one rule, computed once per rule."""

    __slots__ = ("category", "cwe", "default_level", "id", "security_severity", "title")

    def __init__(self, path: Path, raw: dict[str, Any], where: str) -> None:
        self.id = text(path, raw.get("id"), f"{where}.id") or ""
        props = opt_obj(path, raw.get("properties"), f"{where}.properties")
        short_desc = opt_obj(path, raw.get("shortDescription"), f"{where}.shortDescription")
        short = text(path, short_desc.get("text"), f"{where}.shortDescription.text") or ""
        short = short or text(path, raw.get("name"), f"{where}.name") or ""
        self.title = "" if short.startswith("Semgrep Finding:") else short
        tags = arr(path, props.get("tags"), f"{where}.properties.tags")
        self.cwe = cwe_ids([*tags, *arr(path, props.get("cwe"), f"{where}.properties.cwe")])
        self.security_severity = score(
            path, props.get("security-severity"), f"{where}.properties.security-severity"
        )
        config = opt_obj(path, raw.get("defaultConfiguration"), f"{where}.defaultConfiguration")
        level = config.get("level")
        self.default_level = _level(path, level, f"{where}.defaultConfiguration.level")
        self.category = category_for(self.id, self.cwe, self.title)


def _level(path: Path, value: Any, where: str) -> Severity | None:
    if value is None:
        return None
    found = _LEVELS.get(value) if isinstance(value, str) else None
    if found is None:
        fail(path, where, f"level {quote(value)} is not one of error, warning, note, none")
    return found


def _scanner_name(driver_name: str) -> str:
    words = driver_name.strip().lower().split()
    return words[0] if words else "sarif"


def _base_uris(run: dict[str, Any]) -> list[str]:
    bases = run.get("originalUriBaseIds") or {}
    out = []
    for value in bases.values() if isinstance(bases, dict) else ():
        uri = value.get("uri") if isinstance(value, dict) else None
        if isinstance(uri, str) and uri.startswith("file://"):
            out.append(unquote(uri[len("file://") :]).rstrip("/") + "/")
    return out


def parse(path: Path, on_progress: ProgressCallback | None = None) -> Iterator[FindingRecord]:
    """Yield one FindingRecord per SARIF result, run by run."""
    if path.is_file() and path.stat().st_size > sarif_stream.threshold():
        streamed = sarif_stream.parse(path, on_progress)
        if streamed is not None:
            yield from streamed
            return
    with json_document(path, on_progress) as loaded:
        doc = obj(path, loaded, "top level")
        if "runs" not in doc:
            fail(path, "top level", "a SARIF log needs a 'runs' array")
        for i, run_raw in enumerate(arr(path, doc["runs"], "runs")):
            yield from parse_run(path, obj(path, run_raw, f"runs[{i}]"), i)


def parse_run(
    path: Path, run: dict[str, Any], i: int, results: Iterable[Any] | None = None
) -> Iterator[FindingRecord]:
    """Records of one run; ``results`` (streamed) replaces ``run["results"]``."""
    where = f"runs[{i}]"
    tool = obj(path, run.get("tool"), f"{where}.tool")
    driver = obj(path, tool.get("driver"), f"{where}.tool.driver")
    driver_name = text(path, driver.get("name"), f"{where}.tool.driver.name", required=True)
    scanner = _scanner_name(driver_name or "")
    # Rule tables: the driver's, then each extension's (CodeQL keeps its
    # queries in extensions and points at them with rule.toolComponent.index).
    tables = [_rules(path, driver, f"{where}.tool.driver")]
    for e, ext in enumerate(arr(path, tool.get("extensions"), f"{where}.tool.extensions")):
        tables.append(
            _rules(
                path,
                obj(path, ext, f"{where}.tool.extensions[{e}]"),
                f"{where}.tool.extensions[{e}]",
            )
        )
    by_id = {rule.id: rule for table in reversed(tables) for rule in table}
    bases = _base_uris(run)
    if results is None:
        results = arr(path, run.get("results"), f"{where}.results")
    # The tool's version, kept with each finding it reports first (SARIF export).
    version = driver.get("version") or driver.get("semanticVersion")
    version = version[:100] if isinstance(version, str) and version.strip() else None
    for j, raw in enumerate(results):
        if not isinstance(raw, dict):
            fail(path, _at((i, j), ""), "expected an object")
        record = _record(path, raw, (i, j), scanner, tables, by_id, bases)
        if version is not None:
            record.extra["tool_version"] = version
        yield record


def _at(at: tuple[int, int], suffix: str) -> str:
    """Where a result's field is, for error messages (built only when one is raised)."""
    return f"runs[{at[0]}].results[{at[1]}]{suffix}"


def _rules(path: Path, component: dict[str, Any], where: str) -> list[_Rule]:
    return [
        _Rule(path, obj(path, r, f"{where}.rules[{k}]"), f"{where}.rules[{k}]")
        for k, r in enumerate(arr(path, component.get("rules"), f"{where}.rules"))
    ]


def _rule_of(
    path: Path,
    raw: dict[str, Any],
    at: tuple[int, int],
    tables: list[list[_Rule]],
    by_id: dict[str, _Rule],
) -> tuple[str, _Rule | None]:
    rule_id = raw.get("ruleId")
    index = raw.get("ruleIndex")
    rules = tables[0]
    ref = raw.get("rule")
    if isinstance(ref, dict):
        rule_id = rule_id or ref.get("id")
        index = ref.get("index", index)
        tool_component = ref.get("toolComponent")
        component = tool_component.get("index") if isinstance(tool_component, dict) else None
        if type(component) is int:
            if not 0 <= component < len(tables) - 1:
                fail(path, _at(at, ".rule.toolComponent.index"), f"no extension {component}")
            rules = tables[component + 1]
    rule: _Rule | None = None
    if type(index) is int:
        if not 0 <= index < len(rules):
            fail(path, _at(at, ".ruleIndex"), f"index {index} has no rule in the run's rule table")
        rule = rules[index]
    elif type(rule_id) is str:
        rule = by_id.get(rule_id)
    if rule_id is None and rule is not None:
        rule_id = rule.id
    if type(rule_id) is not str or not rule_id:
        fail(path, _at(at, ".ruleId"), "the result names no rule (ruleId, ruleIndex or rule.id)")
    return rule_id, rule


_EMPTY: dict[str, Any] = {}


def _record(
    path: Path,
    raw: dict[str, Any],
    at: tuple[int, int],
    scanner: str,
    tables: list[list[_Rule]],
    by_id: dict[str, _Rule],
    bases: list[str],
) -> FindingRecord:
    # Hot path (100,000s of calls): plain type checks, error locations built lazily.
    rule_id, rule = _rule_of(path, raw, at, tables, by_id)
    msg = raw.get("message")
    message = msg.get("text") if isinstance(msg, dict) else None
    if type(message) is not str:
        message = text(path, message, _at(at, ".message.text")) or ""
    props = raw.get("properties")
    if props is None:
        props = _EMPTY
    elif not isinstance(props, dict):
        fail(path, _at(at, ".properties"), "expected an object")

    location = _location(path, raw, at, bases)
    cwe = rule.cwe if rule is not None else []
    first = message.lstrip()
    newline = first.find("\n")
    title = (first if newline < 0 else first[:newline]).rstrip()[:300]
    title = title or (rule.title if rule else "") or rule_id

    level_raw = raw.get("level")
    level = _LEVELS.get(level_raw) if type(level_raw) is str else None
    if level is None and level_raw is not None:
        level = _level(path, level_raw, _at(at, ".level"))  # raises with the field
    sec = None
    if (sec_raw := props.get("security-severity")) is not None:
        sec = score(path, sec_raw, _at(at, ".properties.security-severity"))
    elif rule is not None:
        sec = rule.security_severity
    severity: Severity | None = severity_from_score(sec) if sec is not None else None
    if severity is None and "issue_severity" in props:
        severity = severity_word(
            text(path, props["issue_severity"], _at(at, ".properties.issue_severity"))
        )
    if severity is None and scanner == "checkov":
        severity = checkov.default_severity(rule_id)
    if severity is None:
        severity = level
    if severity is None:
        severity = (rule.default_level if rule else None) or Severity.MEDIUM

    if rule is not None and rule.category != Category.OTHER:
        category = rule.category
    else:  # a domain may claim a rule for some file types only (see Domain.paths)
        category = category_for(rule_id, cwe, message, path=location.get("path"))
    extra: dict[str, Any] = {}
    if sec is not None:
        extra["security_severity"] = sec
    if "issue_confidence" in props:
        extra["confidence"] = props["issue_confidence"]
    if rule is not None and rule.title and rule.title != title:
        extra["rule_title"] = rule.title

    fixed: list[str] = []
    if "Installed Version:" in message:
        pkg_match = _TRIVY_PACKAGE.search(message)
        ver_match = _TRIVY_INSTALLED.search(message)
        if pkg_match and ver_match:
            location["package"] = pkg_match.group("pkg")
            location["version"] = ver_match.group("ver")
            category = Category.DEPENDENCY
            if fixed_match := _TRIVY_FIXED.search(message):
                fixed = [v.strip() for v in fixed_match.group("fixed").split(",") if v.strip()]
            title = (
                rule.title
                if rule is not None and rule.title
                else f"{rule_id} in {location['package']}"
            )

    # A dict for ``location`` is validated inside the one pydantic call.
    return FindingRecord(
        scanner=scanner,
        rule_id=rule_id,
        category=category,
        title=title,
        severity=severity,
        location=location,
        cwe=cwe,
        fixed_versions=fixed,
        evidence=location.pop("evidence", None),
        extra=extra,
    )


def _location(
    path: Path, raw: dict[str, Any], at: tuple[int, int], bases: list[str]
) -> dict[str, Any]:
    """The first location as Location fields, plus ``evidence`` (the snippet)."""
    locations = raw.get("locations")
    if not locations:
        return {}
    if type(locations) is not list or type(locations[0]) is not dict:
        fail(path, _at(at, ".locations"), "expected an array of location objects")
    physical = locations[0].get("physicalLocation")
    if type(physical) is not dict:
        return {}
    out: dict[str, Any] = {}
    artifact = physical.get("artifactLocation")
    uri = artifact.get("uri") if type(artifact) is dict else None
    if uri:
        if type(uri) is not str:
            fail(
                path,
                _at(at, ".locations[0].physicalLocation.artifactLocation.uri"),
                f"expected a string, found {json_type(uri)}",
            )
        if "%" in uri:
            uri = unquote(uri)
        if uri.startswith(("file://", "./")):
            uri = report_path(uri)
        if bases and uri.startswith("/"):
            for base in bases:
                if uri.startswith(base):
                    uri = uri[len(base) :]
                    break
        out["path"] = uri
    region = physical.get("region")
    if region is None:
        return out
    if type(region) is not dict:
        fail(path, _at(at, ".locations[0].physicalLocation.region"), "expected an object")
    start = region.get("startLine")
    if start is not None:
        if type(start) is not int or start < 0:
            fail(
                path,
                _at(at, ".locations[0].physicalLocation.region.startLine"),
                f"expected a line number, found {quote(start)}",
            )
        out["start_line"] = start or None
    end = region.get("endLine")
    if end is not None:
        if type(end) is not int or end < 0:
            fail(
                path,
                _at(at, ".locations[0].physicalLocation.region.endLine"),
                f"expected a line number, found {quote(end)}",
            )
        out["end_line"] = end or start or None
    else:
        out["end_line"] = out.get("start_line")
    snippet = region.get("snippet")
    if type(snippet) is dict and type(snippet.get("text")) is str:
        out["evidence"] = snippet["text"]
    return out
