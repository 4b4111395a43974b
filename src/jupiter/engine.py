"""The engine facade: the one entry point the CLI (and later the API, web UI
and copilot) calls. Every method that changes state runs in one transaction
together with its audit entry."""

from __future__ import annotations

import gc
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import Declined, InputError, JupiterError, NotFoundError
from jupiter.models import AssetSpec, Category, FindingRecord, FindingStatus, Severity
from jupiter.plans import Plan
from jupiter.store import assets as asset_repo
from jupiter.store import findings as finding_repo
from jupiter.store.db import Database
from jupiter.store.tables import AssetRow, AuditHeadRow, RunRow, utcnow
from jupiter.targets.base import Target
from jupiter.targets.factory import normalise_connection, open_target
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from jupiter.git_delivery import BranchStart, GitDelivery
    from jupiter.remediators.registry import Registry
    from jupiter.runs import Candidate

Progress = Callable[[int], None]


def default_actor() -> str:
    return os.environ.get("JUPITER_ACTOR") or os.environ.get("USER") or "unknown"


@dataclass
class IngestReport:
    files: list[dict[str, Any]] = field(default_factory=list)
    stats: finding_repo.IngestStats = field(default_factory=finding_repo.IngestStats)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, **self.stats.to_json()}


@dataclass
class ScanReport:
    target: str
    asset: str
    stats: finding_repo.IngestStats = field(default_factory=finding_repo.IngestStats)
    errors: list[dict[str, str]] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "asset": self.asset,
            "detected": self.stats.results,
            "new_findings": self.stats.new,
            "reopened": self.reopened,
            "errors": self.errors,
        }


def _start_git(target: Target, branch: str) -> tuple[GitDelivery, BranchStart]:
    from jupiter.git_delivery import GitDelivery
    from jupiter.targets.local import LocalTarget

    if not isinstance(target, LocalTarget):
        raise InputError(
            f"--git-branch needs a local git work tree as target; {target.describe()} is not one"
        )
    git = GitDelivery(target.root)
    return git, git.start(branch)


def _default_asset_id(connection: str) -> str:
    """A readable asset id for a target given only by path: its folder name."""
    tail = connection.rstrip("/").rsplit("/", 1)[-1] or "root"
    return re.sub(r"[^A-Za-z0-9._-]", "-", tail).lstrip("-._") or "target"


def _run_json(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "asset": run.asset_id,
        "target": run.target,
        "actor": run.actor,
        "rollback_of": run.rollback_of,
        "summary": run.summary,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


class Engine:
    """Jupiter's core, bound to one workspace."""

    def __init__(self, workspace: Workspace, actor: str | None = None) -> None:
        self.workspace = workspace
        self.actor = actor or default_actor()
        self._db: Database | None = None
        self._registry: Registry | None = None

    @classmethod
    def open(
        cls, home: Path | None = None, database_url: str | None = None, actor: str | None = None
    ) -> Engine:
        return cls(Workspace.resolve(home, database_url), actor)

    @property
    def db(self) -> Database:
        """The database, created and migrated on first use."""
        if self._db is None:
            self.workspace.ensure()
            db = Database(self.workspace.database_url)
            db.migrate()
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workspace -------------------------------------------------------
    def init(self) -> dict[str, Any]:
        with self.db.transaction() as s:
            fresh = s.get(AuditHeadRow, 1) is None
            if fresh:
                audit.record(s, self.actor, "workspace.initialised", str(self.workspace.home), {})
        return {"home": str(self.workspace.home), "created": fresh}

    # -- assets ----------------------------------------------------------
    def import_assets(self, path: Path) -> dict[str, Any]:
        specs = load_asset_file(path)
        created: list[str] = []
        updated: list[str] = []
        with self.db.transaction() as s:
            for spec in specs:
                _, is_new = asset_repo.upsert_asset(s, spec)
                (created if is_new else updated).append(spec.id)
            audit.record(
                s,
                self.actor,
                "assets.imported",
                str(path),
                {"created": created, "updated": updated},
            )
        return {"created": created, "updated": updated}

    def list_assets(self) -> list[dict[str, object]]:
        with self.db.reading() as s:
            return [asset_repo.asset_to_json(a) for a in asset_repo.list_assets(s)]

    # -- ingestion -------------------------------------------------------
    def ingest(
        self,
        paths: list[Path],
        asset: str | None = None,
        fmt: str = "auto",
        strict_assets: bool = False,
        progress: Callable[[Path, int, int], None] | None = None,
    ) -> IngestReport:
        """Parse and store every report in one transaction: all or nothing."""
        # A bulk load allocates many objects and frees almost none until the
        # end: cyclic GC passes are pure overhead here (~8% of a 100k ingest).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._ingest(paths, asset, fmt, strict_assets, progress)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _ingest(
        self,
        paths: list[Path],
        asset: str | None,
        fmt: str,
        strict_assets: bool,
        progress: Callable[[Path, int, int], None] | None,
    ) -> IngestReport:
        from jupiter.ingest import detect_format, parse_report

        report = IngestReport()
        now = utcnow()
        with self.db.transaction() as s:
            for path in paths:
                if not path.is_file():
                    raise InputError(f"report {path} does not exist or is not a file")
                chosen = detect_format(path) if fmt == "auto" else fmt
                size = path.stat().st_size
                writer = finding_repo.FindingWriter(
                    s, now, asset, strict_assets, source_name=str(path)
                )
                on_progress: Progress | None = None
                if progress is not None:
                    on_progress = _bind_progress(progress, path, size)
                writer.add_all(parse_report(path, chosen, on_progress))
                writer.flush()
                report.stats.add(writer.stats)
                report.files.append(
                    {
                        "path": str(path),
                        "format": chosen,
                        "sha256": _file_sha256(path),
                        **writer.stats.to_json(),
                    }
                )
            audit.record(
                s, self.actor, "findings.ingested", ",".join(map(str, paths)), report.to_json()
            )
        return report

    # -- findings --------------------------------------------------------
    def list_findings(self, **filters: Any) -> list[dict[str, Any]]:
        for key, enum in (
            ("status", FindingStatus),
            ("severity", Severity),
            ("category", Category),
        ):
            value = filters.get(key)
            if value is not None and value not in {e.value for e in enum}:
                known = ", ".join(e.value for e in enum)
                raise InputError(f"unknown {key} {value!r}; use one of: {known}")
        with self.db.reading() as s:
            rows = finding_repo.list_findings(s, **filters)
            sources = finding_repo.sources_for(s, [r.id for r in rows])
            return [finding_repo.finding_to_json(r, sources[r.id]) for r in rows]

    def get_finding(self, ref: str) -> dict[str, Any]:
        with self.db.reading() as s:
            row = finding_repo.get_finding(s, ref)
            return finding_repo.finding_to_json(row, finding_repo.sources_for(s, [row.id])[row.id])

    # -- advisories -----------------------------------------------------
    def import_advisories(self, path: Path) -> dict[str, Any]:
        """Import OSV records (directory, record or per-ecosystem zip) into
        the workspace's offline advisory database: all or nothing."""
        from jupiter.advisories import AdvisoryDB

        self.workspace.ensure()
        report = AdvisoryDB(self.workspace.advisories).import_path(path)
        with self.db.transaction() as s:
            audit.record(s, self.actor, "advisories.imported", str(path), report.to_json())
        return report.to_json()

    # -- exported scripts -----------------------------------------------
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

        if not run_ref.isdigit():
            raise InputError(f"run {run_ref!r} is not a run id; see `jupiter runs list`")
        with self.db.reading() as s:
            run = s.get(RunRow, int(run_ref))
            if run is None:
                raise NotFoundError(f"no run {run_ref}; see `jupiter runs list`")
            steps = list(
                s.scalars(
                    select(RunStepRow)
                    .where(RunStepRow.run_id == run.id, RunStepRow.status == "verified")
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

    # -- custom scripts -------------------------------------------------
    def register_script(self, manifest: Path) -> dict[str, Any]:
        from jupiter.custom import register_script

        self.workspace.ensure()
        info = register_script(self.workspace, manifest)
        with self.db.transaction() as s:
            audit.record(s, self.actor, "script.registered", f"script:{info['name']}", info)
        self._registry = None
        return info

    def list_scripts(self) -> list[dict[str, Any]]:
        from jupiter.custom import list_scripts

        return list_scripts(self.workspace)

    def remove_script(self, name: str) -> None:
        from jupiter.custom import remove_script

        remove_script(self.workspace, name)
        with self.db.transaction() as s:
            audit.record(s, self.actor, "script.removed", f"script:{name}", {})
        self._registry = None

    # -- remediation ----------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from jupiter.custom import load_custom_remediators
            from jupiter.remediators.registry import load_registry

            registry = load_registry()
            for plugin in registry:
                plugin.bind(self.workspace)
            # A team's registered script is a deliberate choice for its rules:
            # the registry consults custom scripts before the other plugins.
            for custom in load_custom_remediators(self.workspace, errors=registry.errors):
                registry.add(custom, source="custom")
            self._registry = registry
        return self._registry

    def scan(self, target_spec: str, asset: str | None = None) -> ScanReport:
        """Run every built-in detector over a target and store the findings."""
        target, asset_id = self._open_target(target_spec, asset)
        with closing(target):
            return self._scan(target, asset_id)

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
    ) -> dict[str, Any]:
        """Scan, plan, snapshot, validate, apply and verify every fixable finding.

        ``confirm`` sees the planned steps (with diffs) and returns whether to
        apply; ``None`` applies without asking (``--yes``). With
        ``git_branch`` the target must be a clean git work tree: the fixes
        are delivered on that new branch, one commit per verified finding.
        """
        from jupiter.runs import RunExecutor, parse_params, plan_chain, preview_step
        from jupiter.snapshots import BlobStore

        params = parse_params(self.registry, raw_params or [])
        target, asset_id = self._open_target(target_spec, asset)
        with closing(target):
            scan = self._scan(target, asset_id, params)
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
            # A plan that failed is worth a run too: its failure gets recorded.
            actionable = any(p["changes"] or p["status"] == "failed" for p in preview)
            if dry_run or not actionable:
                status = "dry_run" if dry_run else "nothing_to_do"
                return {**base, "dry_run": dry_run, "run": None, "status": status, "steps": preview}
            if confirm is not None and not confirm(preview):
                return {
                    **base,
                    "dry_run": False,
                    "run": None,
                    "status": "declined",
                    "steps": preview,
                }
            git, run_params = None, dict(params)
            if git_branch is not None:
                git, started = _start_git(target, git_branch)
                run_params["git"] = {
                    "branch": started.branch,
                    "base": started.base,
                    "previous_branch": started.previous_branch,
                }
            executor = RunExecutor(
                self.db, BlobStore(self.workspace.blobs), target, self.actor, on_step, git
            )
            run_id = executor.start(asset_id, run_params)
            results = [
                executor.execute(run_id, i, c, p if isinstance(p, Plan) else None)
                for i, (c, p) in enumerate(chain, 1)
            ]
            status = executor.finish(run_id, results)
        return {
            **base,
            "dry_run": False,
            "run": run_id,
            "status": status,
            "steps": [r.to_json() for r in results],
            "git": run_params.get("git"),
        }

    def rollback(
        self,
        run_id: int,
        paths: list[str] | None = None,
        confirm: Callable[[list[str]], bool] | None = None,
    ) -> dict[str, Any]:
        """Restore what a fix run changed (all, or only ``paths``) and prove it."""
        from jupiter.runs import rollback_entries
        from jupiter.snapshots import BlobStore, check_blobs, restore, verify_restored
        from jupiter.targets.base import normalise_relpath

        with self.db.reading() as s:
            run, entries, step_ids = rollback_entries(s, run_id)
            commits = _run_commits(s, step_ids)
        if not entries:
            raise InputError(f"run {run_id} changed nothing that can be rolled back")
        git_info = run.params.get("git")
        if git_info and paths:
            raise InputError(
                f"run {run_id} delivered its fixes as commits on {git_info['branch']}; "
                "roll it back whole (without --path), which reverts those commits"
            )
        wanted = sorted(entries)
        if paths:
            asked = [normalise_relpath(p) for p in paths]
            unknown = [p for p in asked if p not in entries]
            if unknown:
                raise InputError(
                    f"run {run_id} did not change {', '.join(unknown)}; it changed: "
                    f"{', '.join(wanted)}"
                )
            wanted = sorted(set(asked))
        chosen = [entries[p] for p in wanted]
        blobs = BlobStore(self.workspace.blobs)
        try:
            check_blobs(chosen, blobs)
        except JupiterError as exc:
            with self.db.transaction() as s:
                audit.record(
                    s, self.actor, "rollback.refused", f"run:{run_id}", {"reason": str(exc)}
                )
            raise
        if confirm is not None and not confirm(wanted):
            raise Declined("rollback declined; nothing was changed")
        target = open_target(run.target)
        with closing(target):
            with self.db.transaction() as s:
                rb = RunRow(
                    kind="rollback",
                    status="running",
                    asset_id=run.asset_id,
                    target=run.target,
                    actor=self.actor,
                    params={"paths": wanted},
                    summary={},
                    rollback_of=run_id,
                    started_at=utcnow(),
                    finished_at=None,
                )
                s.add(rb)
                s.flush()
                rb_id = rb.id
                audit.record(
                    s,
                    self.actor,
                    "rollback.started",
                    f"run:{run_id}",
                    {"rollback_run": rb_id, "paths": wanted},
                )
            try:
                if git_info:
                    _revert_git(target, git_info["branch"], commits, run_id)
                else:
                    restore(target, chosen, blobs)
                mismatches = verify_restored(target, chosen)
            except JupiterError as exc:
                with self.db.transaction() as s:
                    rbrow = s.get(RunRow, rb_id)
                    assert rbrow is not None
                    rbrow.status, rbrow.finished_at = "failed", utcnow()
                    audit.record(
                        s,
                        self.actor,
                        "rollback.failed",
                        f"run:{run_id}",
                        {"rollback_run": rb_id, "error": str(exc)},
                    )
                raise
            full = set(wanted) == set(entries)
            with self.db.transaction() as s:
                rbrow, orig = s.get(RunRow, rb_id), s.get(RunRow, run_id)
                assert rbrow is not None and orig is not None
                rbrow.status = "verified" if not mismatches else "mismatch"
                rbrow.finished_at = utcnow()
                rbrow.summary = {"restored": wanted, "mismatches": mismatches}
                orig.status = "rolled_back" if full else "partially_rolled_back"
                if full:
                    self._mark_rolled_back(s, step_ids)
                audit.record(
                    s,
                    self.actor,
                    "rollback.verified" if not mismatches else "rollback.mismatch",
                    f"run:{run_id}",
                    {
                        "rollback_run": rb_id,
                        "restored": wanted,
                        "mismatches": mismatches,
                        "hashes": {e.path: e.sha256 for e in chosen},
                    },
                )
        return {
            "run": run_id,
            "rollback_run": rb_id,
            "restored": wanted,
            "verified": not mismatches,
            "mismatches": mismatches,
            "full": full,
        }

    def list_runs(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        with self.db.reading() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.id.desc()))
            return [_run_json(r) for r in rows]

    def show_run(self, run_id: int) -> dict[str, Any]:
        from sqlalchemy import select

        from jupiter.store.tables import RunStepRow

        with self.db.reading() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}; see `jupiter runs list`")
            steps = s.scalars(
                select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.seq)
            )
            return {
                **_run_json(run),
                "steps": [
                    {
                        "id": st.id,
                        "seq": st.seq,
                        "finding": st.finding_id,
                        "remediator": st.remediator,
                        "rule_id": st.rule_id,
                        "status": st.status,
                        "detail": st.detail,
                        "plan_hash": st.plan_hash,
                        "validations": st.validations,
                        "diff": st.plan.get("diff", ""),
                        "output": st.output,
                    }
                    for st in steps
                ],
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
        self, target: Target, asset_id: str, params: dict[str, dict[str, object]] | None = None
    ) -> ScanReport:
        from jupiter.runs import params_for

        report = ScanReport(target.describe(), asset_id)
        records: list[FindingRecord] = []
        plugins = [(p, params_for(p, params or {})) for p in self.registry]
        for plugin, plugin_params in plugins:
            try:
                found, problems = plugin.survey(target, plugin_params)
            except InputError as exc:
                report.errors.append({"remediator": plugin.name, "error": str(exc)})
                continue
            report.errors.extend({"remediator": plugin.name, "error": p} for p in problems)
            records.extend(r.model_copy(update={"asset": asset_id}) for r in found)
        now = utcnow()
        with self.db.transaction() as s:
            writer = finding_repo.FindingWriter(s, now, asset_id, source_name=target.describe())
            writer.add_all(records)
            writer.flush()
            report.stats = writer.stats
            report.fingerprints = sorted({r.fingerprint(asset_id) for r in records})
            report.reopened = self._reopen(s, report.fingerprints)
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
            if only and not any(o in (record.rule_id, record.category.value) for o in only):
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

    def _mark_rolled_back(self, s: Session, step_ids: list[int]) -> None:
        from jupiter.runs import _set_finding_status
        from jupiter.store.tables import RunStepRow

        for sid in step_ids:
            step = s.get(RunStepRow, sid)
            if step is not None:
                _set_finding_status(s, step.finding_id, FindingStatus.ROLLED_BACK, self.actor)

    # -- audit -----------------------------------------------------------
    def audit_verify(self) -> audit.VerifyResult:
        with self.db.reading() as s:
            return audit.verify(s)

    def audit_export(self) -> Iterator[dict[str, Any]]:
        with self.db.reading() as s:
            yield from audit.export_rows(s)


def _bind_progress(progress: Callable[[Path, int, int], None], path: Path, size: int) -> Progress:
    def on_progress(done: int) -> None:
        progress(path, done, size)

    return on_progress


def _run_commits(s: Session, step_ids: list[int]) -> list[str]:
    from jupiter.store.tables import RunStepRow

    rows = [s.get(RunStepRow, sid) for sid in step_ids]
    return [r.commit for r in sorted(filter(None, rows), key=lambda r: r.seq) if r.commit]


def _revert_git(target: Target, branch: str, commits: list[str], run_id: int) -> None:
    """Undo a git-delivered run by reverting its commits on its branch."""
    from jupiter.git_delivery import GitDelivery
    from jupiter.targets.local import LocalTarget

    assert isinstance(target, LocalTarget)
    git = GitDelivery(target.root)
    git.resume(branch, checkout=True)
    git.revert(commits, f"Revert Jupiter run {run_id}")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_asset_file(path: Path) -> list[AssetSpec]:
    """Read ``assets.yaml``: a list of assets, or a mapping with ``assets:``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if not path.is_file():
        raise InputError(f"asset file {path} does not exist; give the path of an assets.yaml")
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            f"{path}{where} is not valid YAML ({getattr(exc, 'problem', None) or exc}); "
            "fix the file and import again"
        ) from None
    if isinstance(data, dict) and "assets" in data:
        data = data["assets"]
    if not isinstance(data, list):
        raise InputError(f"{path} must hold a list of assets (or a mapping with an 'assets' list)")
    specs: list[AssetSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(data, start=1):
        try:
            spec = AssetSpec.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(entry)"
            raise InputError(
                f"{path}: asset #{index}, field {loc}: {err['msg']}; fix it and import again"
            ) from None
        if spec.id in seen:
            raise InputError(f"{path}: asset id {spec.id!r} appears twice; ids must be unique")
        seen.add(spec.id)
        specs.append(spec)
    return specs


def dumps(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
