"""The remediation half of the engine: scan, plan and fix, and exported
scripts (rollback and runs are in :mod:`jupiter.rollbacks`).
:class:`jupiter.engine.Engine` inherits it; it relies on the engine's
``db``, ``workspace``, ``actor`` and ``registry``."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson
from pydantic import BaseModel
from sqlalchemy.orm import Session

from jupiter import audit, compliance, waivers
from jupiter.errors import InputError, NotFoundError
from jupiter.models import FindingRecord, FindingStatus
from jupiter.permissions import requires
from jupiter.plans import Plan
from jupiter.states import StepState
from jupiter.store import assets as asset_repo
from jupiter.store import findings as finding_repo
from jupiter.store.db import Database
from jupiter.store.tables import AssetRow, RunRow, utcnow
from jupiter.targets.base import Target
from jupiter.targets.factory import normalise_connection, open_target
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from jupiter.git_delivery import BranchStart, GitDelivery
    from jupiter.plugins.registry import Registry
    from jupiter.pull_requests import PullRequestOptions
    from jupiter.runs import Candidate


@dataclass
class ScanReport:
    target: str
    asset: str
    stats: finding_repo.IngestStats = field(default_factory=finding_repo.IngestStats)
    errors: list[dict[str, str]] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    config_files: list[dict[str, str]] = field(default_factory=list)
    """Configuration files taken from a repository (path, domain, remediator,
    evidence, status, role); see :mod:`jupiter.plugins.configs`."""
    excepted: list[int] = field(default_factory=list)
    """Findings an approved exception covers (skipped by fix)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "asset": self.asset,
            "detected": self.stats.results,
            "new_findings": self.stats.new,
            "reopened": self.reopened,
            "excepted": self.excepted,
            "errors": self.errors,
            "config_files": self.config_files,
        }


def _git_of(target: Target) -> GitDelivery:
    from jupiter.git_delivery import GitDelivery
    from jupiter.targets.local import LocalTarget

    if not isinstance(target, LocalTarget):
        raise InputError(
            f"--git-branch needs a local git work tree as target; {target.describe()} is not one"
        )
    return GitDelivery(target.root)


def _start_git(target: Target, branch: str, replace_own: bool) -> tuple[GitDelivery, BranchStart]:
    git = _git_of(target)
    if replace_own:
        # A pull request's branch is rebuilt on every run (Renovate-style);
        # the previous local copy is Jupiter's own (checked) and was pushed.
        git.drop_own_branch(branch, git.head())
    return git, git.start(branch)


@dataclass
class _PullRequestHook:
    """What ``fix`` needs to deliver its branch as pull requests."""

    options: PullRequestOptions
    branch: str
    git: GitDelivery | None = None
    base_branch: str = ""
    detected: set[str] = field(default_factory=set)

    def prepare(self, target: Target, db: Database) -> None:
        from jupiter.pull_requests import preflight

        self.git = _git_of(target)
        self.base_branch = preflight(self.git, self.options, self.branch, db)


MAX_CONFIRM_ROUNDS = 5


def parse_params_for(fixing: Fixing, raw: list[str] | None) -> dict[str, dict[str, object]]:
    from jupiter.runs import parse_params

    return parse_params(fixing.registry, raw or [])


def _gates_before(chain: list[tuple[Any, Any]], target: Target) -> list[Any]:
    """The run gates of the remediators whose plans change something, each
    having taken its 'before' look."""
    gates = []
    seen: set[str] = set()
    for cand, plan in chain:
        plugin = cand.remediator
        if plugin.name in seen or not isinstance(plan, Plan) or not plan.changes:
            continue
        seen.add(plugin.name)
        gate = plugin.run_gate(target)
        if gate is not None:
            gate.before()
            gates.append(gate)
    return gates


def _actionable(preview: list[dict[str, Any]]) -> bool:
    # A plan that failed is worth a run too: its failure gets recorded.
    return any(p["changes"] or p["status"] == "failed" for p in preview)


def _chain_applies(chain: list[Any], target: Target) -> bool:
    from jupiter.preconditions import chain_still_applies

    return chain_still_applies((p for _, p in chain if isinstance(p, Plan)), target)


def _confirm_bound(
    confirm: Callable[[list[dict[str, Any]]], bool],
    chain: list[Any],
    preview: list[dict[str, Any]],
    candidates: list[Any],
    target: Target,
) -> tuple[list[Any], list[dict[str, Any]]] | None:
    """Ask until the answer is about the plan the target still matches: a
    change made while the user was deciding shows the new plan and asks
    again. ``None`` when declined."""
    from jupiter.errors import ConflictError
    from jupiter.runs import plan_chain, preview_step

    for _ in range(MAX_CONFIRM_ROUNDS):
        if not confirm(preview):
            return None
        if _chain_applies(chain, target):
            return chain, preview
        chain = plan_chain(candidates, target)
        preview = [{**preview_step(c, p), "replanned": True} for c, p in chain]
        if not _actionable(preview):
            return chain, preview
    raise ConflictError(
        f"the target changed every time before the answer ({MAX_CONFIRM_ROUNDS} times); nothing "
        "was applied — run the fix again when the target is quiet"
    )


def _default_asset_id(connection: str) -> str:
    """A readable asset id for a target given only by path: its folder name."""
    tail = connection.rstrip("/").rsplit("/", 1)[-1] or "root"
    return re.sub(r"[^A-Za-z0-9._-]", "-", tail).lstrip("-._") or "target"


class Fixing:
    """Mixed into :class:`jupiter.engine.Engine`."""

    workspace: Workspace
    actor: str
    _registry: Registry | None

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    # -- exported scripts -----------------------------------------------
    @requires("script.export")
    def export_script(self, ref: str, fmt: str) -> str:
        """A standalone fix script for a finding (``FINDING``, planned now on
        its asset) or for what a run applied (``run:ID`` or ``RUN`` digits
        prefixed with ``run:``), in ``bash``, ``python`` or ``ansible``."""
        from jupiter.export import PlanForExport, export_script

        if ref.startswith("run:"):
            items = self._run_plans_for_export(ref.removeprefix("run:"))
        else:
            planned = self.plan(ref)
            plan = Plan.model_validate({k: v for k, v in planned["plan"].items() if k != "hash"})
            if plan.needs_manual or not plan.changes:
                why = plan.needs_manual or "it is already fixed"
                raise InputError(f"finding {ref} has nothing to export: {why}")
            with self.db.reading() as s:
                row = finding_repo.get_finding(s, ref)
                conn = asset_repo.get_asset(s, row.asset_id).connection or ""
            items = [
                PlanForExport(
                    plan=plan,
                    finding_id=str(row.id),
                    rule_id=row.rule_id,
                    title=row.title,
                    target=conn,
                )
            ]
        script = export_script(items, fmt)  # type: ignore[arg-type]
        with self.db.transaction() as s:
            audit.record(
                s,
                self.actor,
                "script.exported",
                ref,
                {"format": fmt, "plans": [i.plan.plan_hash() for i in items]},
            )
        return script

    def _run_plans_for_export(self, run_ref: str) -> list[Any]:
        from sqlalchemy import select

        from jupiter.export import PlanForExport
        from jupiter.redact import MASK
        from jupiter.store.tables import RunStepRow

        if not run_ref.isdecimal():
            raise InputError(f"run {run_ref!r} is not a run id; see `jupiter runs list`")
        with self.db.reading() as s:
            run = s.get(RunRow, int(run_ref))
            if run is None:
                raise NotFoundError(f"no run {run_ref}; see `jupiter runs list`")
            steps = list(
                s.scalars(
                    select(RunStepRow)
                    .where(RunStepRow.run_id == run.id, RunStepRow.status == StepState.VERIFIED)
                    .order_by(RunStepRow.seq)
                )
            )
        if not steps:
            raise InputError(f"run {run_ref} applied nothing that could be exported")
        items = []
        for st in steps:
            if MASK in orjson.dumps(st.plan).decode():
                raise InputError(
                    f"run {run_ref} step {st.seq} ({st.rule_id}) wrote a secret that Jupiter does "
                    "not store; export that finding instead (`jupiter script FINDING`)"
                )
            plan = Plan.model_validate({k: v for k, v in st.plan.items() if k != "hash"})
            items.append(
                PlanForExport(
                    plan=plan,
                    finding_id=str(st.finding_id or ""),
                    rule_id=st.rule_id,
                    title=plan.title,
                    target=run.target,
                )
            )
        return items

    # -- remediation ----------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from jupiter.custom import load_custom_remediators
            from jupiter.plugins.registry import load_registry

            registry = load_registry()
            for plugin in registry:
                plugin.bind(self.workspace)
            # A team's registered script is a deliberate choice for its rules:
            # the registry consults custom scripts before the other plugins.
            for custom in load_custom_remediators(self.workspace, errors=registry.errors):
                registry.add(custom, source="custom")
            self._registry = registry
        return self._registry

    @requires("findings.scan", scope="asset", kind="asset")
    def scan(self, target_spec: str, asset: str | None = None) -> ScanReport:
        """Run every built-in detector over a target and store the findings."""
        target, asset_id = self._open_target(target_spec, asset)
        with closing(target):
            return self._scan(target, asset_id)

    @requires("plan.create", scope="finding_ref", kind="finding")
    def plan(self, finding_ref: str, raw_params: list[str] | None = None) -> dict[str, Any]:
        """The plan (with diff) for one stored finding; touches nothing."""
        from jupiter.runs import Candidate, params_for, parse_params

        with self.db.reading() as s:
            row = finding_repo.get_finding(s, finding_ref)
            record = finding_repo.row_to_record(row)
            asset_row = asset_repo.get_asset(s, row.asset_id)
            connection = asset_row.connection
        plugin = self.registry.for_finding(record)
        if plugin is None:
            raise InputError(
                f"no remediator handles rule {record.rule_id} ({record.category}); see "
                "`jupiter remediators list`"
            )
        if not connection:
            raise InputError(
                f"asset {row.asset_id!r} has no connection, so Jupiter cannot read its files; "
                "set `connection: local:PATH` (or ssh:...) in assets.yaml"
            )
        params = params_for(plugin, parse_params(self.registry, raw_params or []))
        target = open_target(connection)
        with closing(target):
            plan = Candidate(record, row.id, plugin, params).remediator.plan(record, target, params)
        return {"finding": row.id, "remediator": plugin.name, "plan": plan.to_json()}

    @requires("fix.apply", scope="asset", kind="asset")
    def fix(
        self,
        target_spec: str,
        asset: str | None = None,
        only: list[str] | None = None,
        dry_run: bool = False,
        confirm: Callable[[list[dict[str, Any]]], bool] | None = None,
        raw_params: list[str] | None = None,
        on_step: Callable[[Any], None] | None = None,
        git_branch: str | None = None,
        lock_timeout: float = 0.0,
        pull_request: PullRequestOptions | None = None,
    ) -> dict[str, Any]:
        """Scan, plan, snapshot, validate, apply and verify every fixable finding.

        ``confirm`` sees the planned steps (with diffs) and returns whether to
        apply; ``None`` applies without asking (``--yes``). The confirmation
        is bound to what was shown: if the target changed before the answer,
        ``confirm`` is called again with the new plan. With ``git_branch``
        the target must be a clean git work tree: the fixes are delivered on
        that new branch, one commit per verified finding.

        Everything from the final planning to the last step runs under the
        target's exclusive lock (:mod:`jupiter.locks`); another run holding it
        makes this one wait up to ``lock_timeout`` seconds, then raise
        LockBusy naming the holder.

        With ``pull_request`` (and ``git_branch``) the branch is then pushed
        and delivered as pull/merge requests that stay current (see
        :mod:`jupiter.pull_requests`); the remote, base branch and token are
        checked before anything changes.
        """
        hook = None
        if pull_request is not None:
            if git_branch is None:
                raise InputError("--pull-request needs --git-branch NAME (the branch to push)")
            cast(Any, self)._require("pull_requests.deliver", "asset" if asset else "none", asset)
            hook = _PullRequestHook(pull_request.check(), git_branch)
        outcome = self._fix(
            target_spec,
            asset,
            only,
            dry_run,
            confirm,
            raw_params,
            on_step,
            git_branch,
            lock_timeout,
            hook,
        )
        if hook is not None and not dry_run and outcome["status"] != "declined":
            from jupiter.pull_requests import deliver

            assert hook.git is not None and git_branch is not None
            outcome["pull_requests"] = deliver(
                self.db,
                self.actor,
                hook.git,
                hook.options,
                branch=git_branch,
                base_branch=hook.base_branch,
                asset_id=outcome["asset"],
                run_id=outcome.get("run"),
                run_git=outcome.get("git"),
                detected=hook.detected,
            )
        return outcome

    def _fix(
        self,
        target_spec: str,
        asset: str | None,
        only: list[str] | None,
        dry_run: bool,
        confirm: Callable[[list[dict[str, Any]]], bool] | None,
        raw_params: list[str] | None,
        on_step: Callable[[Any], None] | None,
        git_branch: str | None,
        lock_timeout: float,
        hook: _PullRequestHook | None,
    ) -> dict[str, Any]:
        from jupiter.locks import Holder, TargetLock
        from jupiter.runs import plan_chain, preview_step

        params = parse_params_for(self, raw_params)
        target, asset_id = self._open_target(target_spec, asset)
        with closing(target):
            if hook is not None:
                hook.prepare(target, self.db)
            scan = self._scan(target, asset_id, params)
            if hook is not None:
                hook.detected = set(scan.fingerprints)
            unhandled: list[dict[str, Any]] = []
            candidates = self._candidates(asset_id, params, only, unhandled)
            chain = plan_chain(candidates, target)
            preview = [preview_step(c, p) for c, p in chain]
            base = {
                "target": target.describe(),
                "asset": asset_id,
                "scan": scan.to_json(),
                "unhandled": unhandled,
            }
            if dry_run or not _actionable(preview):
                status = "dry_run" if dry_run else "nothing_to_do"
                return {**base, "dry_run": dry_run, "run": None, "status": status, "steps": preview}
            holder = Holder.current("fix", self.actor)
            with TargetLock(self.db, target, holder, timeout=lock_timeout) as lock:
                if not _chain_applies(chain, target):
                    # Changed while we waited for the lock: plan what is there now.
                    chain = plan_chain(candidates, target)
                    preview = [preview_step(c, p) for c, p in chain]
                    if not _actionable(preview):
                        return {
                            **base,
                            "dry_run": False,
                            "run": None,
                            "status": "nothing_to_do",
                            "steps": preview,
                        }
                if confirm is not None:
                    agreed = _confirm_bound(confirm, chain, preview, candidates, target)
                    if agreed is None:
                        return {
                            **base,
                            "dry_run": False,
                            "run": None,
                            "status": "declined",
                            "steps": preview,
                        }
                    chain, preview = agreed
                if not _actionable(preview):
                    return {
                        **base,
                        "dry_run": False,
                        "run": None,
                        "status": "nothing_to_do",
                        "steps": preview,
                    }
                gates = _gates_before(chain, target)
                outcome = {
                    **base,
                    **self._run_chain(
                        target,
                        asset_id,
                        params,
                        chain,
                        on_step,
                        git_branch,
                        lock,
                        replace_own=hook is not None,
                    ),
                }
            # Outside the lock: a failed gate rolls back, and a rollback takes it.
            outcome = self._gates_after(gates, outcome)
        # Compliance on the new state (the run re-detected what it fixed).
        with self.db.transaction() as s:
            compliance.evaluate(s, asset_id, outcome.get("run"))
        return outcome

    def _gates_after(self, gates: list[Any], outcome: dict[str, Any]) -> dict[str, Any]:
        """Each run gate's verdict after the run; a failed one rolls the run
        back (proven by hashes, like any rollback) and fails the fix."""
        if not gates:
            return outcome
        results = [gate.after() for gate in gates]
        outcome["gates"] = [r.to_json() for r in results]
        failed = [r for r in results if r.status == "failed"]
        if outcome.get("run") is not None:
            # The verdict is part of the run's record, before any rollback.
            with self.db.transaction() as s:
                audit.record(
                    s, self.actor, "run.gated", f"run:{outcome['run']}", {"gates": outcome["gates"]}
                )
        if failed and outcome.get("run") is not None:
            rollback = cast(Any, self).rollback(outcome["run"])
            outcome["rollback"] = rollback
            outcome["status"] = "gate_failed"
            for step in outcome["steps"]:
                if step["status"] == StepState.VERIFIED:
                    step["status"] = "rolled_back"
                    step["detail"] = f"rolled back: {failed[0].validator}: {failed[0].detail}"
        return outcome

    def _run_chain(
        self,
        target: Target,
        asset_id: str,
        params: dict[str, dict[str, object]],
        chain: list[Any],
        on_step: Callable[[Any], None] | None,
        git_branch: str | None,
        lock: Any,
        *,
        replace_own: bool = False,
    ) -> dict[str, Any]:
        from jupiter.runs import RunExecutor
        from jupiter.snapshots import BlobStore

        git, run_params = None, dict(params)
        if git_branch is not None:
            git, started = _start_git(target, git_branch, replace_own)
            run_params["git"] = {
                "branch": started.branch,
                "base": started.base,
                "previous_branch": started.previous_branch,
            }
        executor = RunExecutor(
            self.db, BlobStore(self.workspace.blobs), target, self.actor, on_step, git, lock
        )
        run_id = executor.start(asset_id, run_params)
        lock.bind_run(run_id)
        results = [
            executor.execute(run_id, i, c, p if isinstance(p, Plan) else None)
            for i, (c, p) in enumerate(chain, 1)
        ]
        status = executor.finish(run_id, results)
        return {
            "dry_run": False,
            "run": run_id,
            "status": status,
            "steps": [r.to_json() for r in results],
            "git": run_params.get("git"),
        }

    # -- internals -------------------------------------------------------
    def _open_target(self, spec: str, asset: str | None) -> tuple[Target, str]:
        """Open the target named by a path or connection string; make sure an
        asset stands for it (created on the fly, bound to that connection)."""
        connection = normalise_connection(spec)
        target = open_target(connection)
        try:
            asset_id = asset or _default_asset_id(connection)
            with self.db.transaction() as s:
                row = s.get(AssetRow, asset_id)
                if row is None:
                    row = asset_repo.create_unregistered(s, asset_id)
                    row.connection = connection
                    audit.record(
                        s,
                        self.actor,
                        "asset.created",
                        f"asset:{asset_id}",
                        {"connection": connection, "registered": False},
                    )
                elif row.connection is None:
                    row.connection = connection
                elif row.connection != connection:
                    raise InputError(
                        f"asset {asset_id!r} is bound to {row.connection}, not {connection}; "
                        "pass --asset with another id"
                    )
        except BaseException:
            target.close()
            raise
        return target, asset_id

    def _scan(
        self,
        target: Target,
        asset_id: str,
        params: dict[str, dict[str, object]] | None = None,
        only: list[str] | None = None,
    ) -> ScanReport:
        """Survey ``target`` with every remediator (with ``only``: those that
        can fix one of those rules or categories) and store what they find."""
        from jupiter.runs import params_for

        report = ScanReport(target.describe(), asset_id)
        records: list[FindingRecord] = []
        chosen = [p for p in self.registry if not only or _can_fix(p, only)]
        plugins = [(p, params_for(p, params or {})) for p in chosen]
        for plugin, plugin_params in plugins:
            try:
                found, problems = plugin.survey(target, plugin_params)
            except InputError as exc:
                report.errors.append({"remediator": plugin.name, "error": str(exc)})
                continue
            report.errors.extend({"remediator": plugin.name, "error": p} for p in problems)
            records.extend(r.model_copy(update={"asset": asset_id}) for r in found)
            try:
                taken = plugin.config_files(target, plugin_params)
            except InputError as exc:
                report.errors.append({"remediator": plugin.name, "error": str(exc)})
                continue
            report.config_files.extend({**t.to_json(), "remediator": plugin.name} for t in taken)
        now = utcnow()
        with self.db.transaction() as s:
            writer = finding_repo.FindingWriter(s, now, asset_id, source_name=target.describe())
            writer.add_all(records)
            writer.flush()
            report.stats = writer.stats
            report.fingerprints = sorted({r.fingerprint(asset_id) for r in records})
            report.reopened = self._reopen(s, report.fingerprints)
            # Exceptions: the expired ones reopen their findings, the active
            # ones except what they cover (so fix skips it).
            waivers.expire_due(s, self.actor, now)
            waivers.apply_waivers(s, self.actor, now)
            report.excepted = finding_repo.excepted_ids(s, asset_id)
            compliance.evaluate(s, asset_id, None, now)
            audit.record(
                s,
                self.actor,
                "findings.scanned",
                f"asset:{asset_id}",
                {**report.to_json(), "fingerprints": report.fingerprints},
            )
        return report

    def _candidates(
        self,
        asset_id: str,
        params: dict[str, dict[str, object]],
        only: list[str] | None,
        unhandled: list[dict[str, Any]],
    ) -> list[Candidate]:
        from jupiter.runs import Candidate, params_for

        fixable = {FindingStatus.OPEN.value, FindingStatus.FAILED.value}
        out: list[Candidate] = []
        with self.db.reading() as s:
            rows = finding_repo.list_findings(s, asset=asset_id)
        parsed: dict[str, BaseModel] = {}
        with self.db.reading() as s:
            sources = finding_repo.sources_for(s, [r.id for r in rows if r.status in fixable])
        for row in rows:
            if row.status not in fixable:
                continue
            record = finding_repo.row_to_record(row)
            if only and not any(o in (record.rule_id, str(record.category)) for o in only):
                continue
            plugin = self.registry.for_finding(record)
            if plugin is None:
                # The same issue may be known under another scanner's rule id
                # (Bandit's B610 and Jupiter's PY-SQLI-002 on one line).
                for src in sources.get(row.id, []):
                    alt = record.model_copy(update={"rule_id": src.rule_id})
                    plugin = self.registry.for_finding(alt)
                    if plugin is not None:
                        record = alt
                        break
            if plugin is None:
                unhandled.append(
                    {
                        "finding": row.id,
                        "rule_id": row.rule_id,
                        "title": row.title,
                        "reason": "no remediator handles this rule; fix it by hand, or "
                        "register a script for it (`jupiter scripts add`)",
                    }
                )
                continue
            if plugin.name not in parsed:
                parsed[plugin.name] = params_for(plugin, params)
            out.append(Candidate(record, row.id, plugin, parsed[plugin.name]))
        return out

    def _reopen(self, s: Session, fingerprints: list[str]) -> list[int]:
        """A finding detected again after it was fixed or rolled back is open again."""
        from sqlalchemy import select

        from jupiter.runs import _set_finding_status
        from jupiter.store.tables import FindingRow

        closed = (
            FindingStatus.VERIFIED.value,
            FindingStatus.FIXED.value,
            FindingStatus.ROLLED_BACK.value,
        )
        reopened: list[int] = []
        for i in range(0, len(fingerprints), 500):
            chunk = fingerprints[i : i + 500]
            for fid in s.scalars(
                select(FindingRow.id).where(
                    FindingRow.fingerprint.in_(chunk), FindingRow.status.in_(closed)
                )
            ):
                _set_finding_status(s, fid, FindingStatus.OPEN, self.actor)
                reopened.append(fid)
        return reopened


def _can_fix(plugin: Any, only: list[str]) -> bool:
    """Whether ``plugin`` fixes a rule id or category of ``only`` (a category
    also covers its sub-categories); one that declares neither is kept."""
    rules: frozenset[str] = getattr(plugin, "rule_ids", frozenset())
    cats: frozenset[str] = getattr(plugin, "categories", frozenset())
    if not rules and not cats:
        return True
    return any(o in rules or o in cats or any(c.startswith(o + ".") for c in cats) for o in only)
