"""The gate every CloudFormation fix passes before it reaches the target.

* the candidate template re-parses and keeps every logical id;
* ``cfn-lint`` reports no error on the candidate that it did not report on
  the original;
* a full Checkov rescan of the template (``--skip-download``, one run per
  version of the file: the original's result is cached by content hash, so
  a chain of fixes costs one run each) shows the target check passing on
  its resource and no check that passed before failing now.

Both tools run on a copy of the file in a private temporary directory, never
in the target. Where a tool is not installed the step says so (``skipped``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path
from typing import Literal

from jupiter.plugins.base import ValidationResult
from jupiter.scratch import scratch

TIMEOUT = 300
_RESULTS: OrderedDict[tuple[str, str, bytes], object] = OrderedDict()
_ORIGINALS: OrderedDict[str, bytes] = OrderedDict()


def remember_original(sha: str, data: bytes) -> None:
    """Keep the bytes a plan was computed from (for the before/after compare)."""
    _ORIGINALS[sha] = data
    _ORIGINALS.move_to_end(sha)
    while len(_ORIGINALS) > 256:
        _ORIGINALS.popitem(last=False)


def original(sha: str) -> bytes | None:
    return _ORIGINALS.get(sha)


def tools() -> tuple[str | None, str | None]:
    """cfn-lint and Checkov for the gate: ``$JUPITER_CFN_LINT`` /
    ``$JUPITER_CHECKOV``, the PATH, or ``./.tools/<tool>/bin``. Setting
    ``JUPITER_CFN_GATE=parse`` keeps only the re-parse checks (each tool run
    costs seconds per fix; a batch job can rescan once at the end instead)."""
    if os.environ.get("JUPITER_CFN_GATE", "").lower() == "parse":
        return None, None
    return (
        find_tool(os.environ.get("JUPITER_CFN_LINT"), "cfn-lint", "cfn-lint"),
        find_tool(os.environ.get("JUPITER_CHECKOV"), "checkov", "checkov"),
    )


def find_tool(explicit: str | None, name: str, binary: str) -> str | None:
    """An explicit path, the PATH, or ``./.tools/<name>/bin/<binary>``."""
    for candidate in (explicit, shutil.which(binary)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    local = Path.cwd() / ".tools" / name / "bin" / binary
    return str(local) if os.access(local, os.X_OK) else None


def _in_tempdir(name: str, data: bytes, argv_for: list[str]) -> subprocess.CompletedProcess[str]:
    with scratch("cfn") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        argv = [a.replace("{file}", str(path)).replace("{dir}", tmp) for a in argv_for]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=tmp
        )


def _cached(key: tuple[str, str, bytes], compute: object) -> object:
    if key in _RESULTS:
        _RESULTS.move_to_end(key)
        return _RESULTS[key]
    value = compute() if callable(compute) else compute
    _RESULTS[key] = value
    while len(_RESULTS) > 128:
        _RESULTS.popitem(last=False)
    return value


def cfn_lint_errors(binary: str, name: str, data: bytes) -> set[str]:
    """cfn-lint's errors (``E`` rules) as ``rule: message`` lines, without
    line numbers (an insertion moves them)."""

    def run() -> set[str]:
        proc = _in_tempdir(name, data, [binary, "--format", "json", "--", "{file}"])
        if proc.returncode not in (0, 2, 4, 6, 8, 10, 12, 14):
            raise RuntimeError(f"cfn-lint failed ({proc.returncode}): {proc.stderr[-500:]}")
        found = json.loads(proc.stdout or "[]")
        return {
            f"{m['Rule']['Id']}: {m['Message']}"
            for m in found
            if str(m.get("Rule", {}).get("Id", "")).startswith("E")
        }

    result = _cached(("cfn-lint", name, data), run)
    assert isinstance(result, set)
    return result


def checkov_results(binary: str, name: str, data: bytes) -> dict[tuple[str, str], str]:
    """(check id, resource) -> PASSED/FAILED for one template."""

    def run() -> dict[tuple[str, str], str]:
        proc = _in_tempdir(
            name,
            data,
            [
                binary,
                "--skip-download",
                "--quiet",
                "-o",
                "json",
                "--framework",
                "cloudformation",
                "-d",
                "{dir}",
            ],
        )
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"checkov failed ({proc.returncode}): {proc.stderr[-500:]}")
        doc = json.loads(proc.stdout or "{}")
        reports = doc if isinstance(doc, list) else [doc]
        out: dict[tuple[str, str], str] = {}
        for report in reports:
            results = report.get("results", {}) if isinstance(report, dict) else {}
            for status, key in (("PASSED", "passed_checks"), ("FAILED", "failed_checks")):
                for check in results.get(key, []):
                    out[(check["check_id"], check["resource"])] = status
        return out

    result = _cached(("checkov", name, data), run)
    assert isinstance(result, dict)
    return result


def gate(
    path: str,
    before: bytes | None,
    after: bytes,
    target: tuple[str, str] | None,
    cfn_lint: str | None,
    checkov: str | None,
) -> list[ValidationResult]:
    out: list[ValidationResult] = []
    if cfn_lint is None:
        out.append(ValidationResult("cfn-lint", "skipped", "cfn-lint is not installed"))
    else:
        try:
            new = cfn_lint_errors(cfn_lint, path, after)
            old = cfn_lint_errors(cfn_lint, path, before) if before is not None else set()
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            out.append(ValidationResult("cfn-lint", "failed", f"{path}: {exc}"))
        else:
            added = sorted(new - old)
            status: Literal["passed", "failed"] = "failed" if added else "passed"
            detail = "; ".join(added[:5]) if added else f"{path}: no new cfn-lint error"
            out.append(ValidationResult("cfn-lint", status, detail))
    if checkov is None:
        out.append(ValidationResult("checkov-rescan", "skipped", "checkov is not installed"))
        return out
    try:
        after_r = checkov_results(checkov, path, after)
        before_r = checkov_results(checkov, path, before) if before is not None else {}
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        out.append(ValidationResult("checkov-rescan", "failed", f"{path}: {exc}"))
        return out
    regressed = sorted(
        f"{ck} on {res}"
        for (ck, res), status in after_r.items()
        if status == "FAILED" and before_r.get((ck, res)) == "PASSED"
    )
    problems = [f"now failing: {', '.join(regressed)}"] if regressed else []
    if target is not None and after_r.get(target) == "FAILED":
        problems.append(f"{target[0]} still fails on {target[1]}")
    if problems:
        out.append(ValidationResult("checkov-rescan", "failed", f"{path}: {'; '.join(problems)}"))
    else:
        out.append(
            ValidationResult(
                "checkov-rescan",
                "passed",
                f"{path}: {len(after_r)} check results, the target check passes and none regressed",
            )
        )
    return out
