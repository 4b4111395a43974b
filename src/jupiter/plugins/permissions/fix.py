"""``file-permissions``: tighten the mode (and, for sensitive system files,
the owner) of files the permission checks flag.

A plan only ever removes permission bits; it never adds any. Ownership is
changed only for the sensitive system files and only when owner checks are
on (see :mod:`jupiter.plugins.permissions.detect`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord
from jupiter.plans import Plan, Risk, SetMode
from jupiter.plugins.base import Remediator
from jupiter.plugins.permissions.detect import (
    SKIP_TOP,
    assess,
    check_permissions,
    default_check_owner,
    read_groups,
)
from jupiter.targets.base import TargetView, normalise_relpath


class PermissionsParams(BaseModel):
    """``check_owner``: None = only when Jupiter runs as root. ``secret_groups``:
    groups allowed to read secrets (e.g. ``ssl-cert``). ``skip_top``: top-level
    directories never scanned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_owner: bool | None = None
    secret_groups: list[str] = Field(default_factory=lambda: ["ssl-cert"])
    skip_top: list[str] = Field(default_factory=lambda: list(SKIP_TOP))


def parse_permissions_params(raw: Mapping[str, object] | BaseModel | None) -> PermissionsParams:
    """Validate parameters; InputError names the field."""
    if isinstance(raw, PermissionsParams):
        return raw
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})
    try:
        return PermissionsParams.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "parameters"
        raise InputError(f"file-permissions parameter {where}: {err['msg']}") from None


class FilePermissions(Remediator[PermissionsParams]):
    """Remove loose permission bits; restore root ownership of system files."""

    name: ClassVar[str] = "file-permissions"
    summary: ClassVar[str] = (
        "Tighten modes of world-writable files, readable secrets and sensitive system files"
    )
    categories = frozenset({Category.PERMISSIONS})
    rule_ids = frozenset({"PERM-WORLD-WRITABLE", "PERM-SECRET-READABLE", "PERM-SENSITIVE-FILE"})
    params_model: ClassVar[type[BaseModel]] = PermissionsParams

    def __init__(self, params: PermissionsParams | None = None) -> None:
        self._params = params or PermissionsParams()

    def parse_params(self, raw: dict[str, object] | None) -> PermissionsParams:
        return parse_permissions_params(raw)

    def detect(
        self, view: TargetView, params: PermissionsParams | None = None
    ) -> list[FindingRecord]:
        """PERM-* findings, one per file; ``params`` override the constructor's."""
        p = parse_permissions_params(params) if params is not None else self._params
        return check_permissions(
            view,
            check_owner=p.check_owner,
            secret_groups=frozenset(p.secret_groups),
            skip_top=tuple(p.skip_top),
        )

    def plan(self, finding: FindingRecord, view: TargetView, params: PermissionsParams) -> Plan:
        p = parse_permissions_params(params)
        if not finding.location.path:
            raise InputError(
                f"finding {finding.rule_id} has no file path; file-permissions needs one"
            )
        path = normalise_relpath(finding.location.path)
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            severity=finding.severity,
            title=f"Tighten permissions of {path}",
        )
        state = view.stat(path)
        if state is None:
            return base  # gone: nothing left to fix
        if state.kind != "file":
            return base.model_copy(
                update={
                    "needs_manual": (
                        f"{path} is now a {state.kind}, not a regular file; "
                        "Jupiter does not change "
                        "modes through symlinks or on special files, so check it by hand"
                    )
                }
            )
        check_owner = default_check_owner() if p.check_owner is None else p.check_owner
        a = assess(
            view,
            path,
            state,
            read_groups(view),
            check_owner=check_owner,
            secret_groups=frozenset(p.secret_groups),
        )
        if not a.issues:
            return base
        change = SetMode(
            path=path,
            mode=a.mode,
            uid=a.uid if a.owner_change else None,
            gid=a.gid if a.owner_change else None,
        )
        owner = f" owner {state.uid}:{state.gid} -> {a.uid}:{a.gid}" if a.owner_change else ""
        warnings = []
        if state.mode & 0o070 and not a.mode & 0o070:
            warnings.append(
                f"{path} loses its group permissions: a service that reads it through group "
                f"{state.gid} will no longer be able to."
            )
        return base.model_copy(
            update={
                "changes": [change],
                "risk": Risk(change_kind="permissions", warnings=warnings),
                "diff": (
                    f"--- a/{path} mode {state.mode:04o}\n+++ b/{path} mode {a.mode:04o}{owner}\n"
                ),
                "related_findings": [r for r, _, _ in a.issues if r != finding.rule_id],
            }
        )
