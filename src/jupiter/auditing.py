"""The audit trail's engine operations: verify, export, sign checkpoints.

:class:`jupiter.engine.Engine` inherits them; they rely on the engine's
``db``, ``workspace`` and ``actor``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupiter import audit
from jupiter.errors import InputError, WorkspaceError
from jupiter.permissions import requires
from jupiter.store.db import Database, redact_url
from jupiter.workspace import Workspace


class Auditing:
    """Mixed into :class:`jupiter.engine.Engine`."""

    workspace: Workspace
    actor: str

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    @requires("audit.verify")
    def audit_verify(
        self, checkpoint: Path | None = None, public_key: Path | None = None
    ) -> audit.VerifyResult:
        """Walk the chain; with ``checkpoint``, also compare it with that
        signed checkpoint (verified with ``public_key``, by default this
        workspace's own audit key)."""
        if checkpoint is None:
            with self.db.reading() as s:
                return audit.verify(s)
        from jupiter import checkpoints
        from jupiter.keys import KeyStore, load_public_key

        if public_key is not None:
            public = load_public_key(public_key)
        else:
            keys = KeyStore(self.workspace.home)
            if not keys.audit_key_path.exists():
                raise InputError(
                    f"there is no audit signing key at {keys.audit_key_path} to verify "
                    "the checkpoint with; pass --key with the public key that signed it"
                )
            public = keys.audit_public_key(create=False)
        cp = checkpoints.read(checkpoint, checkpoints.origin_for(self.workspace_id()), public)
        with self.db.reading() as s:
            return audit.verify(s, expected=cp.hashes)

    @requires("audit.checkpoint")
    def audit_checkpoint(self, witness: Path | None = None) -> audit.Checkpointed:
        """Sign the current chain, write the checkpoint to
        ``JUPITER_HOME/checkpoints/`` and to ``witness`` (a file, or a
        directory to write into), and audit that it was made.

        Like a transparency-log witness, it refuses (nothing written) when
        the chain does not verify, or when it no longer agrees with the newest
        earlier checkpoint found in either place: signing then would launder
        a rewrite made since."""
        from jupiter import checkpoints
        from jupiter.keys import KeyStore

        if witness is not None and not witness.is_dir() and not witness.parent.is_dir():
            raise InputError(
                f"witness path {witness}: directory {witness.parent} does not exist; "
                "create it or pass an existing directory"
            )
        workspace_id = self.workspace_id()
        origin = checkpoints.origin_for(workspace_id)
        key = KeyStore(self.workspace.home).audit_signing_key()
        local = self.workspace.home / "checkpoints"
        earlier = checkpoints.previous(local, witness, workspace_id, origin, key.public_key())
        against = earlier[-1] if earlier else None
        hashes = bytearray()
        with self.db.reading() as s:
            result = audit.verify(s, against.hashes if against else None, collect=hashes)
        if not result.ok:
            return audit.Checkpointed(result, against=against.path if against else None)
        cp = checkpoints.sign(origin, bytes(hashes), key)
        local.mkdir(mode=0o700, exist_ok=True)
        paths = [local / checkpoints.file_name(workspace_id, cp.entries)]
        if witness is not None:
            paths.append(
                witness / checkpoints.file_name(workspace_id, cp.entries)
                if witness.is_dir()
                else witness
            )
        for path in paths:
            checkpoints.write(cp, path)
        data = {**cp.to_json(), "files": [str(p) for p in paths]}
        with self.db.transaction() as s:
            audit.record(s, self.actor, "audit.checkpointed", f"checkpoint:{cp.entries}", data)
        return audit.Checkpointed(result, data, paths, against.path if against else None)

    def workspace_id(self) -> str:
        """The random id that names this workspace in signed checkpoints."""
        from jupiter.store.tables import WorkspaceInfoRow

        with self.db.reading() as s:
            row = s.get(WorkspaceInfoRow, 1)
        if row is None:
            raise WorkspaceError(
                f"the workspace database at {redact_url(self.workspace.database_url)} has no "
                "workspace id (table workspace_info is empty): it is damaged; restore it "
                "from a backup"
            )
        return row.workspace_id

    @requires("audit.export")
    def audit_export(self) -> Iterator[dict[str, Any]]:
        with self.db.reading() as s:
            yield from audit.export_rows(s)
