"""Identities on the engine: the one permission check (``_require``) every
public method runs through :func:`jupiter.permissions.requires`, and the
user, role and token operations. :class:`jupiter.engine.Engine` inherits it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from jupiter import audit, identities
from jupiter.errors import InputError, NotFoundError, PermissionDenied
from jupiter.identities import Grant, Principal, Scope
from jupiter.permissions import PERMISSIONS, ScopeKind, allowed_roles, requires
from jupiter.store.tables import ApiTokenRow, RunRow, UserRow, utcnow
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from jupiter.store.db import Database


class Governing:
    """Mixed into :class:`jupiter.engine.Engine`."""

    workspace: Workspace
    actor: str
    _token: str | None

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    # -- the check ------------------------------------------------------------
    def _require(self, action: str, kind: ScopeKind = "none", ref: Any = None) -> None:
        """Refuse (PermissionDenied, audited) unless the acting user holds a
        role allowed to perform ``action`` on what ``ref`` names."""
        self._authenticate()
        act = PERMISSIONS[action]
        try:
            with self.db.reading() as s:
                who = identities.principal(s, self.actor)
                scope = _resolve_scope(s, kind, ref)
        except PermissionDenied as exc:
            self._audit_denied(action, ref, str(exc))
            raise
        if who.allows(act, scope):
            return
        roles = allowed_roles(action)
        need = " or ".join(roles)
        where = f" on asset {scope.asset!r}" if scope is not None else ""
        held = ", ".join(g.label() for g in who.grants) or "none"
        message = (
            f"{who.name} (roles: {held}) may not {action} ({act.summary}){where}: that needs "
            f"the {need} role; ask an admin to run `jupiter users grant {who.name} {roles[0]}`"
        )
        self._audit_denied(action, ref, message)
        raise PermissionDenied(message)

    def _audit_denied(self, action: str, ref: Any, why: str) -> None:
        with self.db.transaction() as s:
            audit.record(
                s,
                self.actor,
                "permission.denied",
                action,
                {"ref": None if ref is None else str(ref), "reason": why},
            )

    def _authenticate(self) -> None:
        """Swap a pending API token for the user it stands for (once)."""
        token, self._token = self._token, None
        if token is None:
            return
        try:
            with self.db.transaction() as s:
                name, token_id = identities.authenticate(s, token)
                row = s.get(ApiTokenRow, token_id)
                assert row is not None
                row.last_used_at = utcnow()
        except PermissionDenied as exc:
            self._audit_denied("token.authenticate", None, str(exc))
            self._token = token  # still refused on the next call
            raise
        self.actor = name

    def whoami(self) -> Principal:
        """The acting user and its grants (no permission needed)."""
        self._authenticate()
        with self.db.reading() as s:
            return identities.principal(s, self.actor)

    def _enrol_first_admin(self, s: Session) -> str | None:
        """On a workspace without users, make the actor its admin."""
        if identities.any_user(s):
            return None
        user = identities.add_user(s, identities.check_name(self.actor), by=self.actor)
        identities.grant(s, user, Grant("admin"), by=self.actor)
        return user.name

    # -- users ----------------------------------------------------------------
    @requires("users.manage")
    def add_user(
        self, name: str, roles: list[str], group: str | None = None, env: str | None = None
    ) -> dict[str, Any]:
        """Add a user with ``roles`` (scoped to ``group``/``env`` if given)."""
        grants = [Grant(identities.check_role(r), group, env) for r in roles]
        if not grants:
            raise InputError(f"give user {name!r} at least one role with --role (e.g. viewer)")
        with self.db.transaction() as s:
            first = self._enrol_first_admin(s)
            if first is not None:
                audit.record(s, self.actor, "user.created", f"user:{first}", {"roles": ["admin"]})
            user = identities.add_user(s, name, by=self.actor)
            for g in grants:
                identities.grant(s, user, g, by=self.actor)
            data = {"roles": [g.to_json() for g in grants]}
            audit.record(s, self.actor, "user.created", f"user:{name}", data)
        return {"name": name, **data}

    @requires("users.manage")
    def grant_role(
        self, name: str, role: str, group: str | None = None, env: str | None = None
    ) -> dict[str, Any]:
        g = Grant(identities.check_role(role), group, env)
        with self.db.transaction() as s:
            user = identities.get_user(s, name)
            added = identities.grant(s, user, g, by=self.actor)
            if added:
                audit.record(s, self.actor, "user.granted", f"user:{name}", g.to_json())
        return {"name": name, "granted": g.to_json(), "changed": added}

    @requires("users.read")
    def list_users(self) -> list[dict[str, Any]]:
        with self.db.reading() as s:
            out = []
            for user in s.scalars(select(UserRow).order_by(UserRow.name)):
                tokens = s.scalars(select(ApiTokenRow).where(ApiTokenRow.user_id == user.id)).all()
                out.append(
                    {
                        "name": user.name,
                        "disabled": user.disabled,
                        "roles": [g.to_json() for g in identities.grants_of(s, user.id)],
                        "tokens": [_token_json(t) for t in tokens],
                        "created_by": user.created_by,
                        "created_at": user.created_at.isoformat(),
                    }
                )
            return out

    @requires("users.manage")
    def disable_user(self, name: str) -> dict[str, Any]:
        with self.db.transaction() as s:
            user = identities.get_user(s, name)
            if user.disabled:
                raise InputError(f"user {name!r} is already disabled")
            if identities.enabled_admins(s) == [name]:
                raise InputError(
                    f"user {name!r} is the last enabled admin; make another user admin first"
                )
            user.disabled = True
            audit.record(s, self.actor, "user.disabled", f"user:{name}", {})
        return {"name": name, "disabled": True}

    @requires("tokens.own")
    def create_token(
        self, user: str | None = None, label: str = "", expires_days: int | None = 90
    ) -> dict[str, Any]:
        """A new API token for ``user`` (default: oneself); the secret is in
        the result and nowhere else."""
        name = user or self.actor
        if name != self.actor:
            self._require("users.manage")
        if expires_days is not None and expires_days <= 0:
            raise InputError("--expires-days must be a positive number of days")
        expires = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
        with self.db.transaction() as s:
            if self._enrol_first_admin(s) is not None:
                audit.record(s, self.actor, "user.created", f"user:{self.actor}", {})
            row = identities.get_user(s, name)
            token = identities.new_token(s, row, label, expires)
            token_id = token.split("_")[1]
            audit.record(
                s,
                self.actor,
                "token.created",
                f"user:{name}",
                {"token": token_id, "label": label, "expires_at": _iso(expires)},
            )
        return {"user": name, "id": token_id, "token": token, "expires_at": _iso(expires)}

    @requires("tokens.own")
    def revoke_token(self, token_id: str) -> dict[str, Any]:
        with self.db.reading() as s:
            row = s.get(ApiTokenRow, token_id)
            owner = None if row is None else s.get(UserRow, row.user_id)
        if row is None or owner is None:
            raise NotFoundError(f"API token {token_id!r} does not exist; see `jupiter users list`")
        if owner.name != self.actor:
            self._require("users.manage")
        with self.db.transaction() as s:
            row = s.get(ApiTokenRow, token_id)
            assert row is not None
            if row.revoked_at is not None:
                raise InputError(f"API token {token_id} is already revoked")
            row.revoked_at = utcnow()
            audit.record(s, self.actor, "token.revoked", f"user:{owner.name}", {"token": token_id})
        return {"id": token_id, "user": owner.name, "revoked": True}


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat(timespec="seconds"))


def _token_json(t: ApiTokenRow) -> dict[str, Any]:
    return {
        "id": t.id,
        "label": t.label,
        "created_at": _iso(t.created_at),
        "expires_at": _iso(t.expires_at),
        "revoked": t.revoked_at is not None,
        "last_used_at": _iso(t.last_used_at),
    }


def _resolve_scope(s: Session, kind: ScopeKind, ref: Any) -> Scope | None:
    """The asset an action lands on, or None when it names none (or an id
    that does not exist: the method itself then says so)."""
    from jupiter.errors import JupiterError
    from jupiter.store import findings as finding_repo

    if kind == "none" or ref is None:
        return None
    if kind == "asset":
        return identities.scope_of_asset(s, str(ref))
    if kind == "finding":
        try:
            row = finding_repo.get_finding(s, str(ref))
        except JupiterError:
            return None
        return identities.scope_of_asset(s, row.asset_id)
    if kind == "remediation":
        return _remediation_scope(s, ref)
    if kind == "run":
        run = s.get(RunRow, ref) if isinstance(ref, int) else None
        if run is None or run.asset_id is None:
            return None
        return identities.scope_of_asset(s, run.asset_id)
    return None


def _remediation_scope(s: Session, ref: Any) -> Scope | None:
    """A remediation's scope: the group and environment its targets share
    (None where they differ, so only a grant without that limit covers it)."""
    from jupiter.store.tables import AssetRow, RemediationTargetRow

    text = str(ref).strip().upper().removeprefix("REM-")
    if not text.isdecimal():
        return None
    rows = s.execute(
        select(AssetRow.group_name, AssetRow.environment)
        .join(RemediationTargetRow, RemediationTargetRow.asset_id == AssetRow.id)
        .where(RemediationTargetRow.remediation_id == int(text))
    ).all()
    if not rows:
        return None
    groups, envs = {g for g, _ in rows}, {e for _, e in rows}
    return Scope(
        f"REM-{text}",
        groups.pop() if len(groups) == 1 else None,
        envs.pop() if len(envs) == 1 else None,
    )
