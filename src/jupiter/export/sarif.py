"""Findings and proposed fixes as SARIF 2.1.0: ``jupiter findings export --format sarif``.

Pure functions, no I/O: :class:`jupiter.exporting.Exporting` reads the store
and the targets and hands the facts over.

* **Runs.** One run per tool that found the findings (the finding's primary
  source: the scanner whose rule id the finding carries), and one run,
  ``Jupiter``, for Jupiter's own detectors (every ``jupiter*`` source). Each
  finding is one result, in exactly one run, so a fix is never offered twice.
  A scanner's version is the one its SARIF report named (kept with each
  finding it reported first); other report formats do not name one.
* **Fingerprints.** ``partialFingerprints["jupiterFinding/v1"]`` hashes the
  rule id, the normalised path and the store's own fingerprint (which is the
  scanner-independent identity of the issue, see docs/findings.md): the same
  finding gets the same value in every export and after every re-ingest.
* **Fixes.** :func:`attribute_chain` follows the plans in the order ``jupiter
  fix`` applies them (each planned on what the previous ones leave) and reduces
  them to minimal line-region replacements *of the original files*, each owned
  by one finding. Applying every fix of an export to the original files gives
  byte for byte what ``jupiter fix`` writes. Plans whose edits touch the same
  lines share one fix (on the first of them; the others point to it). A plan
  SARIF cannot carry (a mode change, a command, a generated key, a removal, a
  file that is not UTF-8 text) gets no fix and a note, and so does every plan
  sharing lines with it; so does a fix whose inserted text looks like a secret
  (:mod:`jupiter.redact`), rather than write the secret into the SARIF file.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupiter.errors import InputError
from jupiter.plans import Plan, RunCommand, WriteFile
from jupiter.redact import redact_text

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
JUPITER_TOOL = "Jupiter"
FINGERPRINT_KEY = "jupiterFinding/v1"

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_PASSED = {"fixed", "verified"}
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(text: str) -> list[str]:
    """Lines with their terminators (CR, LF or CRLF: SARIF's line breaks)."""
    return _LINE.findall(text)


# -- replacements ---------------------------------------------------------------
@dataclass(frozen=True)
class Replacement:
    """Original lines ``[start, end)`` (0-based) replaced by ``text``."""

    start: int
    end: int
    text: str


def region(lines: Sequence[str], start: int, end: int) -> dict[str, int]:
    """The SARIF region of original lines ``[start, end)``, terminators
    included; an empty range is the insertion point before line ``start``.
    Lines and columns are 1-based, columns and offsets count code points."""
    offset = sum(len(line) for line in lines[:start])
    length = sum(len(line) for line in lines[start:end])
    if not lines:
        end_line, end_col = 1, 1  # an empty (or new) file: its one empty line
    elif end < len(lines) or lines[-1].endswith(("\n", "\r")):
        end_line, end_col = end + 1, 1  # the start of the next line (maybe the empty last one)
    else:
        end_line, end_col = end, len(_strip_eol(lines[-1])) + 1
    if start == end:
        start_line, start_col = end_line, end_col
    else:
        start_line, start_col = start + 1, 1
    return {
        "startLine": start_line,
        "startColumn": start_col,
        "endLine": end_line,
        "endColumn": end_col,
        "charOffset": offset,
        "charLength": length,
    }


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


def apply_replacements(original: str, replacements: Iterable[Replacement]) -> str:
    """``original`` with ``replacements`` (non-overlapping, original coordinates) made."""
    lines = split_lines(original)
    out: list[str] = []
    at = 0
    for rep in sorted(replacements, key=lambda r: (r.start, r.end)):
        if rep.start < at:
            raise ValueError(f"replacements overlap at line {rep.start + 1}")
        out.extend(lines[at : rep.start])
        out.append(rep.text)
        at = rep.end
    out.extend(lines[at:])
    return "".join(out)


def line_replacements(before: str, after: str) -> list[Replacement]:
    """Minimal line-region replacements turning ``before`` into ``after``."""
    a, b = split_lines(before), split_lines(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [
        Replacement(i1, i2, "".join(b[j1:j2]))
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
        if op != "equal"
    ]


# -- following the chain of plans -----------------------------------------------
@dataclass
class StepInput:
    """One finding's place in the chain ``jupiter fix`` would run."""

    finding_id: int
    plan: Plan | None
    """``None`` when the finding could not be planned."""
    problem: str | None = None


@dataclass
class FixOutcome:
    """What the export says about one finding's fix."""

    finding_id: int
    changes: dict[str, list[Replacement]] = field(default_factory=dict)
    """Path → replacements of the original file (only on a group's owner)."""
    members: list[int] = field(default_factory=list)
    """The findings whose edits this fix carries (owner first)."""
    note: str | None = None
    part_of: int | None = None
    """The finding whose fix carries this one's edits."""
    description: str = ""


@dataclass
class _Line:
    text: str
    orig: int | None  # index in the original file, None for a planned line
    author: int | None  # the finding whose plan wrote the line


class _Groups:
    """Union-find over finding ids: plans that touch the same lines."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, *xs: int) -> None:
        roots = [self.find(x) for x in xs]
        for r in roots[1:]:
            self.parent[r] = roots[0]


def _unexpressible(plan: Plan) -> str | None:
    kinds = []
    for change in plan.changes:
        if isinstance(change, WriteFile):
            if change.mode is not None:
                kinds.append(f"sets the mode of {change.path} to {change.mode:o}")
        elif isinstance(change, RunCommand):
            kinds.append(f"runs a command ({change.description or change.argv[0]})")
        else:
            verb = {
                "chmod": "changes the mode of",
                "remove": "removes",
                "generate-key": "generates a private key at",
                "issue-certificate": "issues a certificate at",
            }.get(change.kind, change.kind)
            kinds.append(f"{verb} {change.path}")
    if not kinds:
        return None
    return (
        "it cannot be written as text replacements: the plan "
        + "; ".join(kinds)
        + " (apply it with `jupiter fix`, or export it with `jupiter script`)"
    )


def attribute_chain(
    originals: dict[str, bytes | None],
    steps: Sequence[StepInput],
    exported: set[int] | None = None,
) -> dict[int, FixOutcome]:
    """Each finding's fix as replacements of the original files.

    ``originals`` holds every path a plan in ``steps`` writes (``None``: the
    file does not exist). The result has an entry for every step. A shared
    fix goes to the first of its findings that is ``exported`` (default: all
    are); when none is, the fix is not offered."""
    order = {s.finding_id: i for i, s in enumerate(steps)}
    out: dict[int, FixOutcome] = {s.finding_id: FixOutcome(s.finding_id) for s in steps}
    groups = _Groups()
    blocked: dict[int, str] = {}  # finding -> why its group gets no fix
    files: dict[str, list[_Line]] = {}
    deleted_by: dict[str, dict[int, int]] = {}  # path -> original line -> finding
    bad_text: dict[str, str] = {}
    for path, data in originals.items():
        try:
            text = "" if data is None else data.decode("utf-8")
        except UnicodeDecodeError:
            bad_text[path] = f"{path} is not UTF-8 text, so SARIF cannot carry an edit of it"
            text = ""
        files[path] = [_Line(t, i, None) for i, t in enumerate(split_lines(text))]
        deleted_by[path] = {}

    titles_of = {s.finding_id: redact_text(s.plan.title) for s in steps if s.plan is not None}
    watchers: list[int] = []
    for step in steps:
        fid, plan = step.finding_id, step.plan
        outcome = out[fid]
        groups.find(fid)
        if plan is None:
            outcome.note = f"no fix: {step.problem or 'it could not be planned'}"
            continue
        if plan.needs_manual:
            outcome.note = f"no automatic fix: {redact_text(plan.needs_manual)}"
            continue
        if not plan.changes:
            outcome.note = "nothing to change once the fixes before it in the chain are applied"
            continue
        why = _unexpressible(plan)
        if why is not None:
            blocked[fid] = why
        if plan.watches_tree:
            watchers.append(fid)
        for change in plan.changes:
            where: str | None = getattr(change, "path", None)
            if isinstance(change, RunCommand):
                for p in change.paths:
                    _touch_all(files.get(p, []), deleted_by.get(p, {}), fid, groups)
                continue
            if where is None or where not in files:
                continue
            if where in bad_text:
                blocked[fid] = bad_text[where]
            if change.kind == "chmod":
                continue  # the bytes stay as they are
            if not isinstance(change, WriteFile):
                # Removed, or made at apply time: the whole file is this plan's.
                _touch_all(files[where], deleted_by[where], fid, groups)
                files[where] = []
                continue
            edited = _apply_write(files[where], deleted_by[where], change.content, fid, groups)
            files[where] = edited

    if watchers:
        # A command that may change any file makes every edit of the chain its own.
        groups.union(*watchers, *(s.finding_id for s in steps if s.plan and s.plan.changes))

    hunks: dict[str, list[tuple[Replacement, set[int]]]] = {}
    for path, lines in files.items():
        data = originals[path]
        orig_lines = [] if data is None or path in bad_text else split_lines(data.decode("utf-8"))
        hunks[path] = _final_hunks(orig_lines, lines, deleted_by[path], groups)
        # The replacements must rebuild exactly the file the chain leaves.
        rebuilt = apply_replacements("".join(orig_lines), [rep for rep, _ in hunks[path]])
        if rebuilt != "".join(ln.text for ln in lines) and hunks[path]:
            for _, who in hunks[path]:
                for fid in who:
                    blocked.setdefault(fid, f"its edits of {path} could not be reproduced exactly")
    _share_blocked_files(hunks, blocked, groups)

    # Assemble each group's fix on its first member.
    members: dict[int, list[int]] = {}
    for step in steps:
        if step.plan is not None and step.plan.changes and not step.plan.needs_manual:
            members.setdefault(groups.find(step.finding_id), []).append(step.finding_id)
    for root, group in members.items():
        group.sort(key=order.__getitem__)
        shown = [m for m in group if exported is None or m in exported]
        owner = shown[0] if shown else group[0]
        reasons = [blocked[m] for m in group if m in blocked]
        changes: dict[str, list[Replacement]] = {}
        for path, found in hunks.items():
            mine = [rep for rep, who in found if groups.find(next(iter(who))) == root]
            if mine:
                changes[path] = mine
        secret = any(redact_text(r.text) != r.text for reps in changes.values() for r in reps)
        secret = secret or any(redact_text(path) != path for path in changes)
        for m in group:
            o = out[m]
            o.members = group
            if m in blocked:
                o.note = f"no fix: {blocked[m]}"
            elif reasons:
                culprit = next(x for x in group if x in blocked)
                o.note = (
                    f"no fix: it changes a file that the fix for finding {culprit} also "
                    f"changes, and SARIF cannot carry that fix ({blocked[culprit]})"
                )
            elif not shown:
                o.note = (
                    "no fix: its edits overlap those of findings this export leaves out "
                    f"({', '.join(str(x) for x in group)}); export without --status to see them"
                )
            elif secret:
                o.note = (
                    "no fix: the change writes a value that looks like a secret, and a SARIF "
                    "file must not carry one; review it with `jupiter plan "
                    f"{owner}` and apply it with `jupiter fix`"
                )
            elif m != owner:
                o.part_of = owner
                o.note = (
                    f"its edits overlap those of finding {owner}: the fix proposed for "
                    f"finding {owner} fixes this finding too"
                )
            elif not changes:
                o.note = "nothing to change once the fixes before it in the chain are applied"
            else:
                o.changes = changes
                titles = [f"{titles_of[x]} (finding {x})" for x in group]
                o.description = "; ".join(titles)
    return out


def _share_blocked_files(
    hunks: dict[str, list[tuple[Replacement, set[int]]]],
    blocked: dict[int, str],
    groups: _Groups,
) -> None:
    """A file that a fix SARIF cannot carry also changes gets no fix at all:
    every fix of that file joins the blocked one, so that each file a SARIF
    fix touches ends up exactly as ``jupiter fix`` leaves it."""
    changed = True
    while changed:
        changed = False
        bad_roots = {groups.find(b) for b in blocked}
        for found in hunks.values():
            roots = {groups.find(next(iter(who))) for _, who in found}
            if roots & bad_roots and len(roots) > 1:
                groups.union(*roots)
                changed = True
                bad_roots = {groups.find(b) for b in blocked}


def _touch_all(lines: list[_Line], deleted: dict[int, int], fid: int, groups: _Groups) -> None:
    authors = {ln.author for ln in lines if ln.author is not None}
    authors |= set(deleted.values())
    groups.union(fid, *authors)
    for ln in lines:
        if ln.orig is not None:
            deleted.setdefault(ln.orig, fid)
            ln.author = fid
    # The whole file is this finding's now: every later edit joins its group.
    for ln in lines:
        ln.orig = None


def _apply_write(
    lines: list[_Line], deleted: dict[int, int], content: str, fid: int, groups: _Groups
) -> list[_Line]:
    new_texts = split_lines(content)
    matcher = difflib.SequenceMatcher(None, [ln.text for ln in lines], new_texts, autojunk=False)
    out: list[_Line] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.extend(lines[i1:i2])
            continue
        for ln in lines[i1:i2]:
            if ln.orig is not None:
                deleted[ln.orig] = fid
            if ln.author is not None:
                groups.union(fid, ln.author)
        out.extend(_Line(t, None, fid) for t in new_texts[j1:j2])
    return out


def _final_hunks(
    orig: list[str], final: list[_Line], deleted: dict[int, int], groups: _Groups
) -> list[tuple[Replacement, set[int]]]:
    """Original → final as replacements between surviving original lines,
    each with the findings involved (unioned into one group)."""
    out: list[tuple[Replacement, set[int]]] = []
    prev = -1  # last surviving original line
    pending: list[_Line] = []

    def close(next_orig: int) -> None:
        start, end = prev + 1, next_orig
        inserted = [ln.text for ln in pending]
        removed = orig[start:end]
        who = {ln.author for ln in pending if ln.author is not None}
        who |= {deleted[i] for i in range(start, end) if i in deleted}
        # Trim what a later plan put back as it was.
        while removed and inserted and removed[0] == inserted[0]:
            removed, inserted, start = removed[1:], inserted[1:], start + 1
        while removed and inserted and removed[-1] == inserted[-1]:
            removed, inserted, end = removed[:-1], inserted[:-1], end - 1
        if (removed or inserted) and who:
            groups.union(*who)
            out.append((Replacement(start, end, "".join(inserted)), who))

    for ln in final:
        if ln.orig is None:
            pending.append(ln)
            continue
        close(ln.orig)
        prev, pending = ln.orig, []
    close(len(orig))
    return out


# -- the SARIF log ----------------------------------------------------------------
@dataclass
class ExportFinding:
    """A stored finding as exported (texts already redacted)."""

    data: dict[str, Any]
    """:func:`jupiter.store.findings.finding_to_json`."""
    root_uri: str | None = None
    """``file:///...`` of the asset's root, when it is a local directory."""


def is_jupiter(scanner: str) -> bool:
    return scanner == "jupiter" or scanner.startswith("jupiter-")


def primary_tool(finding: dict[str, Any]) -> tuple[str, str]:
    """The tool whose run holds the finding, and that tool's rule id."""
    sources = finding["sources"]
    chosen = next((s for s in sources if s["rule_id"] == finding["rule_id"]), None)
    if chosen is None and sources:
        chosen = sources[0]
    if chosen is None:
        return JUPITER_TOOL, finding["rule_id"]
    name = JUPITER_TOOL if is_jupiter(chosen["scanner"]) else chosen["scanner"]
    return name, chosen["rule_id"]


def normalised_path(path: str | None) -> str:
    if not path:
        return ""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def partial_fingerprint(finding: dict[str, Any]) -> str:
    """Stable across exports and re-ingests: rule, normalised path and the
    store's fingerprint of the issue."""
    body = "\x1f".join(
        (
            "v1",
            finding["rule_id"],
            normalised_path(finding["location"]["path"]),
            finding["fingerprint"],
        )
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _artifact(path: str, asset: str) -> dict[str, str]:
    return {"uri": quote(normalised_path(path), safe="/"), "uriBaseId": asset}


def _result(
    finding: dict[str, Any],
    rule_id: str,
    rule_index: int,
    outcome: FixOutcome | None,
    originals: dict[tuple[str, str], list[str]],
) -> dict[str, Any]:
    loc = finding["location"]
    asset = finding["asset"]
    status = finding["status"]
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "kind": "pass" if status in _PASSED else "fail",
        "level": "none" if status in _PASSED else _LEVEL.get(finding["severity"], "warning"),
        "message": {"text": finding["title"]},
    }
    if loc["path"]:
        physical: dict[str, Any] = {"artifactLocation": _artifact(loc["path"], asset)}
        if loc["start_line"]:
            reg: dict[str, int] = {"startLine": loc["start_line"]}
            if loc["end_line"] and loc["end_line"] >= loc["start_line"]:
                reg["endLine"] = loc["end_line"]
            physical["region"] = reg
        result["locations"] = [{"physicalLocation": physical}]
    if loc["package"]:
        name = loc["package"] + (f"@{loc['version']}" if loc["version"] else "")
        result.setdefault("locations", [{}])[0]["logicalLocations"] = [
            {"name": name, "kind": "package"}
        ]
    result["partialFingerprints"] = {FINGERPRINT_KEY: partial_fingerprint(finding)}
    if status == "excepted":
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": "a Jupiter exception"}
        ]
    props: dict[str, Any] = {
        "jupiterFindingId": finding["id"],
        "asset": asset,
        "status": status,
        "severity": finding["severity"],
        "priority": finding["priority"],
        "category": finding["category"],
        "sources": [{"scanner": s["scanner"], "ruleId": s["rule_id"]} for s in finding["sources"]],
    }
    for key, name in (
        ("evidence", "evidence"),
        ("cvss_score", "cvssScore"),
        ("cvss_vector", "cvssVector"),
    ):
        if finding.get(key) is not None:
            props[name] = finding[key]
    for key, name in (("aliases", "aliases"), ("cwe", "cwe"), ("fixed_versions", "fixedVersions")):
        if finding.get(key):
            props[name] = finding[key]
    if outcome is not None:
        if outcome.note:
            props["fixNote"] = outcome.note
        if outcome.part_of is not None:
            props["fixedByFixOf"] = outcome.part_of
        if outcome.changes:
            result["fixes"] = [_fix(outcome, asset, originals)]
    result["properties"] = props
    return result


def _fix(
    outcome: FixOutcome, asset: str, originals: dict[tuple[str, str], list[str]]
) -> dict[str, Any]:
    changes = []
    for path in sorted(outcome.changes):
        lines = originals[(asset, path)]
        changes.append(
            {
                "artifactLocation": _artifact(path, asset),
                "replacements": [
                    {
                        "deletedRegion": region(lines, rep.start, rep.end),
                        "insertedContent": {"text": rep.text},
                    }
                    for rep in outcome.changes[path]
                ],
            }
        )
    text = outcome.description or f"the fix Jupiter plans for finding {outcome.finding_id}"
    return {"description": {"text": text}, "artifactChanges": changes}


def build_log(
    findings: Sequence[ExportFinding],
    fixes: dict[int, FixOutcome],
    originals: dict[tuple[str, str], list[str]],
    version: str,
) -> dict[str, Any]:
    """The SARIF 2.1.0 log: one run per tool, Jupiter's own run last.

    ``originals`` maps (asset, path) to the original lines of each file a fix
    changes (regions are computed on them)."""
    by_tool: dict[str, list[tuple[ExportFinding, str]]] = {}
    for f in findings:
        tool, rule_id = primary_tool(f.data)
        by_tool.setdefault(tool, []).append((f, rule_id))
    names = sorted(t for t in by_tool if t != JUPITER_TOOL)
    if JUPITER_TOOL in by_tool:
        names.append(JUPITER_TOOL)
    runs = []
    for tool in names:
        rules: dict[str, dict[str, Any]] = {}
        results = []
        bases: dict[str, dict[str, str]] = {}
        for f, rule_id in by_tool[tool]:
            data = f.data
            if rule_id not in rules:
                rules[rule_id] = _rule(rule_id, data)
            index = list(rules).index(rule_id)
            results.append(_result(data, rule_id, index, fixes.get(data["id"]), originals))
            if f.root_uri:
                bases[data["asset"]] = {"uri": f.root_uri}
        driver: dict[str, Any] = {"name": tool}
        if tool == JUPITER_TOOL:
            driver["version"] = version
            driver["semanticVersion"] = version
        else:
            seen = sorted({v for f, _ in by_tool[tool] if (v := f.data.get("tool_version"))})
            if len(seen) == 1:
                driver["version"] = seen[0]
            elif seen:  # reports of several versions were ingested
                driver["properties"] = {"versions": seen}
        driver["rules"] = list(rules.values())
        run: dict[str, Any] = {"tool": {"driver": driver}, "columnKind": "unicodeCodePoints"}
        if bases:
            run["originalUriBaseIds"] = dict(sorted(bases.items()))
        run["results"] = results
        runs.append(run)
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": runs}


def _rule(rule_id: str, finding: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "shortDescription": {"text": finding["title"]},
        "defaultConfiguration": {"level": _LEVEL.get(finding["severity"], "warning")},
    }
    props: dict[str, Any] = {"tags": ["security", finding["category"], *finding["cwe"]]}
    if finding.get("cvss_score") is not None:
        props["security-severity"] = f"{finding['cvss_score']:.1f}"
    rule["properties"] = props
    return rule


# -- writing ------------------------------------------------------------------------
def dumps(log: dict[str, Any]) -> str:
    """The log as indented JSON text (UTF-8, keys in build order), newline-terminated."""
    import orjson

    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"


def check_writable(path: Path) -> None:
    """Refuse before any work when ``path`` cannot be written (InputError)."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a directory; give a file name")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"cannot write {path}: permission denied; choose a writable path")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder
    and a rename: a reader sees the old file or the whole new one, and a
    failure leaves no partial file behind (InputError, one sentence)."""
    check_writable(path)
    try:
        mode = path.stat().st_mode & 0o777  # an existing file keeps its mode
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable path"
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
