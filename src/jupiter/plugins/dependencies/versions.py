"""Choosing the version to upgrade to, classifying the bump, editing the pin.

Pure functions used by the ``python-dependencies`` remediator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.version import InvalidVersion, Version

from jupiter.advisories import Advisory, parse_version
from jupiter.plans import ChangeKind
from jupiter.plugins.dependencies.parse import PinnedDependency


def external_fix_ok(candidate: Version, fixed_versions: Sequence[str]) -> bool:
    """Whether ``candidate`` satisfies a scanner's bare ``fixed_versions`` list.

    Without ranges the list only says "fixed in 3.2.1, 4.0.5": a candidate is
    fixed when it is at least the highest fix, or at least a fix of its own
    major.minor line (4.0.0 is *not* fixed by 3.2.1 in that example).
    """
    fixes = [v for v in (parse_version(f) for f in fixed_versions) if v is not None]
    if not fixes:
        return True
    if candidate >= max(fixes):
        return True
    line = candidate.release[:2]
    return any(f <= candidate and f.release[:2] == line for f in fixes)


def choose_fix_version(
    current: str,
    advisories: Sequence[Advisory],
    external_fixed: Sequence[str] = (),
) -> str | None:
    """The lowest version above ``current`` that no advisory affects.

    ``advisories`` are *all* known advisories for the package (not only those
    affecting ``current``), so the choice never moves onto a version with a
    different known vulnerability; ``external_fixed`` is a scanner's own fix
    list for the finding (pip-audit, Trivy). Candidates are the fixed versions
    named anywhere; because the lowest one wins, a fix on the current release
    line (3.2.0 → 3.2.5) is preferred to a later line (5.x). Pre-releases are
    only chosen when ``current`` is one. ``None`` when no known release fixes
    everything.
    """
    base = parse_version(current)
    if base is None:
        return None
    raw = {v for a in advisories for v in a.fixed_versions} | set(external_fixed)
    candidates: list[tuple[Version, str]] = []
    for text in raw:
        parsed = parse_version(text)
        if parsed is None or parsed <= base:
            continue
        if parsed.is_prerelease and not base.is_prerelease:
            continue
        candidates.append((parsed, text))
    for parsed, text in sorted(candidates):
        if not external_fix_ok(parsed, external_fixed):
            continue
        if not any(a.affects(text) for a in advisories):
            return text
    return None


def bump_kind(current: str, target: str) -> ChangeKind:
    """``dependency_patch``, ``dependency_minor`` or ``dependency_major`` by release numbers."""
    try:
        old, new = Version(current).release, Version(target).release
    except InvalidVersion:
        return "dependency_major"
    old = old + (0,) * (3 - len(old))
    new = new + (0,) * (3 - len(new))
    if old[0] != new[0]:
        return "dependency_major"
    if old[1] != new[1]:
        return "dependency_minor"
    return "dependency_patch"


_KIND_RANK: dict[ChangeKind, int] = {
    "dependency_patch": 0,
    "dependency_minor": 1,
    "dependency_major": 2,
}


def widest(kinds: Sequence[ChangeKind]) -> ChangeKind:
    return max(kinds, key=lambda k: _KIND_RANK.get(k, 3))


def edit_pin(lines: list[str], dep: PinnedDependency, target: str) -> bool:
    """Rewrite ``dep``'s version to ``target`` in ``lines`` (keepends) in place.

    Only the version characters change, so comments, extras, markers,
    spacing and quoting stay as they were. False if the pin was not found on
    its lines (the file changed shape; the caller asks for a manual fix).
    """
    if not dep.line:
        return False
    version = re.escape(dep.version)
    if dep.kind == "poetry":
        pattern = re.compile(r"""(["'](?:==)?\s*)""" + version + r"""(?=["'])""")
    else:
        pattern = re.compile(r"(===?\s*)" + version + r"(?![\w.+!-])")
    for index in range(dep.line - 1, min(dep.end_line, len(lines))):
        new, count = pattern.subn(lambda m: m.group(1) + target, lines[index], count=1)
        if count:
            lines[index] = new
            return True
    return False
