"""Compliance: built-in checks mapped to controls (CIS ids where they
correspond, Jupiter's own otherwise; ``policies/controls.yaml``), evaluated
per asset after every scan and after every fix run, and reported
before → after with exceptions marked.

A control applies to an asset once a rule of its domain was seen there; it
passes when none of its rules has an unresolved finding on the asset, is
``excepted`` when the only ones left are covered by an exception, and fails
otherwise. :class:`jupiter.engine.Engine` inherits :class:`Complying`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import InputError
from jupiter.models import FindingStatus
from jupiter.permissions import requires
from jupiter.store.tables import AssetRow, ComplianceResultRow, FindingRow, utcnow

if TYPE_CHECKING:
    from jupiter.store.db import Database

CONTROLS = Path(__file__).parent / "policies" / "controls.yaml"
UNRESOLVED = {
    FindingStatus.OPEN.value,
    FindingStatus.FAILED.value,
    FindingStatus.IN_PROGRESS.value,
    FindingStatus.ROLLED_BACK.value,
}


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    domain: str
    prefix: str
    rules: frozenset[str]
    cis: str | None
    framework: str | None


@cache
def load_controls(path: Path = CONTROLS) -> tuple[Control, ...]:
    from jupiter.yamlfile import read_yaml

    data = read_yaml(path, "", "fix the controls file")
    frameworks, domains = data["frameworks"], data["domains"]
    out = []
    for c in data["controls"]:
        cis = c.get("cis")
        out.append(
            Control(
                id=c["id"],
                title=c["title"],
                domain=c["domain"],
                prefix=domains[c["domain"]],
                rules=frozenset(c["rules"]),
                cis=cis,
                framework=frameworks[cis.split()[0]] if cis else frameworks["jupiter"],
            )
        )
    return tuple(out)


def evaluate(
    s: Session, asset_id: str, run_id: int | None = None, now: datetime | None = None
) -> list[ComplianceResultRow]:
    """Evaluate every applicable control on ``asset_id`` and store the results."""
    now = now or utcnow()
    rows = s.execute(
        select(FindingRow.id, FindingRow.rule_id, FindingRow.status).where(
            FindingRow.asset_id == asset_id
        )
    ).all()
    results = []
    for control in load_controls():
        if not any(rule.startswith(control.prefix) for _, rule, _ in rows):
            continue
        mine = [(fid, status) for fid, rule, status in rows if rule in control.rules]
        failing = [fid for fid, status in mine if status in UNRESOLVED]
        excepted = [fid for fid, status in mine if status == FindingStatus.EXCEPTED.value]
        status = "fail" if failing else "excepted" if excepted else "pass"
        row = ComplianceResultRow(
            asset_id=asset_id,
            control_id=control.id,
            status=status,
            findings=[str(f) for f in sorted(failing or excepted)],
            run_id=run_id,
            evaluated_at=now,
        )
        s.add(row)
        results.append(row)
    s.flush()
    return results


class Complying:
    """Mixed into :class:`jupiter.engine.Engine`."""

    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    def _evaluate_compliance(self, asset_id: str, run_id: int | None) -> None:
        with self.db.transaction() as s:
            results = evaluate(s, asset_id, run_id)
            summary = {r.control_id: r.status for r in results}
            audit.record(
                s,
                self.actor,
                "compliance.evaluated",
                f"asset:{asset_id}",
                {"run": run_id, "controls": summary},
            )

    @requires("compliance.evaluate", scope="asset", kind="asset")
    def evaluate_compliance(self, asset: str) -> dict[str, Any]:
        """Evaluate the controls on ``asset`` now and store the result."""
        with self.db.reading() as s:
            if s.get(AssetRow, asset) is None:
                raise InputError(f"asset {asset!r} does not exist; see `jupiter assets list`")
        self._evaluate_compliance(asset, None)
        return self.compliance_report(asset=asset)[0]

    @requires("compliance.read")
    def compliance_report(
        self, asset: str | None = None, group: str | None = None
    ) -> list[dict[str, Any]]:
        """Per asset, per control: the previous and latest status."""
        controls = {c.id: c for c in load_controls()}
        with self.db.reading() as s:
            q = select(AssetRow.id).order_by(AssetRow.id)
            if asset is not None:
                if s.get(AssetRow, asset) is None:
                    raise InputError(f"asset {asset!r} does not exist; see `jupiter assets list`")
                q = q.where(AssetRow.id == asset)
            if group is not None:
                q = q.where(AssetRow.group_name == group)
            assets = list(s.scalars(q))
            if group is not None and not assets:
                raise InputError(f"no asset is in group {group!r}; see `jupiter assets list`")
            out = []
            for asset_id in assets:
                history = s.scalars(
                    select(ComplianceResultRow)
                    .where(ComplianceResultRow.asset_id == asset_id)
                    .order_by(ComplianceResultRow.id)
                ).all()
                times = sorted({r.evaluated_at for r in history})
                if not times:
                    continue
                latest = {r.control_id: r for r in history if r.evaluated_at == times[-1]}
                before: dict[str, ComplianceResultRow] = {}
                if len(times) > 1:
                    before = {r.control_id: r for r in history if r.evaluated_at == times[-2]}
                items = []
                for cid, row in sorted(latest.items()):
                    c = controls.get(cid)
                    prev = before.get(cid)
                    items.append(
                        {
                            "control": cid,
                            "cis": c.cis if c else None,
                            "framework": c.framework if c else None,
                            "title": c.title if c else "",
                            "before": prev.status if prev else None,
                            "after": row.status,
                            "findings": row.findings,
                        }
                    )
                counts = {k: sum(i["after"] == k for i in items) for k in ("pass", "fail")}
                counts["excepted"] = sum(i["after"] == "excepted" for i in items)
                out.append(
                    {
                        "asset": asset_id,
                        "evaluated_at": times[-1].isoformat(timespec="seconds"),
                        "run": latest[next(iter(latest))].run_id if latest else None,
                        "summary": counts,
                        "controls": items,
                    }
                )
            return out
