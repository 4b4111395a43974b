"""Delivering a fix run as pull/merge requests that stay current.

``jupiter fix TARGET --git-branch NAME --pull-request FORGE --repo OWNER/NAME``
runs the fixes on the local branch ``NAME`` (one commit per finding, see
:mod:`jupiter.git_delivery`), goes back to the branch the user was on, and
then, per group of findings (``--group finding|rule|directory|run``, like
Renovate's grouping):

1. builds the group's branch (``NAME`` for ``run``, else ``NAME-<group>``)
   from the base commit and the group's commits;
2. pushes it with a lease: the remote branch must be missing or still at the
   sha Jupiter pushed last, so commits someone else pushed are never
   overwritten (one sentence, exit 2, the local branches stay);
3. opens the pull request, or, when :class:`PullRequestRow` already holds an
   open one for the same forge, repository and group key, edits its title
   and body (one PR, kept current; never a second one).

A request closed unmerged is remembered as *declined* and not opened again
while the group's finding fingerprints are the same (Renovate's "ignored"
rule); a new or changed finding opens a new one. A re-run that no longer
detects any finding of an open request closes it with a comment
(*obsolete*). The worker source ``pull_requests`` (and ``jupiter
pull-requests sync``) polls open requests: merged ones become *merged*
(and a linked remediation ``completed``), closed ones *declined*, and the
CI status of the head commit is recorded.

Tokens come from the environment (:mod:`jupiter.forges`) and never reach
the store, the audit trail or any output.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import InputError, JupiterError
from jupiter.forges import Forge, check_repo, open_forge
from jupiter.permissions import requires
from jupiter.redact import redact, redact_text
from jupiter.states import RemediationState, StepState, allowed, transition
from jupiter.store.db import Database
from jupiter.store.tables import (
    FindingRow,
    FindingSourceRow,
    PullRequestRow,
    RemediationRow,
    RunStepRow,
    utcnow,
)

if TYPE_CHECKING:
    from jupiter.git_delivery import GitDelivery

GROUPS = ("finding", "rule", "directory", "run")
STATES = ("open", "declined", "merged", "obsolete")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True)
class PullRequestOptions:
    """How ``fix`` delivers its branch as pull requests."""

    forge: str
    repo: str
    group: str = "run"
    remote: str = "origin"
    base: str | None = None  # the remote branch to merge into; default: the one checked out
    labels: bool = True

    def check(self) -> PullRequestOptions:
        if self.group not in GROUPS:
            raise InputError(f"unknown --group {self.group!r}; use one of: {', '.join(GROUPS)}")
        repo = check_repo(self.forge, self.repo)
        return PullRequestOptions(self.forge, repo, self.group, self.remote, self.base, self.labels)


ForgeFactory = Callable[[str, str], Forge]


def _default_factory(kind: str, repo: str) -> Forge:
    return open_forge(kind, repo)


# Tests point this at their loopback fakes' URLs through the environment;
# the indirection lets an embedding application give its own HTTP settings.
forge_factory: ForgeFactory = _default_factory


def slug(text: str) -> str:
    out = _SLUG.sub("-", text).strip("-.")
    return (out or "root")[:60].rstrip("-.") or "root"


def group_value(group: str, finding: FindingRow) -> str:
    if group == "finding":
        return finding.fingerprint[:16]
    if group == "rule":
        return finding.rule_id
    if group == "directory":
        return posixpath.dirname(finding.path or "") or "."
    return "all"


def group_key(branch: str, group: str, value: str) -> str:
    """Stable identity of one PR: the delivery branch name, the grouping and its value."""
    return f"{branch}|{group}:{value}"


def group_branch(branch: str, group: str, value: str) -> str:
    return branch if group == "run" else f"{branch}-{slug(value)}"


# -- the body a reviewer reads -------------------------------------------------


@dataclass
class Item:
    finding: FindingRow
    step: RunStepRow
    scanners: list[str]


def _where(f: FindingRow) -> str:
    if not f.path:
        return "(no file)"
    return f"{f.path}:{f.start_line}" if f.start_line else f.path


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def title_for(group: str, value: str, items: list[Item]) -> str:
    n = len(items)
    if group == "finding" and items:
        f = items[0].finding
        return f"fix(security): {f.rule_id} in {_where(f)}"[:120]
    if group == "rule":
        return f"fix(security): {value} ({n} finding{'s' if n != 1 else ''})"[:120]
    if group == "directory":
        return f"fix(security): {n} finding{'s' if n != 1 else ''} in {value}"[:120]
    return f"fix(security): {n} finding{'s' if n != 1 else ''} fixed by Jupiter"[:120]


def render_body(
    fixed: list[Item], manual: list[Item], run_id: int | None, base_branch: str, branch: str
) -> str:
    """Markdown for a reviewer: findings, changes and why, evidence, the
    decisions left to a person, and how to undo. Redacted."""
    lines = [
        "Jupiter fixed these security findings and verified each fix before committing it.",
        "",
        "## Findings",
        "",
        "| # | severity | rule | scanner | where | commit |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for it in fixed:
        f = it.finding
        lines.append(
            f"| {f.id} | {f.severity} | `{_cell(f.rule_id)}` | {_cell(', '.join(it.scanners))} "
            f"| `{_cell(_where(f))}` | {(it.step.commit or '')[:12]} |"
        )
    lines += ["", "## What changed and why", ""]
    for it in fixed:
        f, plan = it.finding, it.step.plan or {}
        lines.append(f"### {f.rule_id} in `{_where(f)}`")
        lines.append("")
        lines.append(f"**Finding:** {' '.join(f.title.split())}")
        if f.aliases:
            lines.append(f"**Advisories:** {', '.join(sorted(f.aliases))}")
        lines.append(
            f"**Fix ({it.step.remediator}):** {' '.join(str(plan.get('title', '')).split())}"
        )
        diff = str(plan.get("diff") or "")
        if diff:
            shown = diff if len(diff) <= 6000 else diff[:6000] + "\n... (diff shortened)\n"
            lines += ["", "<details><summary>diff</summary>", "", "```diff", shown.rstrip()]
            lines += ["```", "", "</details>"]
        lines += ["", "**Verification evidence:**", ""]
        lines.append(f"- re-detection: {' '.join(it.step.detail.split()) or 'not run'}")
        for v in it.step.validations or []:
            name = v.get("validator") or v.get("name") or "validator"
            status = v.get("status", "")
            detail = " ".join(str(v.get("detail", "")).split())
            lines.append(f"- {name}: {status}{' — ' + detail if detail else ''}")
        lines.append(f"- plan hash: `{it.step.plan_hash}`")
        lines.append("")
    if manual:
        lines += ["## Decisions left to you", ""]
        for it in manual:
            f = it.finding
            need = " ".join(str((it.step.plan or {}).get("needs_manual") or it.step.detail).split())
            lines.append(f"- [ ] **{f.rule_id}** in `{_where(f)}` (#{f.id}, {f.severity}): {need}")
        lines.append("")
    lines += [
        "## CI and tests",
        "",
        "Your CI runs on this branch; Jupiter records its status on the remediation.",
        "",
        "## How to undo",
        "",
        "- Not wanted: close this request unmerged. Jupiter remembers it as declined and "
        "does not open it again until the findings change.",
        f"- After merging: `git revert` the commits listed above on `{base_branch}`.",
    ]
    if run_id is not None:
        lines.append(f"- Locally: `jupiter rollback {run_id}` reverts the run on `{branch}`.")
    lines += ["", f"<!-- jupiter: run {run_id} -->", ""]
    return redact_text("\n".join(lines))


def labels_for(items: list[Item]) -> list[str]:
    sevs = {it.finding.severity for it in items}
    worst = next((s for s in _SEVERITY_ORDER if s in sevs), None)
    return ["security"] + ([worst] if worst else [])


# -- delivery --------------------------------------------------------------------


def _items(s: Session, steps: list[RunStepRow]) -> dict[int, Item]:
    ids = [st.finding_id for st in steps if st.finding_id is not None]
    if not ids:
        return {}
    findings = {f.id: f for f in s.scalars(select(FindingRow).where(FindingRow.id.in_(ids)))}
    scanners: dict[int, list[str]] = {}
    for src in s.scalars(select(FindingSourceRow).where(FindingSourceRow.finding_id.in_(ids))):
        scanners.setdefault(src.finding_id, [])
        if src.scanner not in scanners[src.finding_id]:
            scanners[src.finding_id].append(src.scanner)
    out: dict[int, Item] = {}
    for st in steps:
        if st.finding_id in findings:
            out[st.id] = Item(findings[st.finding_id], st, scanners.get(st.finding_id, ["jupiter"]))
    return out


def _foreign_branch(head: str, remote: str) -> InputError:
    return InputError(
        f"branch {head!r} already exists on the remote {remote!r} with commits "
        "Jupiter did not push; it was not overwritten and nothing was lost locally: "
        "delete or merge that branch, or choose another --git-branch"
    )


def preflight(
    git: GitDelivery, opts: PullRequestOptions, branch: str, db: Database | None = None
) -> str:
    """Everything checkable before a fix changes anything: the remote, the
    base branch, the token, and (with ``db``) that no branch Jupiter keeps
    current for this delivery was pushed to by someone else; returns the
    base branch name."""
    git.remote_url(opts.remote)
    if db is not None:
        with db.reading() as s:
            known = {
                r.branch: r.head_sha
                for r in s.scalars(
                    select(PullRequestRow).where(
                        PullRequestRow.forge == opts.forge, PullRequestRow.repo == opts.repo
                    )
                )
                if r.group_key.startswith(branch + "|")
            }
        heads = set(known) | ({branch} if opts.group == "run" else set())
        for head in sorted(heads):
            tip = git.remote_tip(opts.remote, head)
            if tip is not None and tip != known.get(head):
                raise _foreign_branch(head, opts.remote)
    current = git.current_branch()
    if current is not None and (current == branch or current.startswith(branch + "-")):
        raise InputError(
            f"HEAD in {git.root} is on the delivery branch {current!r}; switch to the branch "
            "the fixes are made from (e.g. git switch main) and run again"
        )
    base = opts.base or current
    if base is None:
        raise InputError(
            f"HEAD in {git.root} is detached; pass --base with the branch the pull request "
            "should merge into"
        )
    with forge_factory(opts.forge, opts.repo) as forge:
        forge.check()  # the token is accepted and the repository exists
    return base


def deliver(
    db: Database,
    actor: str,
    git: GitDelivery,
    opts: PullRequestOptions,
    *,
    branch: str,
    base_branch: str,
    asset_id: str,
    run_id: int | None,
    run_git: dict[str, Any] | None,
    detected: set[str] | None,
    remediation_id: int | None = None,
) -> list[dict[str, Any]]:
    """Push and open/update one request per group of the run's fixed
    findings; close those whose findings are no longer detected. Returns one
    entry per request touched (``action``: opened, updated, declined_before,
    closed_obsolete, unchanged)."""
    out: list[dict[str, Any]] = []
    groups: dict[str, tuple[str, list[Item], list[Item]]] = {}
    base_sha = None
    if run_id is not None and run_git is not None:
        base_sha = str(run_git["base"])
        with db.reading() as s:
            steps = list(
                s.scalars(
                    select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.seq)
                )
            )
            items = _items(s, steps)
            for it in items.values():
                s.expunge(it.finding)
                s.expunge(it.step)
        for it in items.values():
            value = group_value(opts.group, it.finding)
            key = group_key(branch, opts.group, value)
            fixed_list, manual_list = groups.setdefault(key, (value, [], []))[1:]
            if it.step.status == StepState.VERIFIED and it.step.commit:
                fixed_list.append(it)
            elif it.step.status == StepState.NEEDS_MANUAL:
                manual_list.append(it)
        # Return to the user's branch; the run's branch stays (rollback uses it).
        if git.current_branch() == branch:
            git.switch_back(base_branch)
    forge = forge_factory(opts.forge, opts.repo)
    try:
        delivered: set[str] = set()
        for key, (value, fixed, manual) in groups.items():
            if not fixed:
                continue  # only decisions left: nothing to review as code
            assert base_sha is not None
            delivered.add(key)
            out.append(
                _deliver_group(
                    db,
                    actor,
                    git,
                    forge,
                    opts,
                    key,
                    value,
                    fixed,
                    manual,
                    branch=branch,
                    base_branch=base_branch,
                    base_sha=base_sha,
                    asset_id=asset_id,
                    run_id=run_id,
                    remediation_id=remediation_id,
                )
            )
        if detected is not None:  # what a scan of the base found now
            out += _close_obsolete(db, actor, forge, opts, branch, detected, delivered)
    finally:
        forge.close_client()
    return out


def _record(s: Session, forge: str, repo: str, key: str) -> PullRequestRow | None:
    return s.scalars(
        select(PullRequestRow).where(
            PullRequestRow.forge == forge,
            PullRequestRow.repo == repo,
            PullRequestRow.group_key == key,
        )
    ).one_or_none()


def _deliver_group(
    db: Database,
    actor: str,
    git: GitDelivery,
    forge: Forge,
    opts: PullRequestOptions,
    key: str,
    value: str,
    fixed: list[Item],
    manual: list[Item],
    *,
    branch: str,
    base_branch: str,
    base_sha: str,
    asset_id: str,
    run_id: int | None,
    remediation_id: int | None,
) -> dict[str, Any]:
    fps = sorted({it.finding.fingerprint for it in fixed})
    with db.reading() as s:
        rec = _record(s, opts.forge, opts.repo, key)
        if rec is not None:
            s.expunge(rec)
    if rec is not None and rec.state == "open":
        info = forge.get(rec.number)
        if info.state != "open":
            _settle(db, actor, rec.id, info.state, info.head_sha)
            rec.state = "merged" if info.state == "merged" else "declined"
    entry: dict[str, Any] = {"group": key, "branch": None, "fingerprints": fps}
    if rec is not None and rec.state == "declined" and sorted(rec.fingerprints) == fps:
        return {
            **entry,
            "action": "declined_before",
            "number": rec.number,
            "url": rec.url,
            "detail": "closed unmerged before with the same findings; not reopened",
        }
    head = group_branch(branch, opts.group, value)
    entry["branch"] = head
    if opts.group == "run":
        tip = git.branch_tip(branch)
        assert tip is not None
    else:
        git.drop_own_branch(head, base_sha)
        tip = git.build_branch(head, base_sha, [it.step.commit for it in fixed if it.step.commit])
    remote_tip = git.remote_tip(opts.remote, head)
    expect = None
    if remote_tip is not None:
        if rec is None or remote_tip != rec.head_sha:
            raise _foreign_branch(head, opts.remote)
        expect = remote_tip
    title = title_for(opts.group, value, fixed)
    body = render_body(fixed, manual, run_id, base_branch, head)
    reuse = rec is not None and rec.state == "open"
    if reuse and remote_tip == tip:
        assert rec is not None
        forge.update(rec.number, title, body)
        action, number, url = "unchanged", rec.number, rec.url
    else:
        git.push(opts.remote, tip, head, expect)
        if reuse:
            assert rec is not None
            forge.update(rec.number, title, body)
            action, number, url = "updated", rec.number, rec.url
        else:
            info = forge.open(head, base_branch, title, body)
            action, number, url = "opened", info.number, info.url
            if opts.labels:
                try:
                    entry["labels"] = forge.add_labels(number, labels_for(fixed + manual))
                except InputError as exc:
                    entry["labels_error"] = exc.message
    now = utcnow()
    with db.transaction() as s:
        row = _record(s, opts.forge, opts.repo, key)
        if row is None:
            row = PullRequestRow(
                forge=opts.forge, repo=opts.repo, group_key=key, created_at=now, ci_detail={}
            )
            s.add(row)
        if action == "opened":
            row.ci_status, row.ci_detail, row.checked_at = None, {}, None
        row.branch, row.base_branch = head, base_branch
        row.number, row.url, row.state = number, url, "open"
        row.fingerprints = fps
        row.finding_ids = sorted(it.finding.id for it in fixed)
        row.head_sha, row.asset_id, row.run_id = tip, asset_id, run_id
        row.remediation_id = remediation_id
        row.updated_at = now
        s.flush()
        audit.record(
            s,
            actor,
            f"pull_request.{action}",
            f"pr:{opts.forge}:{opts.repo}#{number}",
            {
                "group": key,
                "branch": head,
                "head": tip,
                "findings": row.finding_ids,
                "run": run_id,
                "url": url,
            },
        )
    return {**entry, "action": action, "number": number, "url": url, "head": tip}


def _close_obsolete(
    db: Database,
    actor: str,
    forge: Forge,
    opts: PullRequestOptions,
    branch: str,
    detected: set[str],
    delivered: set[str],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with db.reading() as s:
        rows = [
            (r.id, r.group_key, r.number, r.url, list(r.fingerprints))
            for r in s.scalars(
                select(PullRequestRow).where(
                    PullRequestRow.forge == opts.forge,
                    PullRequestRow.repo == opts.repo,
                    PullRequestRow.state == "open",
                )
            )
            if r.group_key.startswith(branch + "|")
        ]
    for rid, key, number, url, fps in rows:
        if key in delivered or any(fp in detected for fp in fps):
            continue
        forge.close(
            number,
            "Jupiter no longer detects the findings this request fixes (they were fixed by "
            "other means), so it is closed. Nothing else was changed.",
        )
        with db.transaction() as s:
            row = s.get(PullRequestRow, rid)
            assert row is not None
            row.state, row.updated_at = "obsolete", utcnow()
            audit.record(
                s,
                actor,
                "pull_request.closed",
                f"pr:{opts.forge}:{opts.repo}#{number}",
                {"group": key, "reason": "findings no longer detected"},
            )
        out.append({"group": key, "action": "closed_obsolete", "number": number, "url": url})
    return out


def _settle(db: Database, actor: str, rid: int, state: str, head: str | None) -> dict[str, Any]:
    """Record that a request was merged or closed unmerged (declined)."""
    with db.transaction() as s:
        row = s.get(PullRequestRow, rid)
        assert row is not None
        new = "merged" if state == "merged" else "declined"
        row.state, row.updated_at = new, utcnow()
        subject = f"pr:{row.forge}:{row.repo}#{row.number}"
        audit.record(s, actor, f"pull_request.{new}", subject, {"group": row.group_key})
        done: str | None = None
        cancelled: str | None = None
        if new == "merged" and row.remediation_id is not None:
            rem = s.get(RemediationRow, row.remediation_id)
            if rem is not None and allowed(
                RemediationState, rem.status, RemediationState.COMPLETED
            ):
                transition(
                    s,
                    rem,
                    RemediationState.COMPLETED,
                    actor=actor,
                    subject=f"REM-{rem.id}",
                    facts={"pull_request": row.url},
                )
                done = f"REM-{rem.id}"
        if new == "declined" and row.remediation_id is not None:
            rem = s.get(RemediationRow, row.remediation_id)
            if rem is not None and allowed(
                RemediationState, rem.status, RemediationState.CANCELLED
            ):
                reason = f"the pull request {row.url} was closed unmerged"
                rem.reason = reason
                transition(
                    s, rem, RemediationState.CANCELLED, actor=actor, subject=f"REM-{rem.id}",
                    facts={"pull_request": row.url, "reason": reason},
                )  # fmt: skip
                cancelled = f"REM-{rem.id}"
        return {"state": new, "remediation_completed": done, "remediation_cancelled": cancelled}


def _record_ci(
    db: Database, actor: str, rid: int, status: str | None, detail: dict[str, Any]
) -> bool:
    with db.transaction() as s:
        row = s.get(PullRequestRow, rid)
        assert row is not None
        row.checked_at = utcnow()
        if status is None or (status == row.ci_status and detail == row.ci_detail):
            return False
        row.ci_status, row.ci_detail = status, redact(detail)
        subject = f"pr:{row.forge}:{row.repo}#{row.number}"
        audit.record(s, actor, "pull_request.ci", subject, {"status": status, **row.ci_detail})
        if row.remediation_id is not None:
            rem = s.get(RemediationRow, row.remediation_id)
            if rem is not None:
                facts = dict(rem.facts or {})
                facts["test_result"] = {
                    "source": "pull_request_ci",
                    "status": status,
                    "url": row.url,
                    "checks": row.ci_detail.get("checks", []),
                }
                rem.facts = facts
        return True


def sync(db: Database, actor: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Poll every open request: merged → merged (a linked remediation
    completes), closed → declined, else record the head's CI status. One
    request's error (say, a missing token) is reported in its entry and does
    not stop the others."""
    with db.reading() as s:
        rows = [
            (r.id, r.forge, r.repo, r.number, r.head_sha)
            for r in s.scalars(
                select(PullRequestRow)
                .where(PullRequestRow.state == "open")
                .order_by(PullRequestRow.id)
            )
        ]
    out: list[dict[str, Any]] = []
    for rid, kind, repo, number, head in rows:
        entry: dict[str, Any] = {"forge": kind, "repo": repo, "number": number}
        try:
            forge = forge_factory(kind, repo)
            try:
                info = forge.get(number)
                if info.state != "open":
                    entry.update(_settle(db, actor, rid, info.state, info.head_sha))
                else:
                    ci = forge.ci(number, info.head_sha or head)
                    entry["state"] = "open"
                    entry["ci"] = ci.status
                    entry["ci_changed"] = _record_ci(db, actor, rid, ci.status, ci.to_json())
            finally:
                forge.close_client()
        except JupiterError as exc:
            entry.update({"error": redact_text(exc.message), "failed": True})
        out.append(entry)
    return out


def row_to_json(r: PullRequestRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "forge": r.forge,
        "repo": r.repo,
        "group": r.group_key,
        "branch": r.branch,
        "base": r.base_branch,
        "number": r.number,
        "url": r.url,
        "state": r.state,
        "findings": list(r.finding_ids),
        "fingerprints": list(r.fingerprints),
        "head": r.head_sha,
        "asset": r.asset_id,
        "run": r.run_id,
        "remediation": f"REM-{r.remediation_id}" if r.remediation_id else None,
        "ci": r.ci_status,
        "ci_detail": r.ci_detail,
        "updated_at": r.updated_at.isoformat(),
    }


class PullRequesting:
    """The engine's pull-request actions (inherited by :class:`jupiter.engine.Engine`)."""

    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    @requires("pull_requests.read")
    def list_pull_requests(
        self, state: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        if state is not None and state not in STATES:
            raise InputError(f"unknown state {state!r}; use one of: {', '.join(STATES)}")
        with self.db.reading() as s:
            q = select(PullRequestRow).order_by(PullRequestRow.id)
            if state is not None:
                q = q.where(PullRequestRow.state == state)
            if repo is not None:
                q = q.where(PullRequestRow.repo == repo)
            return [row_to_json(r) for r in s.scalars(q)]

    @requires("pull_requests.sync")
    def sync_pull_requests(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Poll the forges for every open request (what the worker does each round)."""
        return sync(self.db, self.actor, now)


def _due(engine: Any, now: datetime) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = engine.sync_pull_requests(now)
    return result


def _register() -> None:
    from jupiter.worker import register_due

    register_due("pull_requests", _due)


_register()
