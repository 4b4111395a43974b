"""The deploy stage with ``deliver: pull_request``: a code remediation's
reviewed plans are committed on a branch of the target's git work tree
(one commit per finding), pushed with a lease and opened as a pull/merge
request (:mod:`jupiter.pull_requests`). The remediation then waits in
``deploying``: the worker's ``pull_requests`` source completes it when the
request is merged and cancels it when the request is closed unmerged; the
CI status of the request is its test result."""

from __future__ import annotations

from typing import Any

from jupiter.errors import JupiterError
from jupiter.remediations.context import Ctx, Stop
from jupiter.remediations.planning import candidates
from jupiter.remediations.slots import files
from jupiter.states import RemediationState, TargetState
from jupiter.workflows.definitions import DeployStage

M, T = RemediationState, TargetState
LOCK_TIMEOUT = 30.0


def deliver_stage(ctx: Ctx, stage: DeployStage) -> bool:
    """Open (or keep) the request; True when the stage is done (never: a
    person merges it), False to wait."""
    cfg = stage.pull_request
    assert cfg is not None
    rem = ctx.rem()
    if rem.facts.get("pull_requests") is not None:
        return False  # delivered; the poll settles it
    rows = [r for r in ctx.targets("production") if r.status != T.SKIPPED.value]
    if len(rows) != 1:
        raise Stop(
            M.FAILED,
            f"deliver: pull_request needs exactly one production target (one repository); "
            f"{ctx.label} has {len(rows)}: remediate each repository on its own",
        )
    trow = rows[0]
    with ctx.db.transaction() as s:
        target_row = ctx.target(s, trow.id)
        if target_row.status == T.PENDING.value:
            ctx.move_target(
                s, target_row, T.DEPLOYING, detail=f"{stage.label}: opening a pull request"
            )
    try:
        entries, run_id = _deliver(
            ctx, stage, trow.id, trow.asset_id, trow.connection, ctx.steps(trow)
        )
    except JupiterError as exc:
        with ctx.db.transaction() as s:
            ctx.move_target(s, ctx.target(s, trow.id), T.FAILED, detail=exc.message)
        raise Stop(
            M.FAILED, f"{stage.label}: could not deliver the pull request: {exc.message}"
        ) from None
    opened = [e for e in entries if e.get("number")]
    detail = "; ".join(f"{e['action']} #{e['number']} {e['url']}" for e in opened)
    with ctx.write() as (s, rem_row):
        rem_row.facts = {**rem_row.facts, "pull_requests": entries}
        trow2 = ctx.target(s, trow.id)
        ctx.move_target(
            s, trow2, T.DEPLOYED, detail=f"{stage.label}: {detail or 'nothing to deliver'}",
            facts={"run": run_id},
        )  # fmt: skip
        ctx.event(stage.label, "pull_request", "ok", target=trow.asset_id,
                  detail={"pull_requests": entries}, s=s)  # fmt: skip
    if not opened:
        raise Stop(M.FAILED, f"{stage.label}: no fix was verified, so no pull request was opened")
    return False


def _deliver(
    ctx: Ctx, stage: DeployStage, tid: int, asset: str, connection: str, steps: list[Any]
) -> tuple[list[dict[str, Any]], int]:
    from jupiter.fixing import _git_of
    from jupiter.locks import Holder, TargetLock
    from jupiter.pull_requests import PullRequestOptions, deliver, preflight
    from jupiter.runs import RunExecutor
    from jupiter.snapshots import BlobStore

    cfg = stage.pull_request
    assert cfg is not None
    opts = PullRequestOptions(cfg.forge, cfg.repo, cfg.group, cfg.remote, cfg.base).check()
    with files(ctx.engine, asset, connection) as target:
        git = _git_of(target)
        base_branch = preflight(git, opts, cfg.branch, ctx.db)
        chain = candidates(ctx.engine, steps)
        holder = Holder.current("deploy", ctx.actor)
        with TargetLock(ctx.db, target, holder, timeout=LOCK_TIMEOUT) as lock:
            git.drop_own_branch(cfg.branch, git.head())
            started = git.start(cfg.branch)
            run_git = {
                "branch": started.branch,
                "base": started.base,
                "previous_branch": started.previous_branch,
            }
            try:
                executor = RunExecutor(
                    ctx.db, BlobStore(ctx.engine.workspace.blobs), target, ctx.actor, None, git,
                    lock,
                )  # fmt: skip
                run_id = executor.start(
                    asset, {"remediation": ctx.label, "stage": stage.label, "git": run_git}
                )
                lock.bind_run(run_id)
                with ctx.db.transaction() as s:
                    trow = ctx.target(s, tid)
                    trow.run_ids = [*trow.run_ids, run_id]
                    trow.fix_run_id = run_id
                results = [executor.execute(run_id, i, c, p) for i, (c, p) in enumerate(chain, 1)]
                executor.finish(run_id, results)
            finally:
                if git.current_branch() == cfg.branch and not git.dirty_paths():
                    git.finish(started, True)
        entries = deliver(
            ctx.db, ctx.actor, git, opts, branch=cfg.branch, base_branch=base_branch,
            asset_id=asset, run_id=run_id, run_git=run_git, detected=None,
            remediation_id=ctx.rem().id,
        )  # fmt: skip
    return entries, run_id


__all__ = ["deliver_stage"]
