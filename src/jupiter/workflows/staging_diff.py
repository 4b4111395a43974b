"""The staging test's ``dry_run_matches`` check: the diff a reviewer saw
before the apply, compared file by file with a diff rebuilt from what the
apply really changed (the step's "before" and "after" snapshots).

A plan's diff is a concatenation of per-file sections: ``diff -u`` text
(:func:`jupiter.plans.unified_diff`) for content, and a two-line
``--- a/P mode 0644`` / ``+++ b/P mode 0600`` header for a mode change
(the permissions remediator). Both sides are cut into sections by path
(hunks are consumed by their line counts, so a removed line that itself
starts with ``--`` cannot be mistaken for a header) and compared per path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from jupiter.plans import unified_diff
from jupiter.snapshots import ManifestEntry

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
# Changes whose content is made at apply time (a private key, a certificate):
# the plan cannot show their bytes, so they are compared by existence only.
GENERATED_KINDS = frozenset({"generate-key", "issue-certificate"})


@dataclass
class DiffComparison:
    """Per path: whether the previewed section equals the applied one."""

    matched: list[str] = field(default_factory=list)
    mismatched: dict[str, dict[str, str]] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def _header_path(line: str, paths: Iterable[str]) -> str | None:
    """The path a ``--- a/P`` or ``+++ b/P`` header names (longest known path
    first, so ``a/b`` is not taken for ``a/b c``); ``None`` for /dev/null."""
    body = line[4:]
    if body.startswith("/dev/null"):
        return None
    for prefix in ("a/", "b/"):
        if body.startswith(prefix):
            rest = body[len(prefix) :]
            for p in sorted(paths, key=len, reverse=True):
                if rest == p or rest.startswith(p + " ") or rest.startswith(p + "\t"):
                    return p
            return rest.split(" ", 1)[0].rstrip("\n")
    return body.rstrip("\n")


def split_sections(diff: str, paths: Iterable[str] = ()) -> dict[str, str]:
    """``{path: its section of the diff}``; text outside any section is kept
    under the key ``""`` so a difference there is still seen."""
    known = list(paths)
    lines = diff.splitlines(keepends=True)
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            path = _header_path(lines[i + 1], known) or _header_path(line, known) or ""
            chunk = [line, lines[i + 1]]
            i += 2
            while i < len(lines):
                m = _HUNK.match(lines[i])
                if m is None:
                    break
                old = int(m.group(1)) if m.group(1) is not None else 1
                new = int(m.group(2)) if m.group(2) is not None else 1
                chunk.append(lines[i])
                i += 1
                while i < len(lines) and (old > 0 or new > 0 or lines[i].startswith("\\")):
                    body = lines[i]
                    if body.startswith("\\"):
                        pass
                    elif body.startswith("-"):
                        old -= 1
                    elif body.startswith("+"):
                        new -= 1
                    else:
                        old -= 1
                        new -= 1
                    chunk.append(body)
                    i += 1
            out[path] = out.get(path, "") + "".join(chunk)
            continue
        out[""] = out.get("", "") + line
        i += 1
    return out


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def applied_section(
    before: ManifestEntry, after: ManifestEntry | None, read: Callable[[str], bytes]
) -> str:
    """The diff section for one path, rebuilt from its snapshots (``read``
    returns a blob's bytes by sha256)."""
    path = before.path
    old = read(before.sha256) if before.existed and before.sha256 else None
    new = None
    if after is not None and after.existed and after.sha256:
        new = read(after.sha256)
    if old != new:
        return unified_diff(path, _text(old), _text(new))
    if after is None or not (before.existed and after.existed) or before.mode == after.mode:
        return ""
    owner = ""
    if (before.uid, before.gid) != (after.uid, after.gid):
        owner = f" owner {before.uid}:{before.gid} -> {after.uid}:{after.gid}"
    return (
        f"--- a/{path} mode {before.mode or 0:04o}\n"
        f"+++ b/{path} mode {after.mode or 0:04o}{owner}\n"
    )


def compare(
    previewed: str,
    before: list[ManifestEntry],
    after: list[ManifestEntry],
    read: Callable[[str], bytes],
    generated: Iterable[str] = (),
    written: Mapping[str, str] | None = None,
) -> DiffComparison:
    """The previewed diff of one step against what its apply changed.

    ``written`` maps a path the plan writes to the sha256 of the content it
    writes: a plan whose diff does not show that path (some plans carry no
    diff) is then held to that content instead."""
    gen = set(generated)
    after_by = {e.path: e for e in after}
    paths = [e.path for e in before]
    shown = split_sections(previewed, paths)
    result = DiffComparison(generated=sorted(gen))
    applied: dict[str, str] = {}
    for entry in before:
        if entry.path in gen:
            continue
        section = applied_section(entry, after_by.get(entry.path), read)
        if section:
            applied[entry.path] = section
    for path in sorted((set(shown) | set(applied)) - gen):
        want, got = shown.get(path, ""), applied.get(path, "")
        landed = after_by.get(path)
        if (
            not want
            and path in (written or {})
            and landed is not None
            and landed.sha256 == (written or {})[path]
        ):
            result.matched.append(f"{path} (content as planned)")
            continue
        if want == got:
            result.matched.append(path or "(text outside any file)")
        else:
            result.mismatched[path or "(text outside any file)"] = {
                "previewed": want[:2000],
                "applied": got[:2000],
            }
    return result


def compare_declared(
    declared: Iterable[str],
    before: list[ManifestEntry],
    after: list[ManifestEntry],
    read: Callable[[str], bytes],
) -> DiffComparison:
    """For a command (a custom script), whose diff is a description: every
    path it changed must be one it declared."""
    allowed = set(declared)
    after_by = {e.path: e for e in after}
    result = DiffComparison()
    for entry in before:
        current = after_by.get(entry.path)
        if current is None and entry.path not in allowed:
            continue  # a path of the whole-tree snapshot that it left alone
        if not applied_section(entry, current, read):
            continue
        if entry.path in allowed:
            result.matched.append(entry.path)
        else:
            result.mismatched[entry.path] = {"previewed": "(not declared)", "applied": "changed"}
    return result
