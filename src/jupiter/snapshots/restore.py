"""Restore a snapshot onto a target and prove it by re-hashing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from jupiter.errors import ConflictError, HardLinkRefused, InputError, SnapshotError, TargetError
from jupiter.snapshots.blobs import CHUNK, BlobStore
from jupiter.snapshots.capture import StreamingTarget
from jupiter.snapshots.manifest import ManifestEntry
from jupiter.targets.base import Expected, Target, TargetView, normalise_relpath
from jupiter.targets.local import LocalTarget

BATCH_SYNC_FROM = 64


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` did.

    ``skipped`` pairs a path with the reason it could not be restored (a
    symlink or directory that no longer exists cannot be recreated through the
    Target protocol); ``owner_not_restored`` lists files whose owner differs
    from the snapshot and could not be changed (not running as root).
    """

    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modes_set: tuple[str, ...] = ()
    owner_not_restored: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.owner_not_restored


def select(entries: Sequence[ManifestEntry], only: Iterable[str] | None) -> list[ManifestEntry]:
    """The entries named by ``only`` (all when ``None``); InputError for a
    path the snapshot does not contain."""
    if only is None:
        return list(entries)
    wanted = {normalise_relpath(p) for p in only}
    by_path = {normalise_relpath(e.path): e for e in entries}
    unknown = sorted(wanted - set(by_path))
    if unknown:
        raise InputError(
            f"path(s) {', '.join(unknown)} are not in this snapshot; restore only paths it captured"
        )
    return [e for e in entries if normalise_relpath(e.path) in wanted]


def check_blobs(entries: Iterable[ManifestEntry], blobs: BlobStore) -> None:
    """Raise SnapshotError unless every file entry names a blob and a mode,
    and every blob the entries need exists and still hashes to its name."""
    incomplete = sorted(
        e.path for e in entries if e.kind == "file" and (e.sha256 is None or e.mode is None)
    )
    if incomplete:
        raise SnapshotError(
            f"manifest entries for files {', '.join(incomplete)} have no blob or mode; "
            "the snapshot is damaged and nothing was restored"
        )
    missing: list[str] = []
    corrupt: list[str] = []
    for sha in sorted({e.sha256 for e in entries if e.sha256 is not None}):
        actual = blobs.hash_of(sha)
        if actual is None:
            missing.append(sha)
        elif actual != sha:
            corrupt.append(sha)
    if missing or corrupt:
        parts = []
        if missing:
            parts.append(f"missing blobs {', '.join(missing)}")
        if corrupt:
            parts.append(f"corrupted blobs {', '.join(corrupt)}")
        raise SnapshotError(
            f"snapshot cannot be restored from {blobs.directory}: {'; '.join(parts)}; "
            "nothing was restored"
        )


def restore(
    target: Target,
    entries: Sequence[ManifestEntry],
    blobs: BlobStore,
    only: Iterable[str] | None = None,
    expect: Mapping[str, Expected] | None = None,
) -> RestoreReport:
    """Put the snapshotted state of ``entries`` (or of the ``only`` paths) back.

    ``expect`` maps paths to the state the caller last saw them in (what a
    run left, or what a rollback checked): such a path is restored only while
    it still is in that state, else ConflictError and the newer edit stays
    (see :class:`~jupiter.targets.base.Expected`).

    Every needed blob is checked (exists, re-hashes to its name) before
    anything is written; if one fails, SnapshotError and the target is
    untouched. Files get their content and mode back, their owner when it
    differs and can be changed; paths that did not exist are removed.
    Restoring twice is the same as once. Follow with :func:`verify_restored`.
    """
    chosen = select(entries, only)
    check_blobs(chosen, blobs)
    report = _Progress()
    streaming = isinstance(target, StreamingTarget)  # a slow check: do it once
    # Many files: write without a per-file fsync and flush once at the end.
    batch = streaming and len(chosen) >= BATCH_SYNC_FROM
    # Removals first and deepest first: a directory the change created is
    # then empty (and removable), and a file it replaced with a directory can
    # be written back.
    ordered = sorted((e for e in chosen if not e.existed), key=lambda e: -e.path.count("/")) + [
        e for e in chosen if e.existed
    ]
    try:
        for entry in ordered:
            rel = normalise_relpath(entry.path)
            try:
                _restore_one(
                    target,
                    entry,
                    rel,
                    blobs,
                    report,
                    streaming,
                    sync=not batch,
                    expect=(expect or {}).get(rel),
                )
            except HardLinkRefused as exc:
                # Never written through; nothing to do when it already matches.
                if not _matches(target, entry, rel):
                    report.skipped.append((rel, str(exc)))
            except (TargetError, OSError) as exc:
                raise SnapshotError(
                    f"restoring {rel!r} on {target.describe()} failed ({exc}); "
                    f"{len(report.written) + len(report.removed)} path(s) were already "
                    "restored, fix the cause and run the restore again"
                ) from exc
    finally:
        if batch and report.written and isinstance(target, StreamingTarget):  # narrows type
            target.flush()
    return RestoreReport(
        tuple(report.written),
        tuple(report.removed),
        tuple(report.modes_set),
        tuple(report.owner_not_restored),
        tuple(report.skipped),
    )


class _Progress:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.removed: list[str] = []
        self.modes_set: list[str] = []
        self.owner_not_restored: list[str] = []
        self.skipped: list[tuple[str, str]] = []


def _restore_one(
    target: Target,
    entry: ManifestEntry,
    rel: str,
    blobs: BlobStore,
    report: _Progress,
    streaming: bool,
    *,
    sync: bool,
    expect: Expected | None = None,
) -> None:
    current = target.stat(rel)
    if expect is not None and current is not None and current.kind != "file":
        raise ConflictError(
            f"{rel} on {target.describe()} is now a {current.kind}, not what it was when "
            "checked; it was left as is"
        )
    if not entry.existed:
        if current is None:
            return
        try:
            if expect is not None:
                target.remove(rel, expect=expect)
            else:
                target.remove(rel)
        except TargetError:
            if current.kind != "dir":
                raise
            report.skipped.append(
                (rel, "a directory that is not empty now exists here; remove it by hand")
            )
            return
        report.removed.append(rel)
        return
    if entry.kind == "file" and entry.sha256 is not None and entry.mode is not None:
        if current is not None and current.kind != "file":
            # A symlink, special file or (empty) directory now stands where the
            # file was; remove refuses a directory that still has content.
            target.remove(rel)
        if streaming:
            with blobs.open(entry.sha256) as fh:
                cast(StreamingTarget, target).write_stream(
                    rel, fh, mode=entry.mode, sync=sync, expect=expect
                )
        elif expect is not None:
            target.write_bytes(rel, blobs.get(entry.sha256), mode=entry.mode, expect=expect)
        else:
            target.write_bytes(rel, blobs.get(entry.sha256), mode=entry.mode)
        report.written.append(rel)
        if (
            isinstance(target, LocalTarget)
            and current is not None
            and current.kind == "file"
            and (current.uid, current.gid) == (entry.uid, entry.gid)
        ):
            return  # LocalTarget keeps an existing file's owner on every write
        _restore_owner(target, entry, rel, report)
        return
    if entry.kind == "dir":
        if current is None or current.kind != "dir":
            report.skipped.append((rel, "the directory no longer exists; recreate it by hand"))
            return
        if entry.mode is not None and current.mode != entry.mode:
            target.set_mode(rel, entry.mode)
            report.modes_set.append(rel)
        _restore_owner(target, entry, rel, report)
        return
    if current is None or current.kind != entry.kind:
        report.skipped.append(
            (rel, f"a {entry.kind} cannot be recreated through the target; restore it by hand")
        )


def _restore_owner(target: Target, entry: ManifestEntry, rel: str, report: _Progress) -> None:
    if entry.uid is None or entry.gid is None:
        return
    current = target.stat(rel)
    if current is None or (current.uid, current.gid) == (entry.uid, entry.gid):
        return
    try:
        target.set_owner(rel, entry.uid, entry.gid)
    except TargetError:
        report.owner_not_restored.append(rel)
        return
    if entry.mode is not None:
        # chown clears setuid/setgid: put the full mode back afterwards.
        target.set_mode(rel, entry.mode)


def _matches(target: TargetView, entry: ManifestEntry, rel: str) -> bool:
    """Whether ``rel`` already is the snapshotted regular file (content and mode)."""
    current = target.stat(rel)
    return (
        entry.kind == "file"
        and current is not None
        and current.kind == "file"
        and current.mode == entry.mode
        and _content_sha(target, rel) == entry.sha256
    )


def _content_sha(target: TargetView, rel: str) -> str | None:
    try:
        if isinstance(target, StreamingTarget):
            digest = hashlib.sha256()
            with target.open_read(rel) as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
            return digest.hexdigest()
        return hashlib.sha256(target.read_bytes(rel)).hexdigest()
    except (FileNotFoundError, TargetError):
        return None


def verify_restored(target: TargetView, entries: Sequence[ManifestEntry]) -> list[str]:
    """Paths whose current state differs from the snapshot (sorted).

    Absent entries must be absent; files must be regular files with the same
    mode and content (re-hashed); directories, symlinks and special files must
    have the same kind (and mode, for directories). Owners are not compared,
    since a restore without root cannot always set them (see RestoreReport).
    """
    bad: list[str] = []
    for entry in entries:
        rel = normalise_relpath(entry.path)
        current = target.stat(rel)
        if not entry.existed:
            ok = current is None
        elif current is None or current.kind != entry.kind:
            ok = False
        elif entry.kind == "file":
            ok = current.mode == entry.mode and _content_sha(target, rel) == entry.sha256
        elif entry.kind == "dir":
            ok = current.mode == entry.mode
        else:
            ok = True
        if not ok:
            bad.append(rel)
    return sorted(bad)
