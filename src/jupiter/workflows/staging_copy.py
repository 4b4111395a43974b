"""Throw-away copies for the staging test: when a group has no staging
asset, the plan is tried on a copy of one production target, made inside
``JUPITER_HOME/staging/`` and deleted afterwards. Production is only read.

* a local target: its tree is copied (regular files with their modes,
  directories, symlinks as links — a link leading outside the copy stays
  unwritable, because the local target refuses paths that leave its root);
  sockets, FIFOs and devices are skipped;
* an SSH target: every regular file its ``walk()`` lists is read through the
  Target API and written locally with its mode (symlinks and empty
  directories are not carried over).

The copy is bound to its own asset, ``<ASSET>.staging-copy`` (environment
``staging``, no group, so no workflow ever deploys to it): the findings the
test detects and fixes there are that asset's, never production's. The
production asset's open findings are carried over to it (the bytes are the
same), so findings ingested from external scanners are tried as well."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter import audit
from jupiter.errors import ConflictError, TargetError
from jupiter.models import Environment, FindingStatus
from jupiter.store import assets as asset_repo
from jupiter.store import findings as finding_repo
from jupiter.store.db import Database
from jupiter.store.tables import AssetRow, FindingRow, utcnow
from jupiter.targets.base import Target
from jupiter.targets.connection import LocalConnection, parse_connection
from jupiter.targets.factory import open_target

COPY_SUFFIX = ".staging-copy"
COPY_TAG = "staging-copy"


@dataclass
class ThrowAwayCopy:
    """A copy of ``source_asset``'s tree at ``root``, bound to ``asset``."""

    source_asset: str
    source: str
    root: Path
    asset: str
    skipped: list[str] = field(default_factory=list)

    @property
    def connection(self) -> str:
        return f"local:{self.root}"

    def label(self) -> str:
        return f"throw-away copy of {self.source_asset}"


def copy_asset_id(asset_id: str) -> str:
    """The asset a throw-away copy of ``asset_id`` is recorded under."""
    name = f"{asset_id}{COPY_SUFFIX}"
    if len(name) <= 200:
        return name
    digest = hashlib.sha256(asset_id.encode()).hexdigest()[:12]
    return f"{asset_id[: 200 - len(COPY_SUFFIX) - 13]}-{digest}{COPY_SUFFIX}"


def _copy_local(src: Path, dst: Path, skip: Path) -> list[str]:
    """Copy the tree under ``src`` into the existing directory ``dst``
    without following links; returns what was skipped (and why)."""
    skipped: list[str] = []
    made: list[tuple[Path, Path]] = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(src)
        for name in list(dirnames):
            full = here / name
            if full == skip or skip in full.parents:
                dirnames.remove(name)
                skipped.append(f"{(rel / name).as_posix()}: the Jupiter workspace itself")
                continue
            if full.is_symlink():
                dirnames.remove(name)
                os.symlink(os.readlink(full), dst / rel / name)
                continue
            (dst / rel / name).mkdir(mode=0o700)
            made.append((full, dst / rel / name))
        for name in filenames:
            full, out = here / name, dst / rel / name
            relname = (rel / name).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(full), out)
            elif stat.S_ISREG(st.st_mode):
                try:
                    shutil.copy2(full, out, follow_symlinks=False)
                except PermissionError:
                    skipped.append(f"{relname}: not readable by this user")
            else:
                skipped.append(f"{relname}: not a regular file, directory or symlink")
    # Directory modes last: a read-only directory must first receive its files.
    for original, copied in reversed(made):
        shutil.copymode(original, copied)
    return skipped


def _copy_remote(target: Target, dst: Path) -> list[str]:
    skipped: list[str] = []
    for rel in target.walk():
        state = target.stat(rel)
        try:
            data = target.read_bytes(rel)
        except (PermissionError, FileNotFoundError) as exc:
            skipped.append(f"{rel}: {exc.__class__.__name__}")
            continue
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        os.chmod(out, state.mode if state is not None else 0o644)
    return skipped


def _carry_findings(s: Session, actor: str, copy: ThrowAwayCopy) -> list[str]:
    """The production asset's open findings, as the copy asset's: the copy
    holds the same bytes, so a finding a scanner reported there (and the
    built-in detectors may not see) is on the copy too. One the copy asset
    had closed in an earlier test is open again. Returns their fingerprints."""
    from jupiter.runs import _set_finding_status

    fixable = (FindingStatus.OPEN.value, FindingStatus.FAILED.value)
    rows = [
        r for r in finding_repo.list_findings(s, asset=copy.source_asset) if r.status in fixable
    ]
    if not rows:
        return []
    records = [finding_repo.row_to_record(r).model_copy(update={"asset": copy.asset}) for r in rows]
    writer = finding_repo.FindingWriter(s, utcnow(), copy.asset, source_name=copy.label())
    writer.add_all(records)
    writer.flush()
    prints = sorted({r.fingerprint(copy.asset) for r in records})
    closed = s.scalars(
        select(FindingRow.id).where(
            FindingRow.fingerprint.in_(prints), FindingRow.status.not_in(fixable)
        )
    )
    for fid in list(closed):
        _set_finding_status(s, fid, FindingStatus.OPEN, actor)
    return prints


def _bind(db: Database, actor: str, copy: ThrowAwayCopy) -> None:
    """Point the copy's asset at this copy and give it production's open
    findings, in one transaction with its audit entry."""
    with db.transaction() as s:
        row = s.get(AssetRow, copy.asset)
        if row is None:
            row = asset_repo.create_unregistered(s, copy.asset)
        row.name = copy.label()
        row.environment = Environment.STAGING.value
        row.group_name = None
        row.tags = [COPY_TAG]
        previous, row.connection = row.connection, copy.connection
        carried = _carry_findings(s, actor, copy)
        audit.record(
            s,
            actor,
            "asset.staging_copy",
            f"asset:{copy.asset}",
            {
                "copy_of": copy.source_asset,
                "source": copy.source,
                "connection": copy.connection,
                "previous_connection": previous,
                "skipped": copy.skipped,
                "findings_carried": len(carried),
            },
        )


@contextlib.contextmanager
def _exclusive(path: Path, timeout: float) -> Iterator[None]:
    """One staging test per production asset's copy asset at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConflictError(
                        f"another staging test is using {path.stem}; wait for it to end, then "
                        "run the test again"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def throw_away_copy(
    db: Database, actor: str, home: Path, asset_id: str, connection: str, timeout: float
) -> Iterator[ThrowAwayCopy]:
    """A fresh copy of the production target ``connection`` (asset
    ``asset_id``), deleted when the block ends, whatever happened in it."""
    base = home / "staging"
    cid = copy_asset_id(asset_id)
    key = hashlib.sha256(cid.encode()).hexdigest()[:16]
    with _exclusive(base / f"{key}.lock", timeout):
        # Under the lock, any copy of this asset is left over from a test
        # whose process died: nobody else can be using it.
        for stale in base.glob(f"copy-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"copy-{key}-", dir=base))
        try:
            root = workdir / "root"
            root.mkdir(mode=0o700)
            parsed = parse_connection(connection)
            if isinstance(parsed, LocalConnection):
                src = Path(os.path.realpath(parsed.root))
                if not src.is_dir():
                    raise TargetError(
                        f"production target {src} of asset {asset_id!r} is not a directory; "
                        "fix its connection"
                    )
                skipped = _copy_local(src, root, Path(os.path.realpath(home)))
            else:
                with contextlib.closing(open_target(connection)) as target:
                    skipped = _copy_remote(target, root)
            copy = ThrowAwayCopy(asset_id, connection, Path(os.path.realpath(root)), cid, skipped)
            _bind(db, actor, copy)
            yield copy
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
