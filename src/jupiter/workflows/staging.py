"""The staging test (seed step 4): the remediation runner's ``test`` stage.

The plan is applied, through the ordinary fix machinery
(:meth:`~jupiter.fixing.Fixing.fix`, :meth:`~jupiter.rollbacks.RollingBack.rollback`),
to every staging asset of the group — or, when the group has none, to a
throw-away copy of one production target (:mod:`.staging_copy`) — and
named checks run, each recorded with its evidence and audited
(``test.check``, one transaction per check). Production is never written.

On a staging asset the change stays applied afterwards (staging mirrors
production); a throw-away copy is deleted. See docs/staging.md."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from jupiter import audit
from jupiter.errors import InputError, JupiterError, TargetError
from jupiter.health.model import HealthConfig, Probe
from jupiter.models import AssetSpec, Environment
from jupiter.store import assets as asset_repo
from jupiter.store.tables import AssetRow
from jupiter.targets.connection import LocalConnection, SSHConnection, parse_connection
from jupiter.targets.factory import open_target
from jupiter.workflows.definitions import ALL_CHECKS
from jupiter.workflows.staging_checks import (
    CheckResult,
    applied_steps,
    asset_tests_check,
    detect_all,
    dry_run_check,
    finding_gone_check,
    no_new_findings_check,
    validator_check,
)
from jupiter.workflows.staging_copy import throw_away_copy
from jupiter.workflows.staging_health import HealthWatch
from jupiter.workflows.staging_rehearsal import rehearse

if TYPE_CHECKING:
    from jupiter.engine import Engine

_PROBES = TypeAdapter(list[Probe])
FAILED_RUNS = frozenset({"failed", "gate_failed"})


@dataclass
class StagingReport:
    """The seed's result shape (``tests_run``, ``tests_passed``,
    ``ready_for_production``) with every check's outcome and evidence."""

    tests_run: int
    tests_passed: int
    ready_for_production: bool
    target: str
    checks: list[CheckResult] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "tests_run": self.tests_run,
            "tests_passed": self.tests_passed,
            "ready_for_production": self.ready_for_production,
            "target": self.target,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
            "runs": self.runs,
            "duration": round(self.duration, 3),
        }


@dataclass
class _Place:
    """Where the plan is tried: an asset, its connection, how to call it."""

    asset: str
    connection: str
    label: str
    tests: list[str] | None
    probes: list[Any]
    health_skip: str | None = None


def _settings(row: AssetRow, spec: AssetSpec | None) -> tuple[list[str] | None, list[Any]]:
    """An asset's ``tests`` argv and probes: from the given spec, else from
    the stored asset settings (the ``assets.settings`` column, when present)."""
    if spec is not None:
        return spec.tests, list(spec.probes)
    stored = getattr(row, "settings", None) or {}
    tests = stored.get("tests") if isinstance(stored, dict) else None
    probes = _PROBES.validate_python(stored.get("probes") or []) if isinstance(stored, dict) else []
    return (list(tests) if tests else None), list(probes)


def raw_param_list(params: list[str] | Mapping[str, Mapping[str, object]]) -> list[str]:
    """Parameters as ``jupiter fix`` takes them (``REMEDIATOR.KEY=VALUE``)."""
    if not isinstance(params, Mapping):
        return list(params)
    out: list[str] = []
    for name, values in params.items():
        for key, value in values.items():
            shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            out.append(f"{name}.{key}={shown}")
    return out


def _root_of(connection: str) -> str:
    """The root directory a probe's ``{root}`` placeholder stands for."""
    return str(parse_connection(connection).root)


class _Recorder:
    """Collects checks; each goes into the audit in its own transaction."""

    def __init__(self, engine: Engine, subject: str, deadline: float, timeout: float) -> None:
        self.engine, self.subject = engine, subject
        self.deadline, self.timeout = deadline, timeout
        self.checks: list[CheckResult] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, label: str, fn: Any, *args: Any) -> Any:
        """Run one check (timed; an error is a failed check) and record it."""
        start = time.monotonic()
        extra = None
        if self.remaining() <= 0:
            result = CheckResult(
                name, label, "failed", f"the staging test ran past its {self.timeout:.0f}s timeout"
            )
        else:
            try:
                got = fn(*args)
                result, extra = got if isinstance(got, tuple) else (got, None)
            except JupiterError as exc:
                result = CheckResult(name, label, "failed", str(exc))
        result.duration = time.monotonic() - start
        self.record(result)
        return extra

    def record(self, result: CheckResult) -> None:
        self.checks.append(result)
        with self.engine.db.transaction() as s:
            audit.record(s, self.engine.actor, "test.check", self.subject, result.to_json())


def _not_applied(
    rec: _Recorder, label: str, wanted: list[str], run_info: dict[str, Any], why: str
) -> dict[str, Any]:
    """Nothing could be tried on this target: the first check fails with
    the reason (so the test is not ready), the others are skipped."""
    run_info.update(status="error", error=why)
    for i, name in enumerate(wanted):
        if i == 0:
            rec.record(CheckResult(name, label, "failed", why))
        else:
            rec.record(CheckResult(name, label, "skipped", "the plan was not applied"))
    return run_info


def _test_place(
    engine: Engine,
    rec: _Recorder,
    place: _Place,
    wanted: list[str],
    finding_rules: list[str] | None,
    raw_params: list[str],
    health: HealthConfig,
) -> dict[str, Any]:
    """Apply the plan to one place and run the wanted checks there."""
    label = place.label
    run_info: dict[str, Any] = {"target": label, "asset": place.asset}
    try:
        target = open_target(place.connection)
    except TargetError as exc:
        return _not_applied(rec, label, wanted, run_info, f"the target could not be opened: {exc}")
    with contextlib.closing(target):
        found_before: dict[str, dict[str, Any]] = {}
        watch = HealthWatch(label, place.asset, _root_of(place.connection), place.probes, health)
        try:
            if "no_new_findings" in wanted:
                found_before, _ = detect_all(engine, target, place.asset, raw_params)
            if "health" in wanted and place.health_skip is None:
                watch.baseline()
        except TargetError as exc:
            why = f"the target could not be read: {exc}"
            return _not_applied(rec, label, wanted, run_info, why)
        preview: list[dict[str, Any]] = []

        def confirm(shown: list[dict[str, Any]]) -> bool:
            preview[:] = shown
            return True

        def fix(ask: bool) -> dict[str, Any]:
            return engine.fix(
                place.connection,
                asset=place.asset,
                only=finding_rules,
                raw_params=raw_params,
                confirm=confirm if ask else None,
                lock_timeout=max(rec.remaining(), 0.0),
            )

        began = time.monotonic()
        try:
            outcome = fix(True)
        except JupiterError as exc:
            why = f"the plan could not be applied: {exc}"
            return _not_applied(rec, label, wanted, run_info, why)
        if not preview:
            preview = list(outcome.get("steps", []))
        run_info.update(run=outcome.get("run"), status=outcome.get("status"))
        run_info["applied"] = len(applied_steps(outcome))
        run_info["apply_seconds"] = round(time.monotonic() - began, 3)
        final = outcome
        if "validator" in wanted:
            rec.run("validator", label, validator_check, label, outcome)
        if "dry_run_matches" in wanted:
            rec.run("dry_run_matches", label, dry_run_check, engine, label, preview, outcome)
        if "rollback_rehearsal" in wanted:
            again = rec.run(
                "rollback_rehearsal",
                label,
                rehearse,
                engine,
                label,
                target,
                outcome,
                lambda: fix(False),
            )
            if again is not None:
                final = again
                run_info.update(run=again.get("run"), status=again.get("status"))
                run_info["rehearsed_run"] = outcome.get("run")
        if "finding_gone" in wanted:
            rec.run(
                "finding_gone", label, finding_gone_check, engine, label, target, final, raw_params
            )
        if "no_new_findings" in wanted:

            def new_findings() -> CheckResult:
                after, problems = detect_all(engine, target, place.asset, raw_params)
                return no_new_findings_check(label, found_before, after, problems)

            rec.run("no_new_findings", label, new_findings)
        if "asset_tests" in wanted:
            rec.run(
                "asset_tests",
                label,
                lambda: asset_tests_check(label, target, place.tests, rec.remaining()),
            )
        if "health" in wanted:
            rec.run("health", label, watch.check, place.health_skip)
    return run_info


def _overlap(a: str, b: str) -> bool:
    """Whether two connections reach the same files: the same directory, or
    one inside the other (local: after resolving links; SSH: same host and
    port)."""
    pa, pb = parse_connection(a), parse_connection(b)
    if isinstance(pa, LocalConnection) and isinstance(pb, LocalConnection):
        ra, rb = Path(os.path.realpath(pa.root)), Path(os.path.realpath(pb.root))
    elif isinstance(pa, SSHConnection) and isinstance(pb, SSHConnection):
        if (pa.host.lower(), pa.port) != (pb.host.lower(), pb.port):
            return False
        ra, rb = Path(pa.root), Path(pb.root)
    else:
        return False
    return ra == rb or ra in rb.parents or rb in ra.parents


def _staging_places(
    engine: Engine,
    staging_assets: list[str],
    production_assets: list[str],
    specs: Mapping[str, AssetSpec],
) -> list[_Place]:
    places: list[_Place] = []
    with engine.db.reading() as s:
        prod_connections = {
            r.connection
            for a in production_assets
            if (r := s.get(AssetRow, a)) is not None and r.connection
        }
        for asset_id in staging_assets:
            row = asset_repo.get_asset(s, asset_id)
            if asset_id in production_assets or row.environment == Environment.PROD.value:
                raise InputError(
                    f"asset {asset_id!r} is a production asset, so it cannot be tested on; "
                    "give it `environment: staging` or leave it out of the staging assets"
                )
            if not row.connection:
                raise InputError(
                    f"staging asset {asset_id!r} has no connection, so the plan cannot be tried "
                    "on it; set `connection:` in assets.yaml"
                )
            clash = next((c for c in prod_connections if _overlap(row.connection, c)), None)
            if clash is not None:
                raise InputError(
                    f"staging asset {asset_id!r} ({row.connection}) shares files with a "
                    f"production asset ({clash}); give staging its own host or directory"
                )
            tests, probes = _settings(row, specs.get(asset_id))
            places.append(_Place(asset_id, row.connection, asset_id, tests, probes))
    return places


@contextlib.contextmanager
def _copy_place(
    engine: Engine,
    production_assets: list[str],
    specs: Mapping[str, AssetSpec],
    timeout: float,
) -> Iterator[_Place]:
    with engine.db.reading() as s:
        rows = [asset_repo.get_asset(s, a) for a in production_assets]
    source = next((r for r in rows if r.connection), None)
    if source is None or source.connection is None:
        raise InputError(
            "no staging asset and no production asset with a connection to copy; set "
            "`connection:` on a production asset or add a staging asset to the group"
        )
    tests, _ = _settings(source, specs.get(source.id))
    engine.workspace.ensure()
    with throw_away_copy(
        engine.db, engine.actor, engine.workspace.home, source.id, source.connection, timeout
    ) as copy:
        place = _Place(
            copy.asset,
            copy.connection,
            copy.label(),
            tests,
            [],
            health_skip="a throw-away copy serves no traffic to probe",
        )
        yield place


def run_staging_test(
    engine: Engine,
    *,
    production_assets: list[str],
    staging_assets: list[str],
    finding_rules: list[str] | None,
    raw_params: list[str] | Mapping[str, Mapping[str, object]],
    checks: list[str],
    health: HealthConfig,
    timeout: float,
    subject: str = "staging-test",
    asset_specs: Mapping[str, AssetSpec] | None = None,
) -> StagingReport:
    """Try the plan on staging (or a throw-away copy of one production
    target) and run ``checks`` (names from
    :data:`~jupiter.workflows.definitions.ALL_CHECKS`) there.

    ``raw_params`` are ``REMEDIATOR.KEY=VALUE`` strings or the parsed
    ``{remediator: {key: value}}``; ``subject`` names the audit entries
    (e.g. ``REM-3``); ``asset_specs`` gives assets' ``tests``/``probes`` when
    they are not stored."""
    unknown = [c for c in checks if c not in ALL_CHECKS]
    if unknown:
        raise InputError(
            f"unknown staging check(s) {', '.join(unknown)}; use: {', '.join(ALL_CHECKS)}"
        )
    if not production_assets and not staging_assets:
        raise InputError("the staging test needs a staging asset or a production asset to copy")
    wanted: list[str] = [c for c in ALL_CHECKS if c in checks]
    raw_params = raw_param_list(raw_params)
    specs = asset_specs or {}
    start = time.monotonic()
    rec = _Recorder(engine, subject, start + timeout, timeout)
    runs: list[dict[str, Any]] = []
    if staging_assets:
        places = _staging_places(engine, staging_assets, production_assets, specs)
        label = ", ".join(p.label for p in places)
        for place in places:
            runs.append(_test_place(engine, rec, place, wanted, finding_rules, raw_params, health))
    else:
        with _copy_place(engine, production_assets, specs, timeout) as place:
            label = place.label
            runs.append(_test_place(engine, rec, place, wanted, finding_rules, raw_params, health))
    return _report(rec.checks, runs, label, time.monotonic() - start)


def _report(
    checks: list[CheckResult], runs: list[dict[str, Any]], label: str, duration: float
) -> StagingReport:
    ran = [c for c in checks if c.outcome != "skipped"]
    passed = [c for c in ran if c.outcome == "passed"]
    reason = ""
    if not ran:
        reason = "no check could run"
    elif len(passed) != len(ran):
        reason = "failed: " + ", ".join(f"{c.name} on {c.target}" for c in ran if c not in passed)
    elif any(r.get("status") in FAILED_RUNS or r.get("status") == "error" for r in runs):
        reason = "a fix run on staging failed"
    elif not any(r.get("applied") for r in runs):
        reason = "the plan changed nothing on any staging target, so nothing was tested"
    return StagingReport(
        tests_run=len(ran),
        tests_passed=len(passed),
        ready_for_production=not reason,
        target=label,
        checks=checks,
        runs=runs,
        reason=reason,
        duration=duration,
    )
