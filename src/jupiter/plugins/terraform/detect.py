"""The built-in Terraform detector: every catalog entry with an attribute
path, evaluated on every resource of every ``.tf`` file of a project.

Findings carry the Checkov id of the entry (so they mean what Checkov's
do), the resource address as ``identity`` (stable when edits move lines)
and the entry's id in ``extra``. A file that does not parse, a provider
version that cannot be determined and a value that cannot be judged are
reported as one sentence each (:func:`scan`); the rest goes on.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from functools import cache

from jupiter.catalog import FixEntry, load_catalog
from jupiter.errors import InputError
from jupiter.ingest.checkov import default_severity
from jupiter.models import FindingRecord, Location
from jupiter.plugins.kit import decode_text, project_files
from jupiter.plugins.terraform import CATEGORY
from jupiter.plugins.terraform.exposure import exposures
from jupiter.plugins.terraform.hcl import Resource, TfFile, parse
from jupiter.plugins.terraform.providers import Unknown, Version
from jupiter.plugins.terraform.rules import PROVIDERS, Module, evaluate, judged, select
from jupiter.targets.base import TargetView

SCANNER = "jupiter-terraform"
LOCK = ".terraform.lock.hcl"


def entries() -> list[FixEntry]:
    return load_catalog().select(framework="terraform")


@cache
def by_type() -> dict[str, list[FixEntry]]:
    index: dict[str, list[FixEntry]] = {}
    for entry in entries():
        for kind in entry.resources:
            index.setdefault(kind, []).append(entry)
    return index


def tf_paths(view: TargetView, under: str = "") -> list[str]:
    found = project_files(view, lambda p: p.endswith(".tf") and "/.terraform/" not in f"/{p}")
    if not under:
        return found
    return [p for p in found if p.startswith(under + "/")]


def load_module(
    view: TargetView, directory: str, errors: list[str] | None = None, first: str | None = None
) -> Module:
    """The parsed ``.tf`` files of one directory; files that do not parse
    raise :class:`InputError`, or are listed in ``errors`` when given. With
    ``first``, only that file is read now and the others when needed."""
    prefix = f"{directory}/" if directory else ""

    def read(path: str) -> TfFile:
        return parse(path, decode_text(path, view.read_bytes(path)).encode())

    def rest() -> dict[str, TfFile]:
        files = {}
        for path in tf_paths(view, directory):
            if posixpath.dirname(path) != directory or path == first:
                continue
            try:
                files[path] = read(path)
            except InputError as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
        return files

    lock = None
    if view.stat(prefix + LOCK) is not None:
        lock = decode_text(prefix + LOCK, view.read_bytes(prefix + LOCK))
    if first is not None:
        return Module(directory, {first: read(first)}, lock, rest)
    return Module(directory, rest(), lock)


@dataclass
class ScanResult:
    findings: list[FindingRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def scan(view: TargetView) -> ScanResult:
    result = ScanResult()
    index = by_type()
    dirs = sorted({posixpath.dirname(p) for p in tf_paths(view)})
    for directory in dirs:
        module = load_module(view, directory, result.errors)
        reported: set[str] = set()
        for res in module.resources():
            for rule_id in exposures(res):
                entry = _manual_entry(rule_id, res.type)
                if entry is not None:
                    result.findings.append(_record(rule_id, entry, res, entry.decision or ""))
            candidates = index.get(res.type, [])
            if not candidates:
                continue
            by_rule: dict[str, list[FixEntry]] = {}
            for entry in candidates:
                if judged(entry):
                    by_rule.setdefault(entry.rule_ids()[0], []).append(entry)
            for rule_id, group in by_rule.items():
                chosen, why = select(tuple(group), res, module)
                if why is not None:
                    if why not in reported:
                        reported.add(why)
                        result.errors.append(why)
                    continue
                _note_assumed(module, chosen, reported, result.errors)
                for entry in chosen:
                    verdict = evaluate(entry, res, module)
                    if verdict.state == "pass":
                        continue
                    result.findings.append(_record(rule_id, entry, res, verdict.reason))
                    break
    return result


def _manual_entry(rule_id: str, kind: str) -> FixEntry | None:
    for entry in load_catalog().for_rule(rule_id):
        if entry.framework == "terraform" and kind in entry.resources:
            return entry
    return None


def _note_assumed(
    module: Module, chosen: list[FixEntry], reported: set[str], errors: list[str]
) -> None:
    for entry in chosen:
        if not entry.provider_versions:
            continue
        version = module.version(PROVIDERS.get(entry.provider or "", "aws"))
        if isinstance(version, Version) and version.assumed and version.source not in reported:
            reported.add(version.source)
            errors.append(
                f"{version.source} (assumed major version {version.major}); pin the provider or "
                "commit .terraform.lock.hcl so fixes match the version you deploy with"
            )
        elif isinstance(version, Unknown) and version.reason not in reported:
            reported.add(version.reason)
            errors.append(version.reason)


def _record(rule_id: str, entry: FixEntry, res: Resource, manual: str) -> FindingRecord:
    extra: dict[str, object] = {
        "entry": entry.id,
        "resource": res.address,
        "class": entry.fix_class,
        "check_type": "terraform",
    }
    if manual:
        extra["manual"] = manual
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rule_id,
        category=CATEGORY,
        title=entry.title,
        severity=default_severity(rule_id),
        location=Location(
            path=res.path, start_line=res.block.start_line, end_line=res.block.end_line
        ),
        identity=res.address,
        extra=extra,
    )
