"""The remediation workflow's intents: rollback point, script (a planned
remediation and its exported script), staging test, approval, deploy and
rollback. Each is one or two :class:`jupiter.engine.Engine` calls; the
engine checks the user's role."""

from __future__ import annotations

from typing import Any

from jupiter.copilot.model import Response
from jupiter.copilot.turn import Refusal, Turn
from jupiter.remediations.results import RemediationInfo
from jupiter.store.tables import RemediationRow, utcnow

#: Vulnerability types (the seed's ``vulnerability_type``) and the finding
#: category Jupiter files them under.
CATEGORIES: dict[str, str] = {"sql_injection": "code.sql_injection"}
#: Statuses from which a remediation's deploy can be driven on.
_DRIVABLE = {"approved", "deploying", "verifying"}


def create_rollback_point(turn: Turn) -> Response:
    kind = turn.meta.get("snapshot_type", "full")
    if kind != "full":
        raise Refusal(
            f"snapshot_type {kind!r} is not available: a rollback point is always a full "
            "snapshot of the asset's files"
        )
    asset = turn.asset()
    assert asset is not None
    point = turn.engine.create_rollback_point(asset, reason=turn.query.message)
    turn.touched["snapshot_id"] = point["snapshot_id"]
    return turn.ok(
        f"Rollback point {point['snapshot_id']} of {asset}: {point['files']} file(s), "
        f"{point['bytes']} bytes",
        {"snapshot": point},
    )


def _category(vtype: str) -> str:
    from jupiter.plugins.domains import load_domains

    if vtype in CATEGORIES:
        return CATEGORIES[vtype]
    known = load_domains().categories()
    for cat in known:
        if cat == vtype or cat.split(".")[-1] == vtype:
            return cat
    raise Refusal(
        f"no remediator handles vulnerability type {vtype!r}; the categories Jupiter fixes "
        f"are: {', '.join(known)}"
    )


def _matching(turn: Turn, category: str, component: str | None, asset: str | None) -> list[Any]:
    rows = turn.engine.list_findings(status="open", category=category, asset=asset)
    if component:
        comp = component.strip("/")
        rows = [
            f
            for f in rows
            if (f["location"].get("path") or "") == comp
            or (f["location"].get("path") or "").endswith("/" + comp)
        ]
    return rows


def generate_script(turn: Turn) -> Response:
    vtype = turn.first("vulnerability_type") or turn.context.get("vulnerability_type")
    if vtype is None:
        raise Refusal("which vulnerability? say e.g. 'SQL injection' or give vulnerability_type")
    category = _category(str(vtype))
    component = turn.first("affected_component", "component")
    asset = turn.asset(required=False) if turn.first("asset_id", "asset") else None
    found = _matching(turn, category, component, asset)
    if not found and asset is not None:
        # Detection on demand: the named asset's built-in scan, then look again.
        with turn.engine.db.reading() as s:
            from jupiter.store.tables import AssetRow

            row = s.get(AssetRow, asset)
            conn = row.connection if row else None
        if conn:
            turn.engine.scan(conn, asset=asset)
            found = _matching(turn, category, component, asset)
    where = f" in {component}" if component else ""
    if not found:
        raise Refusal(
            f"no open {category} finding{where}"
            + (f" on {asset}" if asset else "")
            + "; scan the asset first (`jupiter scan`) or name it with metadata asset_id"
        )
    assets = sorted({f["asset"] for f in found})
    info = {a["id"]: a for a in turn.engine.list_assets()}
    groups = {info[a].get("group") for a in assets if a in info}
    strategy = turn.first("deployment_strategy", "strategy")
    ids = [int(f["id"]) for f in found]
    if len(groups) == 1 and None not in groups:
        group = str(next(iter(groups)))
        created = turn.engine.remediations.create(
            group=group, findings=ids, batch=True, strategy=strategy
        )
    elif len(assets) == 1:
        group = None
        created = turn.engine.remediations.create(asset=assets[0], findings=ids, strategy=strategy)
    else:
        raise Refusal(
            f"the matching findings are on {', '.join(assets)} in different groups; name one "
            "asset with metadata asset_id"
        )
    if created.remediation is None:
        raise Refusal(f"nothing to change: the plan for {category}{where} is empty (already fixed)")
    rem = created.remediation
    fmt = str(turn.meta.get("format", "python"))
    content = turn.engine.export_script(str(ids[0]), fmt)
    ext = {"python": "py", "bash": "sh", "ansible": "yml"}.get(fmt, fmt)
    script = {
        "id": rem.id,
        "filename": f"remediate_{vtype}.{ext}",
        "format": fmt,
        "content": content,
        "remediation": rem.id,
        "plan_hash": rem.plan_hash,
        "workflow": rem.workflow,
        "findings": ids,
        "targets": [{"asset": t.asset, "role": t.role, "status": t.status} for t in rem.targets],
        "diff": [s["diff"] for t in created.targets for s in t["steps"]][:1],
    }
    turn.touched.update(
        remediation=rem.id, findings=ids, vulnerability_type=vtype, component=component
    )
    scope = f"group {group}" if group else assets[0]
    return turn.ok(
        f"Script {script['filename']} for {len(ids)} finding(s) on {scope}: remediation "
        f"{rem.id} ({rem.workflow}), planned for {len(rem.targets)} target(s)",
        {"script": script, "remediation": _summary(rem)},
    )


def _summary(info: RemediationInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "status": info.status,
        "workflow": info.workflow,
        "stage": info.stage,
        "plan_hash": info.plan_hash,
        "reason": info.reason,
        "targets": [t.to_json() for t in info.targets],
    }


def test_staging(turn: Turn) -> Response:
    env = turn.first("environment")
    if env not in (None, "staging"):
        raise Refusal(f"tests run in staging, not {env}; deploying to production is a deploy")
    rem = turn.remediation()
    info = turn.engine.remediations.show(rem, timeline=False)
    if "test" not in info.facts:
        if info.status != "planned":
            raise Refusal(f"{rem} is {info.status} and has no staging test result")
        info = turn.engine.remediations.run(rem)
    test = info.facts.get("test")
    if not isinstance(test, dict):
        raise Refusal(f"{rem} is {info.status}: {info.reason or 'the test did not run'}")
    data = {**test, "remediation": _summary(info)}
    passed, ran = test.get("tests_passed", 0), test.get("tests_run", 0)
    verdict = "ready for production" if test.get("ready_for_production") else "NOT ready"
    return Response(
        bool(test.get("ready_for_production")),
        turn.parsed.intent,
        f"{rem} on {test.get('target')}: {passed}/{ran} checks passed, {verdict}"
        + (f" ({test['reason']})" if test.get("reason") else ""),
        data,
    )


def approve(turn: Turn) -> Response:
    rem = turn.remediation()
    summary = turn.engine.approve_remediation(
        rem, comment=str(turn.meta.get("comment", turn.query.message)), run=False
    )
    return turn.ok(
        f"{rem}: approval recorded, outcome {summary['outcome']}",
        {"approval": summary, "status": summary["status"]},
    )


def _deploy_strategy(turn: Turn, rem: str) -> str | None:
    with turn.engine.db.reading() as s:
        row = s.get(RemediationRow, int(rem.removeprefix("REM-")))
        stages = row.definition.get("stages", []) if row else []
    for st in stages:
        if st.get("kind") == "deploy":
            return str((st.get("strategy") or {}).get("type", "rolling"))
    return None


def deploy(turn: Turn) -> Response:
    rem = turn.remediation()
    info = turn.engine.remediations.show(rem, timeline=False)
    wanted = turn.first("deployment_strategy", "strategy")
    planned = _deploy_strategy(turn, rem)
    if wanted and planned and str(wanted).replace("_", "-") != planned:
        raise Refusal(
            f"{rem} was planned to deploy {planned}; the strategy is fixed when the script is "
            f"generated, so generate it again with deployment_strategy {wanted!r}"
        )
    approval: dict[str, Any] | None = None
    if info.status == "awaiting_approval":
        approval = turn.engine.show_approval(rem)
        if approval["outcome"] not in ("approved", "auto_approved"):
            reasons = "; ".join(approval["reasons"]) or approval["outcome"]
            raise Refusal(
                f"{rem} awaits approval ({reasons}); an approver runs "
                f"`jupiter approvals approve {rem}`",
                {"approval": approval},
            )
        # What the worker's next round would do: apply the policy's approval
        # (audited as approval.auto), which drives the deploy.
        turn.engine.approvals_due(utcnow())
    elif info.status in _DRIVABLE:
        turn.engine.remediations.run(rem)
    elif info.status in ("planned", "testing", "tested"):
        raise Refusal(f"{rem} is {info.status}: test it in staging before deploying")
    elif info.status not in ("completed", "rolled_back", "failed"):
        raise Refusal(f"{rem} is {info.status}; it cannot be deployed now ({info.reason})")
    info = turn.engine.remediations.show(rem)
    deployed = [t for t in info.targets if t.role == "production"]
    states = {t.asset: t.status for t in deployed}
    data: dict[str, Any] = {
        "deployment_id": f"DEPLOY-{rem}",
        "status": info.status,
        "strategy": planned,
        "remediation": _summary(info),
        "targets": states,
        "approval": approval["outcome"] if approval else None,
        "result": info.result,
        "timeline": [e.to_json() for e in info.timeline or [] if e.stage in ("deploy", "verify")],
    }
    good = info.status in ("completed", "deploying", "verifying", "approved")
    where = ", ".join(f"{a} {s}" for a, s in states.items())
    why = f" ({info.reason})" if info.reason and not good else ""
    return Response(good, turn.parsed.intent, f"DEPLOY-{rem}: {info.status}{why}; {where}", data)


def rollback(turn: Turn) -> Response:
    snap = turn.first("snapshot_id")
    reason = str(turn.meta.get("reason", turn.query.message))
    if snap is not None:
        result = turn.engine.restore_rollback_point(str(snap), reason=reason)
        turn.touched.update(snapshot_id=result["snapshot_id"], asset=result["asset"])
        restored = result["status"] == "restored"
        mismatched = f", {len(result['mismatched'])} mismatched" if result["mismatched"] else ""
        return Response(
            restored,
            turn.parsed.intent,
            f"{result['asset']} restored to {result['snapshot_id']}: "
            f"{result['verified_files']} file(s) verified by sha256, "
            f"{len(result['written'])} rewritten{mismatched}",
            {"rollback": result, "status": "rolled_back" if restored else "incomplete"},
        )
    if turn.first("remediation_id", "script_id", "remediation") is None and (
        turn.context.get("remediation") is None and turn.context.get("snapshot_id")
    ):
        snap_id = turn.context["snapshot_id"]
        raise Refusal(f"roll back to which point? name it: 'Rollback to snapshot {snap_id}'")
    rem = turn.remediation()
    info = turn.engine.remediations.rollback(rem)
    return Response(
        info.status in ("rolled_back", "cancelled") or bool(info.facts.get("manual_rollback")),
        turn.parsed.intent,
        f"{rem} rolled back: {info.status}",
        {"status": info.status, "remediation": _summary(info), "result": info.result},
    )
