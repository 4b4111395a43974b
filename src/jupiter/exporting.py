"""Findings and their proposed fixes as SARIF (:mod:`jupiter.export.sarif`).
:class:`jupiter.engine.Engine` inherits it."""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

from jupiter import audit
from jupiter.errors import InputError, NotFoundError
from jupiter.models import FindingStatus
from jupiter.permissions import requires
from jupiter.plans import Plan
from jupiter.store import assets as asset_repo
from jupiter.store import findings as finding_repo
from jupiter.store.tables import AssetRow

if TYPE_CHECKING:
    from jupiter.export.sarif import FixOutcome
    from jupiter.store.db import Database

#: Statuses ``jupiter fix`` plans for (the others have no fix to offer).
FIXABLE = (FindingStatus.OPEN.value, FindingStatus.FAILED.value)


class Exporting:
    """Mixed into :class:`jupiter.engine.Engine`."""

    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

        def _require(self, action: str, kind: Any = "none", ref: Any = None) -> None: ...

        def _candidates(
            self,
            asset_id: str,
            params: dict[str, dict[str, object]],
            only: list[str] | None,
            unhandled: list[dict[str, Any]],
        ) -> list[Any]: ...

    @requires("findings.read", scope="asset", kind="asset")
    def export_sarif(
        self,
        asset: str | None = None,
        status: str | None = None,
        *,
        finding: str | None = None,
        fixes: bool = True,
        raw_params: list[str] | None = None,
    ) -> dict[str, Any]:
        """The findings (of ``asset``, with ``status``; or the one ``finding``)
        as a SARIF 2.1.0 log. With ``fixes`` (which needs ``plan.create`` on
        each asset), every finding ``jupiter fix`` would fix carries the exact
        replacements its plan makes, planned the way ``jupiter fix`` plans
        them; with ``finding``, that finding's plan alone (``jupiter plan``).
        Reads the targets, changes nothing; audited as ``findings.exported``."""
        import jupiter
        from jupiter.export.sarif import ExportFinding, build_log

        if status is not None and status not in {s.value for s in FindingStatus}:
            allowed = ", ".join(s.value for s in FindingStatus)
            raise InputError(f"unknown status {status!r}; use one of: {allowed}")
        with self.db.reading() as s:
            if finding is not None:
                one = finding_repo.get_finding(s, finding)
                rows = [one]
            else:
                if asset is not None and s.get(AssetRow, asset) is None:
                    raise NotFoundError(
                        f"no asset {asset!r}; see `jupiter assets list` for the asset ids"
                    )
                rows = finding_repo.list_findings(s, asset=asset, status=status)
            sources = finding_repo.sources_for(s, [r.id for r in rows])
            data = [
                {
                    **finding_repo.finding_to_json(r, sources[r.id]),
                    "tool_version": (r.extra or {}).get("tool_version"),
                }
                for r in rows
            ]
            connections = {
                a: asset_repo.get_asset(s, a).connection for a in sorted({r.asset_id for r in rows})
            }
        outcomes: dict[int, FixOutcome] = {}
        originals: dict[tuple[str, str], list[str]] = {}
        notes: dict[str, str] = {}
        if fixes:
            wanted = {r.id for r in rows if r.status in FIXABLE}
            for asset_id, connection in connections.items():
                if not any(r.asset_id == asset_id and r.id in wanted for r in rows):
                    continue
                if not connection:
                    notes[asset_id] = (
                        f"asset {asset_id!r} has no connection, so Jupiter cannot read its files "
                        "to plan fixes"
                    )
                    continue
                self._require("plan.create", "asset", asset_id)
                only_id = rows[0].id if finding is not None else None
                found, lines = self._plan_fixes(asset_id, connection, only_id, raw_params, wanted)
                outcomes.update(found)
                originals.update({(asset_id, p): v for p, v in lines.items()})
        items = [ExportFinding(d, _root_uri(connections[d["asset"]])) for d in data]
        for item in items:
            note = notes.get(item.data["asset"])
            if note and item.data["status"] in FIXABLE and item.data["id"] not in outcomes:
                from jupiter.export.sarif import FixOutcome as Outcome

                outcomes[item.data["id"]] = Outcome(item.data["id"], note=f"no fix: {note}")
        log = build_log(items, outcomes, originals, jupiter.__version__)
        fixed = sum(1 for o in outcomes.values() if o.changes)
        subject = f"finding:{finding}" if finding else f"asset:{asset}" if asset else "findings"
        with self.db.transaction() as s:
            audit.record(
                s,
                self.actor,
                "findings.exported",
                subject,
                {
                    "format": "sarif",
                    "asset": asset,
                    "status": status,
                    "finding": finding,
                    "results": len(items),
                    "fixes": fixed,
                },
            )
        return log

    def _plan_fixes(
        self,
        asset_id: str,
        connection: str,
        only_id: int | None,
        raw_params: list[str] | None,
        exported: set[int],
    ) -> tuple[dict[int, FixOutcome], dict[str, list[str]]]:
        """Plan the asset's fixable findings as ``jupiter fix`` does (one
        chain, each plan on what the previous ones leave) and reduce the
        chain to replacements of the original files."""
        from jupiter.export.sarif import FixOutcome, StepInput, attribute_chain, split_lines
        from jupiter.fixing import parse_params_for
        from jupiter.runs import plan_chain
        from jupiter.targets.factory import open_target

        params = parse_params_for(self, raw_params)  # type: ignore[arg-type]
        unhandled: list[dict[str, Any]] = []
        candidates = self._candidates(asset_id, params, None, unhandled)
        if only_id is not None:
            candidates = [c for c in candidates if c.finding_id == only_id]
        originals: dict[str, bytes | None] = {}
        target = open_target(connection)
        with closing(target):
            chain = plan_chain(candidates, target)
            for _, plan in chain:
                if isinstance(plan, Plan):
                    for path in plan.touched_paths():
                        if path not in originals:
                            try:
                                originals[path] = target.read_bytes(path)
                            except (FileNotFoundError, IsADirectoryError):
                                originals[path] = None
        steps = []
        for cand, planned in chain:
            if cand.finding_id is None:  # every candidate of a stored finding has one
                continue
            if isinstance(planned, Plan):
                steps.append(StepInput(cand.finding_id, planned))
            else:
                problem = f"it could not be planned: {planned}"
                steps.append(StepInput(cand.finding_id, None, problem))
        outcomes = attribute_chain(originals, steps, exported)
        for u in unhandled:
            if u["finding"] in exported:
                outcomes[u["finding"]] = FixOutcome(u["finding"], note=f"no fix: {u['reason']}")
        lines: dict[str, list[str]] = {}
        for path, data in originals.items():
            try:
                lines[path] = [] if data is None else split_lines(data.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # attribute_chain gave it no fix
        return outcomes, lines


def _root_uri(connection: str | None) -> str | None:
    """``file:///root/`` for a local asset, else None (no local path to name)."""
    from jupiter.targets.connection import LocalConnection, parse_connection

    if not connection:
        return None
    try:
        parsed = parse_connection(connection)
    except InputError:
        return None
    if not isinstance(parsed, LocalConnection):
        return None
    return parsed.root.resolve().as_uri().rstrip("/") + "/"
