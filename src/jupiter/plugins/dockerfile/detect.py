"""Built-in Dockerfile checks.

Files checked: ``Dockerfile``, ``Containerfile``, ``Dockerfile.<x>`` and
``<x>.Dockerfile`` anywhere in the target (outside VCS, vendored and
virtualenv directories). A file that does not parse is skipped by
:func:`check`; :func:`scan` returns why, and planning a fix in it raises
:class:`InputError` naming file and line.

=======================  ==========================  ======================================
rule                     Checkov                     passes when
=======================  ==========================  ======================================
DOCKER-ROOT-USER         CKV_DOCKER_3, CKV_DOCKER_8  the final stage (or the stage it
                                                     builds on) ends with a non-root USER
DOCKER-NO-HEALTHCHECK    CKV_DOCKER_2                the final stage has a HEALTHCHECK
DOCKER-ADD               CKV_DOCKER_4                no ADD instruction
DOCKER-IMAGE-LATEST      CKV_DOCKER_7                every FROM pins a tag other than latest
                                                     (or a digest); stages and scratch pass
=======================  ==========================  ======================================

Only the final stage's user matters: earlier stages never run in the image.
Identities: ``final-stage`` (user, healthcheck), ``ADD <args>`` per ADD and
``stage <n>`` per FROM, so fingerprints survive edits that move lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.dockerfile import instructions
from jupiter.plugins.dockerfile.parse import (
    Dockerfile,
    Instruction,
    Stage,
    is_dockerfile,
    parse,
    split_image,
)
from jupiter.plugins.kit import decode_text, project_files
from jupiter.targets.base import TargetView

SCANNER = "jupiter-docker"
ROOT_USER = "DOCKER-ROOT-USER"
NO_HEALTHCHECK = "DOCKER-NO-HEALTHCHECK"
ADD = "DOCKER-ADD"
IMAGE_LATEST = "DOCKER-IMAGE-LATEST"


def _checkov_to_rule() -> dict[str, str]:
    """Checkov check -> built-in rule, from the fix catalog
    (``catalog/dockerfile.yaml``, ``checks.jupiter`` names the rule)."""
    from jupiter.catalog import load_catalog

    return {
        ck: rule
        for entry in load_catalog().select(framework="dockerfile")
        for rule in entry.checks.get("jupiter", [])
        for ck in entry.checks.get("checkov", [])
    }


CHECKOV_TO_RULE = _checkov_to_rule()
_TITLES = {
    ROOT_USER: ("The container runs as root", Severity.HIGH),
    NO_HEALTHCHECK: ("The image has no HEALTHCHECK", Severity.LOW),
    ADD: ("ADD is used where COPY would do", Severity.MEDIUM),
    IMAGE_LATEST: ("The base image has no fixed tag", Severity.MEDIUM),
    **instructions.TITLES,
}
RULE_IDS = frozenset({*_TITLES, *CHECKOV_TO_RULE})
ARCHIVE_SUFFIXES = (
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".gz",
    ".bz2",
    ".xz",
)
ADD_ONLY_FLAGS = ("--checksum", "--keep-git-dir", "--unpack")


def rule_for(rule_id: str) -> str | None:
    """Our rule id for one of ours or a Checkov id that means the same."""
    return rule_id if rule_id in _TITLES else CHECKOV_TO_RULE.get(rule_id)


def dockerfile_paths(view: TargetView) -> list[str]:
    return project_files(view, is_dockerfile)


def load(view: TargetView, path: str) -> Dockerfile:
    """Parse ``path``; InputError naming file and line when it does not parse."""
    return parse_bytes(path, view.read_bytes(path))


def parse_bytes(path: str, raw: bytes) -> Dockerfile:
    return parse(path, decode_text(path, raw))


def user_of(value: str) -> str:
    return value.split(":", 1)[0].strip()


def effective_user(df: Dockerfile) -> tuple[str | None, Instruction | None]:
    """The user the image runs as (``None``: never set, so root) and its USER line."""
    for stage in df.base_chain(df.stages[-1]):
        last = stage.last("USER")
        if last is not None:
            words = last.operands()
            return (user_of(words[0]) if words else None), last
    return None, None


def is_root(user: str | None) -> bool:
    return user is None or user in ("root", "0")


def add_sources(instr: Instruction) -> list[str]:
    operands = instr.operands()
    return operands[:-1] if len(operands) > 1 else []


def add_kind(instr: Instruction) -> str:
    """``local`` when COPY does the same, else why not (``url``, ``archive``, ``flags``)."""
    if any(f.split("=", 1)[0] in ADD_ONLY_FLAGS for f in instr.flags()):
        return "flags"
    for src in add_sources(instr):
        if "://" in src or src.startswith("git@"):
            return "url"
        if src.lower().endswith(ARCHIVE_SUFFIXES):
            return "archive"
    return "local"


def unpinned(stage: Stage, df: Dockerfile) -> bool:
    image = stage.image
    if image.lower() == "scratch" or "$" in image:
        return False
    earlier = df.stage_named(image)
    if earlier is not None and earlier.index < stage.index:
        return False
    _, tag, digest = split_image(image)
    return not digest and tag in ("", "latest")


@dataclass
class Scan:
    findings: list[FindingRecord]
    errors: list[InputError]


def _record(
    df: Dockerfile, rule: str, line: int, identity: str, evidence: str, detail: str = ""
) -> FindingRecord:
    title, severity = _TITLES[rule]
    checkov = sorted(k for k, v in CHECKOV_TO_RULE.items() if v == rule)
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rule,
        category=Category.IAC_DOCKER,
        title=f"{title}{detail} ({df.path})",
        severity=severity,
        evidence=evidence,
        location=Location(path=df.path, start_line=line),
        identity=identity,
        extra={"checkov": checkov},
    )


def check_file(df: Dockerfile) -> list[FindingRecord]:
    out = []
    final = df.stages[-1]
    user, line = effective_user(df)
    if is_root(user):
        where = line if line is not None else final.source
        out.append(
            _record(
                df,
                ROOT_USER,
                where.start_line,
                "final-stage",
                _text(df, where),
                f": USER {user or 'not set'}",
            )
        )
    if not any(s.last("HEALTHCHECK") for s in df.base_chain(final)):
        out.append(
            _record(
                df, NO_HEALTHCHECK, final.source.start_line, "final-stage", _text(df, final.source)
            )
        )
    for instr in df.instructions:
        if instr.keyword == "ADD":
            out.append(
                _record(
                    df, ADD, instr.start_line, f"ADD {' '.join(instr.words())}", _text(df, instr)
                )
            )
    for stage in df.stages:
        if unpinned(stage, df):
            out.append(
                _record(
                    df,
                    IMAGE_LATEST,
                    stage.source.start_line,
                    f"stage {stage.index}",
                    _text(df, stage.source),
                    f": {stage.image}",
                )
            )
    for rule in instructions.FIXERS:
        for instr in instructions.find(df, rule):
            identity = f"{instr.keyword} {' '.join(instr.words())}"
            out.append(_record(df, rule, instr.start_line, identity, _text(df, instr)))
    return out


def _text(df: Dockerfile, instr: Instruction) -> str:
    return "".join(df.lines[instr.start_line - 1 : instr.end_line]).rstrip("\n")


def scan(view: TargetView) -> Scan:
    """All findings, and the Dockerfiles that could not be parsed (skipped)."""
    result = Scan([], [])
    for path in dockerfile_paths(view):
        try:
            df = load(view, path)
        except InputError as exc:
            result.errors.append(exc)
            continue
        result.findings.extend(check_file(df))
    return result


def check(view: TargetView) -> list[FindingRecord]:
    """All findings of every Dockerfile that parses (see :func:`scan`)."""
    return scan(view).findings
