"""Users, role grants and API tokens in the store.

A :class:`Principal` is who the engine acts for: a user's name and the
roles granted to it, each for the whole workspace or scoped to an asset
group and/or environment. API tokens are ``jpt_<id>_<secret>``; only an
argon2 hash of the secret is stored, and the secret is shown once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jupiter.errors import InputError, NotFoundError, PermissionDenied
from jupiter.permissions import ROLES, Action
from jupiter.store.tables import ApiTokenRow, AssetRow, RoleGrantRow, UserRow, utcnow

NAME = re.compile(r"^[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]{0,199}$")
TOKEN = re.compile(r"^jpt_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True)
class Grant:
    role: str
    group: str | None = None
    environment: str | None = None

    @property
    def scoped(self) -> bool:
        return self.group is not None or self.environment is not None

    def covers(self, scope: Scope) -> bool:
        return (self.group is None or self.group == scope.group) and (
            self.environment is None or self.environment == scope.environment
        )

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "group": self.group, "environment": self.environment}

    def label(self) -> str:
        parts = [f"group={self.group}"] * (self.group is not None) + [f"env={self.environment}"] * (
            self.environment is not None
        )
        return self.role + (f"({','.join(parts)})" if parts else "")


@dataclass(frozen=True)
class Scope:
    """Where an action lands: an asset, with its group and environment."""

    asset: str
    group: str | None
    environment: str | None


@dataclass(frozen=True)
class Principal:
    name: str
    grants: tuple[Grant, ...]
    bootstrap: bool = False
    """The workspace has no user yet: whoever acts is its admin."""

    @property
    def roles(self) -> list[str]:
        return sorted({g.role for g in self.grants})

    def allows(self, action: Action, scope: Scope | None) -> bool:
        for grant in self.grants:
            if grant.role not in action.roles:
                continue
            if not grant.scoped:
                return True
            if scope is not None and grant.covers(scope):
                return True
            if scope is None and action.read:
                return True
        return False


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InputError(
            f"user name {name!r} is not valid; use 1-200 printable characters, not starting "
            "with a space"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    return role


def any_user(s: Session) -> bool:
    return s.scalar(select(func.count()).select_from(UserRow)) != 0


def principal(s: Session, name: str) -> Principal:
    """The principal acting as ``name``; refuses unknown and disabled users."""
    # The user and its grants in one query (a row per grant, or one row of
    # NULL grant columns for a user without any): every request checks it.
    rows = s.execute(
        select(
            UserRow.disabled, RoleGrantRow.role, RoleGrantRow.group_name, RoleGrantRow.environment
        )
        .outerjoin(RoleGrantRow, RoleGrantRow.user_id == UserRow.id)
        .where(UserRow.name == name)
        .order_by(RoleGrantRow.id)
    ).all()
    if not rows:
        if not any_user(s):
            return Principal(name, (Grant("admin"),), bootstrap=True)
        raise PermissionDenied(
            f"user {name!r} is not known in this workspace; act as a known user (--actor or "
            f"JUPITER_ACTOR) or ask an admin to run `jupiter users add {name} --role ROLE`"
        )
    if rows[0].disabled:
        raise PermissionDenied(
            f"user {name!r} is disabled; ask an admin to enable it, or act as another user"
        )
    return Principal(
        name, tuple(Grant(r.role, r.group_name, r.environment) for r in rows if r.role is not None)
    )


def scope_of_asset(s: Session, asset_id: str) -> Scope | None:
    row = s.get(AssetRow, asset_id)
    if row is None:
        return None
    return Scope(row.id, row.group_name, row.environment)


def get_user(s: Session, name: str) -> UserRow:
    user = s.scalar(select(UserRow).where(UserRow.name == name))
    if user is None:
        raise NotFoundError(f"user {name!r} does not exist; see `jupiter users list`")
    return user


def add_user(s: Session, name: str, by: str) -> UserRow:
    check_name(name)
    if s.scalar(select(UserRow).where(UserRow.name == name)) is not None:
        raise InputError(f"user {name!r} already exists; grant it roles with `jupiter users grant`")
    row = UserRow(name=name, disabled=False, created_by=by, created_at=utcnow())
    s.add(row)
    s.flush()
    return row


def grant(s: Session, user: UserRow, g: Grant, by: str) -> bool:
    """Add ``g`` to ``user``; False when it already held exactly that."""
    check_role(g.role)
    for row in s.scalars(select(RoleGrantRow).where(RoleGrantRow.user_id == user.id)):
        if (row.role, row.group_name, row.environment) == (g.role, g.group, g.environment):
            return False
    s.add(
        RoleGrantRow(
            user_id=user.id,
            role=g.role,
            group_name=g.group,
            environment=g.environment,
            granted_by=by,
            granted_at=utcnow(),
        )
    )
    s.flush()
    return True


def grants_of(s: Session, user_id: int) -> list[Grant]:
    rows = s.scalars(
        select(RoleGrantRow).where(RoleGrantRow.user_id == user_id).order_by(RoleGrantRow.id)
    )
    return [Grant(r.role, r.group_name, r.environment) for r in rows]


def enabled_admins(s: Session) -> list[str]:
    q = (
        select(UserRow.name)
        .join(RoleGrantRow, RoleGrantRow.user_id == UserRow.id)
        .where(
            RoleGrantRow.role == "admin",
            RoleGrantRow.group_name.is_(None),
            RoleGrantRow.environment.is_(None),
            UserRow.disabled.is_(False),
        )
    )
    return sorted(set(s.scalars(q)))


# -- API tokens ---------------------------------------------------------------


def _hasher() -> Any:
    from argon2 import PasswordHasher

    # Tokens are 256-bit random secrets, not passwords: no guessing attack
    # needs slowing down, so argon2id runs at a low cost (every CLI call with
    # JUPITER_TOKEN pays it) while a stolen hash still reveals nothing.
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def new_token(s: Session, user: UserRow, label: str, expires_at: datetime | None) -> str:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    s.add(
        ApiTokenRow(
            id=token_id,
            user_id=user.id,
            label=label,
            secret_hash=_hasher().hash(secret),
            created_at=utcnow(),
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
        )
    )
    s.flush()
    return f"jpt_{token_id}_{secret}"


def authenticate(s: Session, token: str) -> tuple[str, str]:
    """The user name (and token id) a token stands for; refuses a token that
    is malformed, unknown, revoked or expired."""
    from argon2.exceptions import VerificationError

    m = TOKEN.match(token.strip())
    if m is None:
        raise PermissionDenied(
            "the API token is malformed (expected jpt_<id>_<secret>); create one with "
            "`jupiter users token create`"
        )
    row = s.get(ApiTokenRow, m.group(1))
    try:
        if row is None:
            raise VerificationError
        _hasher().verify(row.secret_hash, m.group(2))
    except VerificationError:
        raise PermissionDenied(
            f"API token {m.group(1)} is not valid; create a new one with "
            "`jupiter users token create`"
        ) from None
    if row.revoked_at is not None:
        raise PermissionDenied(
            f"API token {row.id} was revoked; create a new one with `jupiter users token create`"
        )
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise PermissionDenied(
            f"API token {row.id} expired at {row.expires_at.isoformat(timespec='seconds')}; "
            "create a new one with `jupiter users token create`"
        )
    user = s.get(UserRow, row.user_id)
    assert user is not None
    return user.name, row.id
