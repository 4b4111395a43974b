"""Where nftables rulesets are in a repository (see :mod:`jupiter.plugins.configs`).

A target with ``etc/nftables.conf``, or with an ``etc`` folder and no
ruleset anywhere else, mirrors a host and is checked as before. In any
other target a file is taken when it is named ``nftables.conf`` or
``*.nft``, or a Dockerfile copies it to ``/etc/nftables.conf``, and it
parses as an nftables ruleset with at least one table or include. A file
another taken ruleset includes is read as part of it (a relative include
resolves against the including file's folder, which stands for ``/etc``,
nft's default include path); an absolute include names a host file and is
reported, not followed. Templates (``*.j2``) are reported, not edited.

Each taken ruleset with an input filter chain is checked on its own; a
taken ``nftables.conf`` whose chains (its own and its includes') filter no
incoming traffic is ``FW-NO-RULESET``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from jupiter.errors import InputError, PathEscapeError
from jupiter.plugins import configs
from jupiter.plugins.configs import TakenFile
from jupiter.plugins.nftables.parse import Ruleset, parse_ruleset
from jupiter.targets.base import TargetView, normalise_relpath

DOMAIN = "nftables"
HOST_RULESET = "etc/nftables.conf"
IMAGE_RULESET = "/etc/nftables.conf"


@dataclass(frozen=True)
class Unit:
    """One ruleset file to check, why it was taken, and whether a missing
    input chain is a finding (the boot ruleset ``nftables.conf``)."""

    path: str
    evidence: str
    boot: bool


@dataclass
class Survey:
    host: bool = False
    units: list[Unit] = field(default_factory=list)
    files: list[TakenFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _named(path: str) -> bool:
    name = posixpath.basename(configs.untemplated(path))
    return name == "nftables.conf" or name.endswith(".nft")


def _include_target(path: str, arg: str) -> str:
    if arg.startswith("/"):
        raise PathEscapeError(
            f"{arg} is an absolute host path outside the repository; Jupiter does not read "
            "it from this machine"
        )
    return normalise_relpath(posixpath.normpath(posixpath.join(posixpath.dirname(path), arg)))


def survey(view: TargetView) -> Survey:
    if view.stat(HOST_RULESET) is not None:
        return Survey(host=True)
    reasons: dict[str, str] = {}
    index = configs.RepoIndex(view)
    for copy in configs.image_copies(index):
        if copy.dest == IMAGE_RULESET:
            reasons[copy.source] = copy.evidence("nftables")
    copied = set(reasons)
    out = Survey()
    for path in configs.candidates(index, _named):
        if configs.is_template(path):
            why = f"named {posixpath.basename(path)}, a Jinja template: not checked or edited"
            out.files.append(TakenFile(path, DOMAIN, why, "ambiguous", "template"))
            continue
        reasons.setdefault(path, f"named {posixpath.basename(path)}")
    if not reasons and view.stat("etc") is not None:
        return Survey(host=True)  # a host without a ruleset: FW-NO-RULESET as always
    parsed: dict[str, Ruleset] = {}
    for path in sorted(reasons):
        try:
            text = configs.read_config_text(view, path)
            ruleset = parse_ruleset(text, path)
        except InputError as exc:
            out.files.append(TakenFile(path, DOMAIN, f"{reasons[path]}, but {exc}", "refused"))
            out.problems.append(f"{path}: not taken: {exc}")
            continue
        if not ruleset.tables and not ruleset.includes:
            why = f"{reasons[path]}, but it holds no nftables table; not edited"
            out.files.append(TakenFile(path, DOMAIN, why, "refused"))
            out.problems.append(f"{path}: {why}")
            continue
        parsed[path] = ruleset
    included: dict[str, str] = {}
    edges: dict[str, list[tuple[int, str, str]]] = {}
    for path, ruleset in parsed.items():
        for line, arg in ruleset.includes:
            try:
                pattern = _include_target(path, arg.strip('"'))
            except PathEscapeError as exc:
                out.problems.append(f"{path} line {line}: include {arg} not followed: {exc}")
                continue
            for inc in view.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]:
                if inc in parsed:
                    edges.setdefault(path, []).append((line, arg, inc))
    for path, line, arg in _loops(edges):
        out.problems.append(
            f"{path} line {line}: include {arg} loops back to a file that includes it; "
            "nft refuses the ruleset (remove the circular include)"
        )
    looping = {p for p, _, _ in _loops(edges)}
    for path, targets in edges.items():
        for _, _, inc in targets:
            if inc != path and path not in looping:
                included.setdefault(inc, path)
    for path, ruleset in parsed.items():
        evidence = f"{reasons[path]} and parses as an nftables ruleset"
        if path in included:
            out.files.append(
                TakenFile(path, DOMAIN, f"{evidence}; included by {included[path]}", role="include")
            )
            if not ruleset.input_chains():
                continue
        boot = posixpath.basename(path) == "nftables.conf" or path in copied
        chains = ruleset.input_chains() or _included_chains(path, parsed, included)
        if not chains and not boot:
            evidence += "; no input filter chain, so nothing to judge"
        if path not in included:
            out.files.append(TakenFile(path, DOMAIN, evidence))
        if ruleset.input_chains() or (boot and not chains):
            out.units.append(Unit(path, evidence, boot))
    return out


def _included_chains(path: str, parsed: dict[str, Ruleset], included: dict[str, str]) -> bool:
    return any(by == path and parsed[inc].input_chains() for inc, by in included.items())


def _loops(edges: dict[str, list[tuple[int, str, str]]]) -> list[tuple[str, int, str]]:
    """(file, line, include) of every include that closes a cycle."""
    found: list[tuple[str, int, str]] = []

    def visit(path: str, stack: tuple[str, ...]) -> None:
        for line, arg, inc in edges.get(path, []):
            if inc in stack or inc == path:
                found.append((path, line, arg))
            elif len(stack) < 16:
                visit(inc, (*stack, inc))

    for start in edges:
        visit(start, (start,))
    return sorted(set(found))
