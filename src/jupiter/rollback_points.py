"""Rollback points of whole assets (the seed's "Create rollback point for
web-app-01" → ``SNAP-2025-10-18-001``): every regular file under the
asset's root, captured by content hash into the workspace's blobs, and
restored from there on request, proven by re-hashing.

A remediation's own snapshot stage records only the paths its plans touch
(``SNAP-REM-n-ASSET``); a rollback point is taken before any plan exists,
so it holds the whole tree. :class:`jupiter.engine.Engine` inherits
:class:`RollbackPoints`.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from jupiter import audit
from jupiter.errors import InputError, NotFoundError
from jupiter.permissions import requires
from jupiter.redact import redact_text
from jupiter.store.tables import AssetRow, RollbackPointRow, utcnow

if TYPE_CHECKING:
    from jupiter.snapshots import ManifestEntry
    from jupiter.store.db import Database
    from jupiter.targets.base import Target
    from jupiter.workspace import Workspace


def _json(row: RollbackPointRow) -> dict[str, Any]:
    return {
        "snapshot_id": row.id,
        "asset": row.asset_id,
        "connection": row.connection,
        "reason": row.reason,
        "taken_by": row.actor,
        "taken_at": row.taken_at.isoformat(),
        "files": row.files,
        "bytes": row.size,
        "restored_at": row.restored_at.isoformat() if row.restored_at else None,
        "restored_by": row.restored_by,
    }


def _capture(target: Target, blobs: Any) -> list[ManifestEntry]:
    from jupiter.snapshots import capture, capture_tree
    from jupiter.targets.local import LocalTarget

    if isinstance(target, LocalTarget):
        return capture_tree(target, blobs)
    return capture(target, target.walk(""), blobs)


class RollbackPoints:
    """Mixed into :class:`jupiter.engine.Engine`."""

    actor: str
    workspace: Workspace

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    @requires("snapshots.create", scope="asset", kind="asset")
    def create_rollback_point(self, asset: str, reason: str = "") -> dict[str, Any]:
        """Capture every file under ``asset``'s root (under its target lock)
        and store the manifest as ``SNAP-<date>-<n>``."""
        from jupiter.locks import Holder, TargetLock
        from jupiter.snapshots import BlobStore
        from jupiter.targets.factory import open_target

        with self.db.reading() as s:
            row = s.get(AssetRow, asset)
            if row is None:
                raise NotFoundError(f"no asset {asset!r}; see `jupiter assets list`")
            connection = row.connection
        if not connection:
            raise InputError(
                f"asset {asset!r} has no connection, so there is nothing to snapshot; set "
                "`connection: local:PATH` (or ssh:...) in assets.yaml"
            )
        self.workspace.ensure()
        blobs = BlobStore(self.workspace.blobs)
        target = open_target(connection)
        holder = Holder.current("rollback-point", self.actor)
        with closing(target), TargetLock(self.db, target, holder):
            entries = _capture(target, blobs)
        files = [e for e in entries if e.kind == "file"]
        size = sum(e.size or 0 for e in files)
        now = utcnow()
        day = now.strftime("%Y-%m-%d")
        for _ in range(5):
            try:
                with self.db.transaction() as s:
                    taken = s.scalar(
                        select(func.count())
                        .select_from(RollbackPointRow)
                        .where(RollbackPointRow.id.like(f"SNAP-{day}-%"))
                    )
                    point = RollbackPointRow(
                        id=f"SNAP-{day}-{int(taken or 0) + 1:03d}",
                        asset_id=asset,
                        connection=connection,
                        reason=redact_text(reason),
                        actor=self.actor,
                        entries=[e.to_dict() for e in entries],
                        files=len(files),
                        size=size,
                        taken_at=now,
                        restored_at=None,
                        restored_by=None,
                    )
                    s.add(point)
                    s.flush()
                    out = _json(point)
                    audit.record(
                        s,
                        self.actor,
                        "rollback_point.created",
                        f"asset:{asset}",
                        {k: out[k] for k in ("snapshot_id", "files", "bytes", "reason")},
                    )
                    return out
            except IntegrityError:
                continue  # another process took that number first: count again
        raise InputError("could not number the rollback point; try again")

    @requires("snapshots.read")
    def list_rollback_points(self, asset: str | None = None) -> list[dict[str, Any]]:
        """Rollback points, newest first (of one asset when given)."""
        with self.db.reading() as s:
            q = select(RollbackPointRow).order_by(RollbackPointRow.taken_at.desc())
            if asset is not None:
                q = q.where(RollbackPointRow.asset_id == asset)
            return [_json(r) for r in s.scalars(q)]

    @requires("snapshots.restore")
    def restore_rollback_point(
        self,
        snapshot_id: str,
        paths: list[str] | None = None,
        reason: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Put the asset's files (or ``paths``) back as the rollback point
        holds them, under the target's lock; each restored file is then
        re-hashed against the manifest. Files created since are listed in
        ``added_since``, not removed; files already equal are not written.
        ``dry_run`` lists what differs (``would_restore``) and writes nothing."""
        from jupiter.locks import Holder, TargetLock
        from jupiter.snapshots import (
            BlobStore,
            ManifestEntry,
            check_blobs,
            restore,
            verify_restored,
        )
        from jupiter.targets.factory import open_target

        ref = snapshot_id.strip().upper()
        with self.db.reading() as s:
            row = s.get(RollbackPointRow, ref)
            if row is None:
                raise NotFoundError(
                    f"no rollback point {snapshot_id!r}; list them with "
                    "`jupiter snapshots list` or ask the copilot to create one"
                )
            entries = [ManifestEntry.from_dict(e) for e in row.entries]
            connection, asset = row.connection, row.asset_id
        known = {e.path for e in entries}
        if paths:
            unknown = sorted(set(paths) - known)
            if unknown:
                raise InputError(
                    f"{ref} holds no {', '.join(unknown)}; give paths relative to the asset root"
                )
        blobs = BlobStore(self.workspace.blobs)
        check_blobs(entries, blobs)
        target = open_target(connection)
        holder = Holder.current("rollback-point-restore", self.actor)
        with closing(target), TargetLock(self.db, target, holder):
            chosen = [e for e in entries if not paths or e.path in paths]
            # Only what differs from the point is written (re-hashed first).
            drifted = verify_restored(target, chosen)
            if dry_run:
                added = sorted(set(target.walk("")) - known) if not paths else []
                return {
                    "snapshot_id": ref,
                    "asset": asset,
                    "status": "dry_run",
                    "would_restore": drifted,
                    "added_since": added,
                }
            report = restore(target, entries, blobs, only=drifted)
            mismatched = verify_restored(target, chosen)
            added = sorted(set(target.walk("")) - known) if not paths else []
        ok = report.complete and not mismatched
        now = utcnow()
        result = {
            "snapshot_id": ref,
            "asset": asset,
            "status": "restored" if ok else "incomplete",
            "written": list(report.written),
            "removed": list(report.removed),
            "modes_set": list(report.modes_set),
            "skipped": [list(p) for p in report.skipped],
            "mismatched": mismatched,
            "added_since": added,
            "verified_files": len([e for e in chosen if e.kind == "file"]) - len(mismatched),
        }
        with self.db.transaction() as s:
            stored = s.get(RollbackPointRow, ref)
            assert stored is not None
            if ok:
                stored.restored_at = now
                stored.restored_by = self.actor
            audit.record(
                s,
                self.actor,
                "rollback_point.restored" if ok else "rollback_point.restore_incomplete",
                f"asset:{asset}",
                {**result, "reason": redact_text(reason), "paths": paths or []},
            )
        return result
