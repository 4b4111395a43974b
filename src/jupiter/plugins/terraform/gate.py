"""The Checkov gate, batched per run: one scan before, one after.

Checkov spends most of a scan starting up (~3 s here), so a rescan per
finding is not affordable; a run scans the project once before and once
after its fixes and compares the two by ``(check, file, resource)``:

* ``fixed`` — failed before, passes (or is gone) after;
* ``regressed`` — passed before, fails after (a fix that broke another
  check: the gate fails);
* ``still_failing`` — failed before and after;
* ``new`` — fails after on a resource that did not exist before (an added
  companion must not bring new failures either).

Checkov is run with ``--skip-download`` (no vendor API) and an absolute
``-d`` (a relative one yields wrong paths), as a subprocess with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.errors import InputError
from jupiter.plugins.base import ValidationResult

Key = tuple[str, str, str]
"""``(check id, file path relative to the root, resource address)``."""


@dataclass(frozen=True)
class Scan:
    passed: frozenset[Key]
    failed: frozenset[Key]
    seconds: float = 0.0


@dataclass
class GateResult:
    fixed: set[Key] = field(default_factory=set)
    regressed: set[Key] = field(default_factory=set)
    still_failing: set[Key] = field(default_factory=set)
    new: set[Key] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.regressed and not self.new

    def fix_rate(self) -> float:
        total = len(self.fixed) + len(self.still_failing)
        return len(self.fixed) / total if total else 1.0


def find_checkov(root_hint: Path | None = None) -> Path | None:
    """``$JUPITER_CHECKOV``, else ``.tools/checkov/bin/checkov`` of the
    project (``scripts/tools.sh`` installs it there), else none."""
    env = os.environ.get("JUPITER_CHECKOV")
    if env:
        return Path(env)
    here = root_hint or Path(__file__).resolve().parents[4]
    candidate = here / ".tools" / "checkov" / "bin" / "checkov"
    return candidate if candidate.is_file() else None


def scan(root: Path, checkov: Path, timeout: float = 600.0) -> Scan:
    """Checkov's Terraform results for every ``.tf`` under ``root``."""
    import time

    root = root.resolve()
    argv = [
        str(checkov),
        "--skip-download",
        "--compact",
        "--framework",
        "terraform",
        "-d",
        str(root),
        "-o",
        "json",
    ]
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise InputError(f"Checkov did not finish within {timeout:.0f} s on {root}") from None
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise InputError(
            f"Checkov failed on {root} (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace')[-300:]}"
        )
    data = json.loads(proc.stdout or b"[]")
    reports = data if isinstance(data, list) else [data]
    passed: set[Key] = set()
    failed: set[Key] = set()
    for report in reports:
        results = report.get("results") if isinstance(report, dict) else None
        if not isinstance(results, dict):
            continue
        for bucket, into in (("passed_checks", passed), ("failed_checks", failed)):
            for check in results.get(bucket) or []:
                into.add(
                    (
                        str(check["check_id"]),
                        str(check.get("file_path", "")).lstrip("/"),
                        str(check.get("resource", "")),
                    )
                )
    return Scan(frozenset(passed), frozenset(failed), seconds)


def compare(before: Scan, after: Scan) -> GateResult:
    out = GateResult()
    known = before.passed | before.failed
    for key in before.failed:
        (out.still_failing if key in after.failed else out.fixed).add(key)
    for key in after.failed:
        if key in before.passed:
            out.regressed.add(key)
        elif key not in known:
            out.new.add(key)
    return out


class CheckovRunGate:
    """:class:`jupiter.plugins.base.RunGate` for a fix run on a local
    Terraform tree: Checkov once before, once after; the run fails (and is
    rolled back) when a check that passed before fails after, or a resource
    the run added fails one. Without Checkov the verdict is ``skipped``."""

    name = "checkov-rescan"

    def __init__(self, root: Path, checkov: Path | None) -> None:
        self.root, self.checkov = root, checkov
        self._before: Scan | None = None

    def before(self) -> None:
        if self.checkov is not None:
            self._before = scan(self.root, self.checkov)

    def after(self) -> ValidationResult:
        if self.checkov is None or self._before is None:
            return ValidationResult(self.name, "skipped", "Checkov is not installed")
        try:
            result = compare(self._before, scan(self.root, self.checkov))
        except InputError as exc:
            return ValidationResult(self.name, "failed", str(exc))
        if not result.ok:
            broken = sorted(result.regressed | result.new)[:5]
            names = ", ".join(f"{c} on {r} ({f})" for c, f, r in broken)
            return ValidationResult(
                self.name, "failed", f"checks that passed before fail now: {names}"
            )
        return ValidationResult(
            self.name,
            "passed",
            f"{len(result.fixed)} failed checks fixed, none that passed now fails, "
            f"{len(result.still_failing)} still failing",
        )
