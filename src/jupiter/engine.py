"""The engine facade: the one entry point the CLI (and later the API, web UI
and copilot) calls. Every method that changes state runs in one transaction
together with its audit entry."""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from jupiter import audit, waivers
from jupiter.approvals import Approving
from jupiter.auditing import Auditing
from jupiter.compliance import Complying
from jupiter.errors import InputError, StoreConflict
from jupiter.exporting import Exporting
from jupiter.fixing import Fixing
from jupiter.governing import Governing
from jupiter.integrating import Integrating
from jupiter.models import AssetSpec, FindingStatus, Severity
from jupiter.permissions import requires
from jupiter.policing import Policing
from jupiter.pull_requests import PullRequesting
from jupiter.rollback_points import RollbackPoints
from jupiter.rollbacks import RollingBack
from jupiter.store import assets as asset_repo
from jupiter.store import findings as finding_repo
from jupiter.store.db import Database
from jupiter.store.tables import AuditHeadRow, utcnow
from jupiter.waivers import Excepting
from jupiter.workspace import Workspace
from jupiter.yamlfile import read_yaml

if TYPE_CHECKING:
    from jupiter.plugins.registry import Registry
    from jupiter.remediations import Remediations
    from jupiter.schedules import Schedules

Progress = Callable[[int], None]


def default_actor() -> str:
    return os.environ.get("JUPITER_ACTOR") or os.environ.get("USER") or "unknown"


@dataclass
class IngestReport:
    files: list[dict[str, Any]] = field(default_factory=list)
    stats: finding_repo.IngestStats = field(default_factory=finding_repo.IngestStats)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, **self.stats.to_json()}


class Engine(
    Fixing,
    Exporting,
    RollingBack,
    RollbackPoints,
    Auditing,
    Integrating,
    Governing,
    Policing,
    Excepting,
    Complying,
    Approving,
    PullRequesting,
):
    """Jupiter's core, bound to one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        actor: str | None = None,
        token: str | None = None,
        db: Database | None = None,
    ) -> None:
        """``token`` (an API token) authenticates on first use and then
        stands for its user, whatever ``actor`` says. ``db`` shares an
        already migrated database (a server opens one per process and an
        Engine per request); ``close`` then leaves it open."""
        self.workspace = workspace
        self.actor = actor or default_actor()
        self._token = token
        self._db: Database | None = db
        self._owns_db = db is None
        self._registry: Registry | None = None
        self._remediations: Remediations | None = None

    @classmethod
    def open(
        cls,
        home: Path | None = None,
        database_url: str | None = None,
        actor: str | None = None,
        token: str | None = None,
    ) -> Engine:
        return cls(Workspace.resolve(home, database_url), actor, token)

    @property
    def remediations(self) -> Remediations:
        """The remediation workflows (a composed service, see docs/workflows.md)."""
        if self._remediations is None:
            from jupiter.remediations import Remediations

            self._remediations = Remediations(self)
        return self._remediations

    @property
    def db(self) -> Database:
        """The database, created and migrated on first use."""
        if self._db is None:
            self.workspace.ensure()
            db = Database(self.workspace.database_url)
            db.migrate()
            from jupiter.integrations.config import load_routing
            from jupiter.integrations.outbox import ROUTING_KEY

            db.info[ROUTING_KEY] = load_routing(self.workspace.home)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None and self._owns_db:
            self._db.dispose()
        self._db = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schedules(self) -> Schedules:
        """Continuous detection: scheduled scans and ingests (``jupiter schedules``)."""
        from jupiter.schedules import Schedules

        return Schedules(self)

    # -- workspace -------------------------------------------------------
    @requires("workspace.init")
    def init(self) -> dict[str, Any]:
        """Create the workspace; on one without users the actor becomes its admin."""
        with self.db.transaction() as s:
            fresh = s.get(AuditHeadRow, 1) is None
            admin = self._enrol_first_admin(s)
            if fresh:
                data = {"admin": admin} if admin else {}
                audit.record(s, self.actor, "workspace.initialised", str(self.workspace.home), data)
            elif admin is not None:
                audit.record(s, self.actor, "user.created", f"user:{admin}", {"roles": ["admin"]})
        return {"home": str(self.workspace.home), "created": fresh, "admin": admin}

    # -- assets ----------------------------------------------------------
    @requires("assets.import")
    def import_assets(self, path: Path) -> dict[str, Any]:
        specs = load_asset_file(path)

        def upsert() -> dict[str, Any]:
            created: list[str] = []
            updated: list[str] = []
            # Read-then-write: another importer of the same assets must not
            # insert in between (SQLite: the write lock first; PostgreSQL:
            # the unique key refuses it and the import runs once more, now
            # updating what the other one created).
            with self.db.transaction(immediate=True) as s:
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

        try:
            return upsert()
        except StoreConflict:
            return upsert()

    @requires("assets.read")
    def list_assets(self) -> list[dict[str, object]]:
        with self.db.reading() as s:
            return [asset_repo.asset_to_json(a) for a in asset_repo.list_assets(s)]

    # -- ingestion -------------------------------------------------------
    @requires("findings.ingest", scope="asset", kind="asset")
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
            # Concurrent ingests into one workspace: SQLite lets one writer in
            # at a time (the others wait up to the busy timeout), PostgreSQL
            # aborts one side of a deadlock; either way the loser is rolled
            # back whole and runs again, so the result equals a sequential run.
            return self.db.retrying(
                lambda: self._ingest(paths, asset, fmt, strict_assets, progress)
            )
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
        with self.db.transaction(immediate=True) as s:
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
            waivers.apply_waivers(s, self.actor, now)
        return report

    # -- findings --------------------------------------------------------
    @requires("findings.read")
    def list_findings(self, **filters: Any) -> list[dict[str, Any]]:
        from jupiter.plugins.domains import load_domains

        for key, allowed in (
            ("status", [e.value for e in FindingStatus]),
            ("severity", [e.value for e in Severity]),
            ("category", load_domains().categories()),
        ):
            value = filters.get(key)
            if value is not None and value not in allowed:
                raise InputError(f"unknown {key} {value!r}; use one of: {', '.join(allowed)}")
        with self.db.reading() as s:
            return finding_repo.list_findings_json(s, **filters)

    @requires("findings.read", scope="ref", kind="finding")
    def get_finding(self, ref: str) -> dict[str, Any]:
        with self.db.reading() as s:
            row = finding_repo.get_finding(s, ref)
            return finding_repo.finding_to_json(row, finding_repo.sources_for(s, [row.id])[row.id])

    # -- advisories -----------------------------------------------------
    @requires("advisories.import")
    def import_advisories(self, path: Path) -> dict[str, Any]:
        """Import OSV records (directory, record or per-ecosystem zip) into
        the workspace's offline advisory database: all or nothing."""
        from jupiter.advisories import AdvisoryDB

        self.workspace.ensure()
        report = AdvisoryDB(self.workspace.advisories).import_path(path)
        with self.db.transaction() as s:
            audit.record(s, self.actor, "advisories.imported", str(path), report.to_json())
        return report.to_json()

    # -- generated configurations ---------------------------------------
    @requires("config.generate")
    def generate_config(
        self,
        kind: str,
        params: dict[str, object],
        output: Path | None = None,
        force: bool = False,
    ) -> GeneratedReport:
        """Render a secure configuration (and write it under ``output``);
        audited with the parameters and each file's hash, never its content."""
        from jupiter.generate import KINDS, generate, write_generated

        if kind not in KINDS:
            raise InputError(f"cannot generate {kind!r}; choose one of: {', '.join(KINDS)}")
        config = generate(kind, params)
        written = write_generated(config, output, force=force) if output else []
        report = GeneratedReport(config.kind, config.files, config.modes, config.notes, written)
        with self.db.transaction() as s:
            audit.record(
                s,
                self.actor,
                "config.generated",
                f"generate:{config.kind}",
                {
                    "params": {k: str(v) for k, v in params.items()},
                    "files": {
                        k: hashlib.sha256(v.encode()).hexdigest() for k, v in config.files.items()
                    },
                    "written": [str(p) for p in written],
                },
            )
        return report

    # -- custom scripts -------------------------------------------------
    @requires("scripts.manage")
    def register_script(self, manifest: Path) -> dict[str, Any]:
        from jupiter.custom import register_script

        self.workspace.ensure()
        info = register_script(self.workspace, manifest)
        with self.db.transaction() as s:
            audit.record(s, self.actor, "script.registered", f"script:{info['name']}", info)
        self._registry = None
        return info

    @requires("scripts.read")
    def list_scripts(self) -> list[dict[str, Any]]:
        from jupiter.custom import list_scripts

        return list_scripts(self.workspace)

    @requires("scripts.manage")
    def remove_script(self, name: str) -> None:
        from jupiter.custom import remove_script

        remove_script(self.workspace, name)
        with self.db.transaction() as s:
            audit.record(s, self.actor, "script.removed", f"script:{name}", {})
        self._registry = None


@dataclass
class GeneratedReport:
    kind: str
    files: dict[str, str]
    modes: dict[str, int]
    notes: list[str]
    written: list[Path]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "files": self.files,
            "modes": {k: oct(v) for k, v in self.modes.items()},
            "notes": self.notes,
            "written": [str(p) for p in self.written],
        }


def _bind_progress(progress: Callable[[Path, int, int], None], path: Path, size: int) -> Progress:
    def on_progress(done: int) -> None:
        progress(path, done, size)

    return on_progress


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_asset_file(path: Path) -> list[AssetSpec]:
    """Read ``assets.yaml``: a list of assets, or a mapping with ``assets:``."""
    if not path.is_file():
        raise InputError(f"asset file {path} does not exist; give the path of an assets.yaml")
    data = read_yaml(path, "", "import again")
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
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise InputError(
                f"{path}: asset #{index}, field {loc}: {msg}; fix it and import again"
            ) from None
        if spec.id in seen:
            raise InputError(f"{path}: asset id {spec.id!r} appears twice; ids must be unique")
        seen.add(spec.id)
        specs.append(spec)
    return specs


def dumps(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
