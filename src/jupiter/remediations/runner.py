"""The durable runner: drives a remediation from its stored stage index.

Each stage boundary is committed before the stage's side effects (the
timeline's ``started``) and after them (``stage_index`` moves on), and each
target's deploy and rollback likewise; the stages re-read what is done when
entered again. So a process killed anywhere (``kill -9``) and then resumed
(``jupiter remediations resume`` or the worker) goes on where the store
says, without applying anything to a target twice. One process drives a
remediation at a time: it holds the remediation's lease, kept alive by a
heartbeat; a lease whose holder died (or expired) is taken over."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update

from jupiter.errors import ConflictError, JupiterError
from jupiter.faults import checkpoint
from jupiter.remediations.context import Ctx, Stop, Trigger
from jupiter.remediations.deploy import Inconclusive
from jupiter.remediations.stages import WAIT, stage_kind
from jupiter.remediations.targets import changed, rollback_target
from jupiter.states import ENDED_REMEDIATION, RemediationState
from jupiter.store.tables import RemediationRow, utcnow
from jupiter.targets.factory import pooled

M = RemediationState
LEASE_TTL = 30.0


class Lease:
    """The remediation's lease: who drives it, kept alive by a heartbeat."""

    def __init__(self, ctx: Ctx, ttl: float = LEASE_TTL) -> None:
        self.ctx, self.ttl = ctx, ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        now = utcnow()
        with self.ctx.db.transaction() as s:
            row = self.ctx.rem(s)
            if row.lease_holder and not _takeable(row, now):
                raise ConflictError(
                    f"{self.ctx.label} is being driven by {row.lease_holder} (lease until "
                    f"{row.expires_at.isoformat(timespec='seconds') if row.expires_at else '?'}); "
                    "wait for it, or resume it after that process ended"
                )
            res = s.execute(
                update(RemediationRow)
                .where(
                    RemediationRow.id == self.ctx.rem_id,
                    or_(
                        RemediationRow.lease_holder.is_(None),
                        RemediationRow.lease_holder == row.lease_holder,
                    ),
                )
                .values(
                    lease_holder=self.holder,
                    heartbeat_at=now,
                    expires_at=now + timedelta(seconds=self.ttl),
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(res, "rowcount", 1) != 1:  # pragma: no cover - lost a race
                raise ConflictError(f"{self.ctx.label} was taken by another process; try again")
            if row.lease_holder:
                from jupiter import audit

                audit.record(
                    s,
                    self.ctx.actor,
                    "remediation.lease_taken_over",
                    self.ctx.subject,
                    {"from": row.lease_holder, "to": self.holder},
                )
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            now = utcnow()
            try:
                with self.ctx.db.transaction() as s:
                    s.execute(
                        update(RemediationRow)
                        .where(
                            RemediationRow.id == self.ctx.rem_id,
                            RemediationRow.lease_holder == self.holder,
                        )
                        .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.ttl))
                        .execution_options(synchronize_session=False)
                    )
            except Exception:  # noqa: BLE001, S112 - a missed beat is retried next time
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.ctx.db.transaction() as s:
            s.execute(
                update(RemediationRow)
                .where(
                    RemediationRow.id == self.ctx.rem_id,
                    RemediationRow.lease_holder == self.holder,
                )
                .values(lease_holder=None, heartbeat_at=None, expires_at=None)
                .execution_options(synchronize_session=False)
            )


def _takeable(row: RemediationRow, now: Any) -> bool:
    """A lease may be taken over when it expired or its process is gone."""
    if row.expires_at is not None and row.expires_at < now:
        return True
    host, _, rest = (row.lease_holder or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdecimal():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def drive(ctx: Ctx) -> str:
    """Run the remediation on from where the store says; returns its state.
    Every stage reaches a target through one connection per host (the
    pool lives as long as this drive)."""
    with pooled(), Lease(ctx):
        rem = ctx.rem()
        if rem.status in {s.value for s in ENDED_REMEDIATION}:
            return rem.status
        if (rem.facts.get("rollback") or {}).get("status") == "rolling_back":
            info = rem.facts["rollback"]
            return roll_back_all(ctx, Trigger(info["reason"], info["target"], info["measured"]))
        stages = ctx.workflow.stages
        index = rem.stage_index
        while index < len(stages):
            stage = stages[index]
            kind = stage_kind(stage.kind)
            started = time.monotonic()
            ctx.event(stage.label, stage.kind, "started")
            checkpoint(f"stage.{stage.kind}.started")
            try:
                step = kind.run(ctx, stage)
            except Trigger as trig:
                ctx.event(
                    stage.label,
                    stage.kind,
                    "triggered",
                    started=started,
                    detail={"reason": trig.reason, "target": trig.target},
                )
                return roll_back_all(ctx, trig)
            except Stop as stop:
                ctx.event(
                    stage.label,
                    stage.kind,
                    "stopped",
                    started=started,
                    detail={"reason": stop.reason},
                )
                ctx.move(stop.to, facts={"reason": stop.reason}, reason=stop.reason)
                return stop.to.value
            except Inconclusive as inc:
                _ask_after_inconclusive(ctx, stage.label, inc)
                return M.WAITING_MANUAL.value
            if step is WAIT:
                ctx.event(stage.label, stage.kind, "waiting", started=started)
                return ctx.rem().status
            index += 1
            with ctx.write() as (s, row):
                row.stage_index = index
                ctx.event(stage.label, stage.kind, "finished", started=started, s=s)
            checkpoint(f"stage.{stage.kind}.finished")
        ctx.move(M.COMPLETED, facts={"system_status": "remediated"})
        return M.COMPLETED.value


def _ask_after_inconclusive(ctx: Ctx, stage: str, inc: Inconclusive) -> None:
    rem = ctx.rem()
    with ctx.write() as (_, row):
        row.facts = {
            **row.facts,
            "waiting": {
                "stage": f"{stage}:inconclusive",
                "question": f"the health judge could not decide ({inc.reason}); answer "
                "continue=true to go on, continue=false to roll back",
                "fields": {"continue": "bool"},
                "resume_state": rem.status,
            },
            "verdict": inc.verdict,
        }
    ctx.move(M.WAITING_MANUAL, facts={"verdict": inc.verdict})


def roll_back_staging(ctx: Ctx) -> list[dict[str, Any]]:
    """The staging test left its change on the group's staging assets (they
    mirror production); a remediation rolled back takes it off them too, so
    staging again mirrors production (and the next remediation's staging test
    has something to test). A staging asset that cannot be restored is
    reported; production's rollback stands either way."""
    staging = {t.asset_id for t in ctx.targets("staging")}
    out: list[dict[str, Any]] = []
    for run in (ctx.rem().facts.get("test") or {}).get("runs") or []:
        run_id, asset = run.get("run"), run.get("asset")
        if asset not in staging or not isinstance(run_id, int):
            continue
        try:
            done = ctx.engine.rollback(run_id)
        except JupiterError as exc:
            out.append({"asset": asset, "run": run_id, "ok": False, "error": str(exc)})
            continue
        out.append({"asset": asset, "run": run_id, "ok": bool(done.get("verified"))})
    return out


def roll_back_all(ctx: Ctx, trig: Trigger) -> str:
    """Roll back every target this remediation changed; end ``rolled_back``
    with the seed's facts (or ``failed`` when a target could not be restored)."""
    rem = ctx.rem()
    info = rem.facts.get("rollback") or {}
    if info.get("status") != "rolling_back":
        info = {
            "status": "rolling_back",
            "reason": trig.reason,
            "target": trig.target,
            "measured": trig.measured,
            "started_at": utcnow().isoformat(),
        }
        with ctx.write() as (s, row):
            row.facts = {**row.facts, "rollback": info}
            row.reason = trig.reason
            from jupiter import audit

            audit.record(s, ctx.actor, "remediation.rolling_back", ctx.subject, info)
    checkpoint("rollback.started")
    started = time.monotonic()
    results = [rollback_target(ctx, t.id) for t in ctx.targets(None) if changed(t)]
    ok = all(r["ok"] for r in results)
    staging = roll_back_staging(ctx)
    seconds = round(time.monotonic() - started, 3)
    result = {
        "status": M.ROLLED_BACK.value if ok else M.FAILED.value,
        "reason": trig.reason,
        "target": trig.target,
        "measured": trig.measured,
        "rollback_snapshot": rem.facts.get("rollback_snapshot"),
        "rollback_duration": f"{seconds} seconds",
        "rollback_seconds": seconds,
        "targets": [
            {"asset": r["asset"], "ok": r["ok"], "restored": r["restored"]} for r in results
        ],
        "staging": staging,
        "system_status": "restored to pre-remediation state"
        if ok
        else "NOT fully restored: "
        + "; ".join(
            f"{r['asset']}: {r['errors'] or r['mismatches']}" for r in results if not r["ok"]
        ),
    }
    with ctx.write() as (_, row):
        row.facts = {**row.facts, "rollback": {**info, "status": "done"}, "result": result}
        row.due_at = None
    to = M.ROLLED_BACK if ok else M.FAILED
    ctx.move(to, facts=result, reason=trig.reason)
    return to.value
