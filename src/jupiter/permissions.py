"""Who may do what: the one permission table, and the decorator every
public :class:`jupiter.engine.Engine` method carries.

:data:`PERMISSIONS` maps each action to the roles allowed to perform it;
:func:`requires` marks an engine method with its action (and which argument
names the asset, finding or run it acts on, for roles scoped to an asset
group or environment) and calls the engine's single check,
``Engine._require``, before the method body runs. ``docs/roles.md`` is
rendered from the same table by :func:`render_roles_doc` (a test keeps it
current).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

ROLES: dict[str, str] = {
    "viewer": "read findings, assets, runs, policies, exceptions and compliance",
    "analyst": "ingest, scan, plan, import assets/advisories, create remediations, "
    "request approval and exceptions",
    "approver": "approve or reject remediations",
    "operator": "apply fixes, deploy, roll back, recover and resume runs, answer manual steps",
    "admin": "everything, including users, roles, policies, scripts and exceptions",
    "auditor": "read everything and export, verify and checkpoint the audit trail",
}

ScopeKind = Literal["asset", "finding", "run", "target", "remediation", "none"]


@dataclass(frozen=True)
class Action:
    name: str
    roles: frozenset[str]
    summary: str
    read: bool = False
    """Read actions accept a scoped grant even when no asset is named."""


def _action(name: str, roles: str, summary: str, read: bool = False) -> Action:
    allowed = frozenset(roles.split()) | {"admin"}
    unknown = allowed - ROLES.keys()
    assert not unknown, f"unknown roles {unknown} for {name}"
    return Action(name, allowed, summary, read)


ALL = "viewer analyst approver operator auditor"

_ACTIONS = [
    _action("workspace.init", "", "create the workspace (its first user becomes admin)"),
    _action("assets.read", ALL, "list assets", read=True),
    _action("assets.import", "analyst", "import assets.yaml"),
    _action("findings.read", ALL, "list and show findings", read=True),
    _action("findings.ingest", "analyst", "ingest scanner reports"),
    _action("findings.prioritise", "analyst", "set priorities from the policy"),
    _action("findings.scan", "analyst operator", "scan a target for findings"),
    _action("plan.create", "analyst operator", "plan a fix (touches nothing)"),
    _action("script.export", "analyst operator", "export a fix as a script"),
    _action("fix.apply", "operator", "apply fixes to a target"),
    _action("runs.read", ALL, "list and show runs", read=True),
    _action("run.rollback", "operator", "roll a run back"),
    _action("run.recover", "operator", "recover an interrupted run"),
    _action("advisories.import", "analyst", "import OSV advisories"),
    _action("scripts.read", ALL, "list custom remediation scripts", read=True),
    _action("scripts.manage", "", "register or remove custom remediation scripts"),
    _action("audit.verify", ALL, "verify the audit chain", read=True),
    _action("audit.export", "auditor", "export the audit trail"),
    _action("audit.checkpoint", "auditor", "sign an audit checkpoint"),
    _action("users.read", "auditor", "list users, roles and tokens", read=True),
    _action("users.manage", "", "add, disable and grant roles to users; tokens of others"),
    _action("tokens.own", ALL, "create and revoke one's own API tokens", read=True),
    _action("policy.read", ALL, "evaluate, test and simulate policies", read=True),
    _action("policy.decide", "analyst approver operator", "ask the policy for a decision"),
    _action("exceptions.read", ALL, "list exceptions", read=True),
    _action("exceptions.request", "analyst operator", "request an exception (waiver)"),
    _action("exceptions.approve", "", "approve an exception"),
    _action("exceptions.revoke", "", "revoke an exception"),
    _action("exceptions.expire", "operator", "reopen findings whose exception expired"),
    _action("compliance.read", ALL, "compliance report", read=True),
    _action("compliance.evaluate", "analyst operator", "evaluate controls and store results"),
    # The remediation workflow (wired when it lands): declared here so the
    # one table stays the whole truth.
    _action("remediations.read", ALL, "list and show remediations", read=True),
    _action("remediation.create", "analyst", "create a remediation, request approval"),
    _action("remediation.approve", "approver", "approve or reject a remediation"),
    _action(
        "remediation.deploy", "operator", "run, resume, answer manual steps, cancel, roll back"
    ),
    _action("approvals.due", "operator", "worker: auto-approve, expire, remind, escalate"),
    _action("integrations.read", ALL, "outbox, statistics and metrics", read=True),
    _action("integrations.manage", "operator", "dispatch, retry and purge the outbox"),
    _action("config.generate", "analyst operator", "render a secure configuration"),
    _action("snapshots.read", ALL, "list rollback points of assets", read=True),
    _action("snapshots.create", "analyst operator", "take a rollback point of an asset"),
    _action("snapshots.restore", "operator", "restore an asset to a rollback point"),
    _action("schedules.read", ALL, "list scheduled scans", read=True),
    _action("schedules.manage", "analyst", "add or remove scheduled scans"),
    _action("schedules.run", "operator", "run the scheduled scans that are due"),
    _action("pull_requests.read", ALL, "list delivered pull requests", read=True),
    _action(
        "pull_requests.deliver", "operator", "push a fix branch and open or update pull requests"
    ),
    _action("pull_requests.sync", "operator", "poll forges: merged, declined, CI status"),
]

PERMISSIONS: dict[str, Action] = {a.name: a for a in _ACTIONS}


def allowed_roles(action: str) -> list[str]:
    """The roles that may perform ``action``, in :data:`ROLES` order."""
    return [r for r in ROLES if r in PERMISSIONS[action].roles]


class _Guarded(Protocol):
    def _require(self, action: str, kind: ScopeKind = "none", ref: Any = None) -> None: ...


P = ParamSpec("P")
R = TypeVar("R")


def requires(
    action: str, *, scope: str | None = None, kind: ScopeKind = "none"
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark an engine method with ``action``; the engine's ``_require``
    runs before its body. ``scope`` names the argument holding the asset,
    finding, run or target (``kind``) it acts on."""
    if action not in PERMISSIONS:
        raise ValueError(f"{action} is not in jupiter.permissions.PERMISSIONS")

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            self: _Guarded = args[0]  # type: ignore[assignment]
            # The engine a service (engine.remediations, engine.schedules)
            # belongs to. A guarded method called by another one is part of
            # an action already allowed (fix rolling back on a failed gate,
            # approve continuing the workflow): only the outermost call of a
            # thread checks.
            owner = getattr(self, "engine", self)
            local = owner.__dict__.get("_guard_local")
            if local is None:
                local = owner.__dict__.setdefault("_guard_local", threading.local())
            depth = getattr(local, "depth", 0)
            if depth == 0:
                ref = None
                if scope is not None:
                    bound = sig.bind_partial(*args, **kwargs)
                    ref = bound.arguments.get(scope)
                owner._require(action, kind if ref is not None else "none", ref)
            local.depth = depth + 1
            try:
                return fn(*args, **kwargs)
            finally:
                local.depth = depth

        guarded.__jupiter_action__ = action  # type: ignore[attr-defined]
        return guarded

    return wrap


def action_of(method: Any) -> str | None:
    return getattr(method, "__jupiter_action__", None)


def render_roles_doc() -> str:
    """``docs/roles.md``, generated from :data:`PERMISSIONS`."""
    roles = list(ROLES)
    lines = [
        "# Roles and permissions",
        "",
        "<!-- Generated from jupiter/permissions.py by "
        "`python -m jupiter.permissions > docs/roles.md`; a test keeps it current. -->",
        "",
        "Every engine action checks this one table. A role may be granted for the whole",
        "workspace or scoped to an asset group and/or environment "
        "(`jupiter users grant NAME approver --group portal-fleet --env prod`);",
        "a scoped grant counts only for actions on assets in that scope (and for read",
        "actions). A refusal names the roles that would allow the action, exits 2 and",
        "is recorded in the audit trail as `permission.denied`. The engine's services",
        "(`engine.remediations`, `engine.schedules`) use the same table; a guarded",
        "method called by another one (approve continuing the workflow, fix rolling",
        "back on a failed gate) is part of the action already allowed.",
        "",
        "A workspace's first user is its admin: `jupiter init` enrols the acting user",
        "(`--actor`, `JUPITER_ACTOR`, else the OS user). Until a workspace has any user,",
        "whoever acts is treated as admin, so single-user use needs no setup.",
        "",
        "## Roles",
        "",
        "| role | may |",
        "| --- | --- |",
        *(f"| `{r}` | {ROLES[r]} |" for r in roles),
        "",
        "## Actions",
        "",
        "| action | what | " + " | ".join(roles) + " |",
        "| --- | --- | " + " | ".join("---" for _ in roles) + " |",
    ]
    for a in _ACTIONS:
        marks = " | ".join("yes" if r in a.roles else "" for r in roles)
        lines.append(f"| `{a.name}` | {a.summary} | {marks} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render_roles_doc())
