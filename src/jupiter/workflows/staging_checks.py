"""The staging test's checks, each a small function turning what the fix
machinery did (the outcome of :meth:`jupiter.engine.Engine.fix`, its stored
steps and snapshots) into one :class:`CheckResult` with evidence.

The orchestration (which target, in which order) is in
:mod:`jupiter.workflows.staging`; the rollback rehearsal in
:mod:`jupiter.workflows.staging_rehearsal`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from jupiter.errors import InputError, JupiterError
from jupiter.redact import MASK, redact_text
from jupiter.run_manifest import manifest_entry
from jupiter.snapshots import BlobStore, ManifestEntry
from jupiter.store import findings as finding_repo
from jupiter.store.tables import RunStepRow, SnapshotEntryRow
from jupiter.targets.base import Target
from jupiter.workflows.staging_diff import GENERATED_KINDS, compare, compare_declared

if TYPE_CHECKING:
    from jupiter.engine import Engine

Outcome = Literal["passed", "failed", "skipped"]
# Steps the fix applied and verified; the ones a person must do are not ours.
APPLIED = "verified"
NOT_APPLIED_OK = frozenset({"already_fixed", "needs_manual"})
TAIL = 2000


@dataclass
class CheckResult:
    """One named check on one target."""

    name: str
    target: str
    outcome: Outcome
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "outcome": self.outcome,
            "evidence": self.evidence,
            "details": self.details,
            "duration": round(self.duration, 3),
        }


def applied_steps(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in outcome.get("steps", []) if s.get("status") == APPLIED]


def validator_check(target: str, outcome: dict[str, Any]) -> CheckResult:
    """The remediators' own validators (``sshd -t``, ``nft -c``, a
    PostgreSQL start, a compile) as the fix ran them on the candidate, plus
    any whole-target run gate."""
    ran: list[dict[str, Any]] = []
    failed: list[str] = []
    for step in outcome.get("steps", []):
        for v in step.get("validations", []):
            ran.append({"finding": step.get("finding"), "rule_id": step.get("rule_id"), **v})
            if v.get("status") == "failed":
                failed.append(f"{step.get('rule_id')}: {v.get('validator')}: {v.get('detail')}")
        detail = str(step.get("detail", ""))
        rejected = step.get("status") == "failed" and detail.startswith(
            ("validation failed", "validation could not run")
        )
        if rejected and not step.get("validations"):
            failed.append(f"{step.get('rule_id')}: {detail}")
    for gate in outcome.get("gates", []) or []:
        ran.append({"gate": True, **gate})
        if gate.get("status") == "failed":
            failed.append(f"run gate {gate.get('validator')}: {gate.get('detail')}")
    details = {"validations": ran}
    if failed:
        return CheckResult("validator", target, "failed", "; ".join(failed)[:TAIL], details)
    passed = [v for v in ran if v.get("status") == "passed"]
    if not passed:
        skipped = sorted({f"{v.get('validator')}: {v.get('detail')}" for v in ran})
        why = "validators skipped: " + "; ".join(skipped) if skipped else ""
        return CheckResult(
            "validator", target, "skipped", why or "no validator applies to these changes", details
        )
    names = sorted({str(v.get("validator")) for v in passed})
    return CheckResult(
        "validator",
        target,
        "passed",
        f"{len(passed)} validation(s) passed: {', '.join(names)}",
        details,
    )


def _step_rows(engine: Engine, step_ids: list[int]) -> dict[int, RunStepRow]:
    with engine.db.reading() as s:
        rows = s.scalars(select(RunStepRow).where(RunStepRow.id.in_(step_ids)))
        return {r.id: r for r in rows}


def _snapshots(engine: Engine, step_id: int) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    with engine.db.reading() as s:
        rows = list(s.scalars(select(SnapshotEntryRow).where(SnapshotEntryRow.step_id == step_id)))
    before = [manifest_entry(r) for r in rows if r.phase == "before"]
    after = [manifest_entry(r) for r in rows if r.phase == "after"]
    return before, after


def generated_paths(plan: dict[str, Any]) -> list[str]:
    """Paths whose bytes are made at apply time (keys, certificates)."""
    return [
        str(c["path"])
        for c in plan.get("changes", [])
        if isinstance(c, dict) and c.get("kind") in GENERATED_KINDS
    ]


def written_hashes(plan: dict[str, Any]) -> dict[str, str]:
    """sha256 of the content each ``write`` change puts at its path (not for
    content the stored plan shows redacted)."""
    out: dict[str, str] = {}
    for c in plan.get("changes", []):
        if not isinstance(c, dict) or c.get("kind") != "write":
            continue
        content = c.get("content")
        if isinstance(content, str) and MASK not in content:
            out[str(c["path"])] = hashlib.sha256(content.encode()).hexdigest()
    return out


def command_paths(plan: dict[str, Any]) -> list[str] | None:
    """The paths a plan with a command declares (``None``: no command)."""
    changes = [c for c in plan.get("changes", []) if isinstance(c, dict)]
    if not any(c.get("kind") == "command" for c in changes):
        return None
    out: list[str] = []
    for c in changes:
        out.extend(c.get("paths", []) if c.get("kind") == "command" else [c.get("path", "")])
    return [p for p in out if p]


def dry_run_check(
    engine: Engine, target: str, preview: list[dict[str, Any]], outcome: dict[str, Any]
) -> CheckResult:
    """Each applied step's previewed diff equals the diff rebuilt from its
    before/after snapshots."""
    steps = applied_steps(outcome)
    if not steps:
        return CheckResult("dry_run_matches", target, "skipped", "nothing was applied")
    shown = {(p.get("finding"), p.get("rule_id")): p for p in preview}
    rows = _step_rows(engine, [int(s["step"]) for s in steps])
    blobs = BlobStore(engine.workspace.blobs)
    per_step: list[dict[str, Any]] = []
    bad: list[str] = []
    for step in steps:
        seen = shown.get((step.get("finding"), step.get("rule_id")))
        if seen is None:
            bad.append(f"{step['rule_id']}: applied without having been previewed")
            per_step.append({"step": step["step"], "rule_id": step["rule_id"], "previewed": False})
            continue
        before, after = _snapshots(engine, int(step["step"]))
        plan = rows[int(step["step"])].plan
        declared = command_paths(plan)
        if declared is not None:
            result = compare_declared(declared, before, after, blobs.get)
        else:
            result = compare(
                str(seen.get("diff", "")),
                before,
                after,
                blobs.get,
                generated_paths(plan),
                written_hashes(plan),
            )
        per_step.append(
            {
                "step": step["step"],
                "rule_id": step["rule_id"],
                "previewed_plan": seen.get("plan_hash"),
                "matched": result.matched,
                "generated": result.generated,
                "mismatched": result.mismatched,
            }
        )
        bad.extend(f"{step['rule_id']}: {p}" for p in result.mismatched)
    details = {"steps": per_step}
    if bad:
        return CheckResult(
            "dry_run_matches",
            target,
            "failed",
            "the applied change differs from the previewed diff on " + ", ".join(bad),
            details,
        )
    files = sum(len(p.get("matched", [])) for p in per_step)
    return CheckResult(
        "dry_run_matches",
        target,
        "passed",
        f"{len(steps)} step(s), {files} file section(s) applied exactly as previewed",
        details,
    )


def finding_gone_check(
    engine: Engine,
    target_label: str,
    target: Target,
    outcome: dict[str, Any],
    raw_params: list[str],
) -> CheckResult:
    """Re-detection of every finding the plan fixes (``is_fixed``)."""
    from jupiter.runs import params_for, parse_params

    params = parse_params(engine.registry, raw_params)
    gone: list[dict[str, Any]] = []
    still: list[str] = []
    left: list[dict[str, Any]] = []
    for step in outcome.get("steps", []):
        status = step.get("status")
        fid = step.get("finding")
        if status in NOT_APPLIED_OK and status != "already_fixed":
            left.append({"finding": fid, "rule_id": step.get("rule_id"), "status": status})
            continue
        if status not in (APPLIED, "already_fixed"):
            still.append(f"{step.get('rule_id')} (finding {fid}: {status}, {step.get('detail')})")
            continue
        if fid is None:
            continue
        with engine.db.reading() as s:
            record = finding_repo.row_to_record(finding_repo.get_finding(s, str(fid)))
        plugin = engine.registry.get(str(step.get("remediator")))
        fixed = plugin.is_fixed(record, target, params_for(plugin, params))
        entry = {"finding": fid, "rule_id": record.rule_id, "path": record.location.path}
        if fixed:
            gone.append(entry)
        else:
            still.append(f"{record.rule_id} (finding {fid}) is still detected")
    details = {"gone": gone, "not_applied": left}
    if still:
        return CheckResult("finding_gone", target_label, "failed", "; ".join(still)[:TAIL], details)
    if not gone:
        return CheckResult(
            "finding_gone", target_label, "skipped", "the plan fixes no finding here", details
        )
    return CheckResult(
        "finding_gone",
        target_label,
        "passed",
        f"{len(gone)} finding(s) no longer detected: "
        + ", ".join(sorted({g["rule_id"] for g in gone})),
        details,
    )


def detect_all(
    engine: Engine, target: Target, asset_id: str, raw_params: list[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every built-in detector over ``target`` (stores nothing):
    ``{fingerprint: what}`` and the detectors' problems."""
    from jupiter.runs import params_for, parse_params

    params = parse_params(engine.registry, raw_params)
    found: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for plugin in engine.registry:
        try:
            records, skipped = plugin.survey(target, params_for(plugin, params))
        except InputError as exc:
            problems.append(f"{plugin.name}: {exc}")
            continue
        problems.extend(f"{plugin.name}: {p}" for p in skipped)
        for r in records:
            found[r.fingerprint(asset_id)] = {
                "rule_id": r.rule_id,
                "title": r.title,
                "path": r.location.path,
                "line": r.location.start_line,
            }
    return found, problems


def no_new_findings_check(
    target: str,
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    problems: list[str],
) -> CheckResult:
    new = {fp: what for fp, what in after.items() if fp not in before}
    details = {
        "before": len(before),
        "after": len(after),
        "new": [{"fingerprint": fp, **what} for fp, what in sorted(new.items())],
        "removed": len([fp for fp in before if fp not in after]),
        "detector_problems": problems,
    }
    if new:
        shown = ", ".join(f"{w['rule_id']} in {w['path']}" for w in list(new.values())[:10])
        return CheckResult(
            "no_new_findings",
            target,
            "failed",
            f"{len(new)} finding(s) appeared after the change: {shown}",
            details,
        )
    return CheckResult(
        "no_new_findings",
        target,
        "passed",
        f"full scan: {len(before)} finding(s) before, {len(after)} after, none new",
        details,
    )


def asset_tests_check(
    target_label: str, target: Target, argv: list[str] | None, timeout: float
) -> CheckResult:
    """The asset's own ``tests`` argv, run in the target root."""
    if not argv:
        return CheckResult(
            "asset_tests", target_label, "skipped", "the asset declares no tests command"
        )
    try:
        res = target.run(list(argv), timeout=max(timeout, 1.0))
    except JupiterError as exc:
        return CheckResult("asset_tests", target_label, "failed", f"could not run: {exc}")
    details = {
        "argv": list(argv),
        "returncode": res.returncode,
        "timed_out": res.timed_out,
        "stdout": redact_text(res.stdout[-TAIL:]),
        "stderr": redact_text(res.stderr[-TAIL:]),
    }
    shown = " ".join(argv)
    if res.timed_out:
        return CheckResult(
            "asset_tests",
            target_label,
            "failed",
            f"{shown!r} timed out after {timeout:.0f}s",
            details,
        )
    if res.returncode != 0:
        return CheckResult(
            "asset_tests", target_label, "failed", f"{shown!r} exited {res.returncode}", details
        )
    return CheckResult("asset_tests", target_label, "passed", f"{shown!r} exited 0", details)
