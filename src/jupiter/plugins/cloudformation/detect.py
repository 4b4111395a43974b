"""Built-in CloudFormation checks: every ``safe``/``risk`` catalog entry
(and every ``needs_manual`` one whose property is set to an insecure value)
evaluated on every resource of every template of the target.

Findings carry Checkov's rule id (``CKV_AWS_19``) so that a finding ingested
from Checkov and one found here are the same issue; the ``identity`` is the
resource's logical id and the entry id, so fingerprints survive edits that
move lines. Files that do not parse, or that use a tag CloudFormation does not
know, are skipped with one sentence each (:func:`scan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jupiter.errors import InputError
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plugins.cloudformation import CATEGORY
from jupiter.plugins.cloudformation import entries as catalog
from jupiter.plugins.cloudformation.template import Template, looks_like_template, parse
from jupiter.plugins.kit import decode_text, project_files
from jupiter.targets.base import TargetView

SCANNER = "jupiter-cfn"
SUFFIXES = (".yaml", ".yml", ".json", ".template")


def template_paths(view: TargetView) -> list[str]:
    return project_files(view, lambda p: p.lower().endswith(SUFFIXES))


def load(view: TargetView, path: str) -> Template | None:
    """The template at ``path``; ``None`` for a file that is not one."""
    text = decode_text(path, view.read_bytes(path))
    if not looks_like_template(text):
        return None
    return parse(path, text)


@dataclass
class Scan:
    findings: list[FindingRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    templates: int = 0


def check_template(template: Template) -> list[FindingRecord]:
    out = []
    for resource in template.resources:
        for entry in catalog.entries():
            bad = catalog.failing(entry, template, resource)
            if bad is None:
                continue
            rule = entry.checks["checkov"][0]
            out.append(
                FindingRecord(
                    scanner=SCANNER,
                    rule_id=rule,
                    category=CATEGORY,
                    title=f"{entry.title}: {resource.type} {resource.logical_id}",
                    severity=Severity.MEDIUM,
                    evidence=f"{entry.path}: {bad}",
                    location=Location(
                        path=template.path, start_line=resource.line, end_line=resource.last_line
                    ),
                    identity=f"{resource.logical_id}/{entry.id}",
                    extra={
                        "resource": resource.checkov_id,
                        "entry": entry.id,
                        "check_type": "cloudformation",
                    },
                )
            )
    return out


def scan(view: TargetView) -> Scan:
    result = Scan()
    for path in template_paths(view):
        try:
            template = load(view, path)
        except InputError as exc:
            result.errors.append(str(exc))
            continue
        if template is None:
            continue
        result.templates += 1
        result.findings.extend(check_template(template))
    return result
