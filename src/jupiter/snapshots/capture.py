"""Capture: record exactly the named paths of a target into a blob store."""

from __future__ import annotations

import os
import stat as stat_mod
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Protocol, runtime_checkable

from jupiter.snapshots.blobs import BlobStore
from jupiter.snapshots.manifest import ManifestEntry
from jupiter.snapshots.statcache import StatCache
from jupiter.targets.base import Expected, TargetView, normalise_relpath
from jupiter.targets.local import LocalTarget


@runtime_checkable
class StreamingTarget(Protocol):
    """Targets that can stream file content (LocalTarget does); snapshots use
    these methods so large files are never held in memory whole."""

    def open_read(self, path: str) -> BinaryIO: ...

    def write_stream(
        self,
        path: str,
        chunks: BinaryIO | list[bytes],
        mode: int | None = None,
        *,
        sync: bool = True,
        expect: Expected | None = None,
    ) -> None: ...

    def flush(self) -> None: ...


def _unique(paths: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(normalise_relpath(p) for p in paths))


def capture(target: TargetView, paths: Iterable[str], blobs: BlobStore) -> list[ManifestEntry]:
    """Snapshot exactly ``paths`` (normalised, duplicates dropped, order kept).

    An absent path is recorded with ``existed=False`` so a rollback removes a
    file the fix created; its missing parent directories are appended as
    absent entries too, so rollback removes directories the fix created.
    Directories, symlinks and special files are recorded by kind, mode and
    owner (the link itself, not what it points to); regular files also by
    content. On a :class:`LocalTarget` unchanged files are
    recognised from their stat identity and not re-read (see
    :mod:`jupiter.snapshots.statcache`); for many paths, new blobs are flushed
    to disk with a single sync at the end instead of one fsync each. Either
    way every blob is durable when this returns.
    """
    rels = _unique(paths)
    if isinstance(target, LocalTarget):
        entries = _LocalCapture(target, blobs).run(rels)
    else:
        entries = [_capture_one(target, rel, blobs) for rel in rels]
    return entries + _missing_ancestors(target, entries)


def _missing_ancestors(target: TargetView, entries: list[ManifestEntry]) -> list[ManifestEntry]:
    """Absent entries for the missing parent directories of absent paths, so
    a rollback also removes directories the change created (when empty)."""
    known = {e.path for e in entries}
    extra: list[ManifestEntry] = []
    for entry in entries:
        if entry.existed or "/" not in entry.path:
            continue
        parts = entry.path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            ancestor = "/".join(parts[:depth])
            if ancestor in known:
                continue
            if target.stat(ancestor) is not None:
                continue
            known.add(ancestor)
            extra.append(ManifestEntry.absent(ancestor))
    return extra


def capture_tree(target: LocalTarget, blobs: BlobStore, under: str = "") -> list[ManifestEntry]:
    """Snapshot every regular file below ``under`` (the whole root by default),
    sorted by path; the same entries ``capture(target, target.walk(under))``
    gives, but walking the tree once with directory descriptors."""
    return _LocalCapture(target, blobs).run_scan(under)


def _capture_one(target: TargetView, rel: str, blobs: BlobStore) -> ManifestEntry:
    state = target.stat(rel)
    if state is None:
        return ManifestEntry.absent(rel)
    if state.kind != "file":
        return ManifestEntry(
            rel, True, state.kind, state.mode, state.uid, state.gid, state.size, None
        )
    try:
        if isinstance(target, StreamingTarget):
            with target.open_read(rel) as fh:
                sha, size = blobs.put_stream(fh)
        else:
            data = target.read_bytes(rel)
            sha, size = blobs.put_bytes(data), len(data)
    except FileNotFoundError:
        # Removed between stat and read: "absent" is its current state.
        return ManifestEntry.absent(rel)
    return ManifestEntry(rel, True, "file", state.mode, state.uid, state.gid, size, sha)


_KINDS = {stat_mod.S_IFREG: "file", stat_mod.S_IFDIR: "dir", stat_mod.S_IFLNK: "symlink"}


def _entry_from_stat(rel: str, st: os.stat_result, size: int, sha: str | None) -> ManifestEntry:
    mode = st.st_mode
    return ManifestEntry(
        rel,
        True,
        _KINDS.get(mode & 0o170000, "other"),
        mode & 0o7777,
        st.st_uid,
        st.st_gid,
        size,
        sha,
    )


class _LocalCapture:
    """The LocalTarget fast path: stat cache, no per-blob fsync, a small thread
    pool (hashing and file I/O release the GIL)."""

    workers = min(4, os.cpu_count() or 1)
    batch_size = 16
    window = 8  # batches in flight: bounds open descriptors and memory
    # Above this many paths one sync(2) at the end beats an fsync per blob;
    # below it, sync(2) would mostly wait for other programs' dirty data.
    batch_sync_from = 64

    def __init__(self, target: LocalTarget, blobs: BlobStore) -> None:
        self._target = target
        self._blobs = blobs
        self._cache = StatCache(blobs.directory, str(target.root))
        self._wrote = False
        self._fsync_each = True

    def _finish(self) -> None:
        # Blobs must be durable before the caller changes the target.
        if self._wrote and not self._fsync_each:
            self._blobs.sync()
        self._cache.save()

    def run(self, rels: list[str]) -> list[ManifestEntry]:
        self._fsync_each = len(rels) < self.batch_sync_from
        try:
            if len(rels) < 64 or self.workers < 2:
                return [self._one(rel) for rel in rels]
            with ThreadPoolExecutor(self.workers) as pool:
                return list(pool.map(self._one, rels, chunksize=16))
        finally:
            self._finish()

    def run_scan(self, under: str) -> list[ManifestEntry]:
        looked_at = time.time_ns()
        self._fsync_each = False
        entries: list[ManifestEntry] = []
        batch: list[tuple[str, int]] = []
        pending: deque[Future[list[ManifestEntry]]] = deque()
        try:
            with ThreadPoolExecutor(max(1, self.workers)) as pool:
                lookup, present = self._cache.lookup, self._blobs.has_listed
                for item in self._target.scan(under):
                    # The hot loop of an unchanged re-snapshot: one lstat per file.
                    st = item.stat
                    sha = lookup(item.rel, st)
                    if sha is not None and present(sha):
                        entries.append(
                            ManifestEntry(
                                item.rel,
                                True,
                                "file",
                                st.st_mode & 0o7777,
                                st.st_uid,
                                st.st_gid,
                                st.st_size,
                                sha,
                            )
                        )
                        continue
                    try:
                        batch.append((item.rel, item.open_fd()))
                    except OSError:
                        continue  # vanished or swapped for a symlink since the scan saw it
                    if len(batch) >= self.batch_size:
                        # Work goes out in batches: one future per file costs
                        # more than hashing a small file.
                        pending.append(pool.submit(self._store_batch, batch, looked_at))
                        batch = []
                        if len(pending) >= self.window:
                            entries.extend(pending.popleft().result())
                if batch:
                    pending.append(pool.submit(self._store_batch, batch, looked_at))
                    batch = []
                while pending:
                    entries.extend(pending.popleft().result())
        finally:
            for _, fd in batch:
                os.close(fd)
            self._finish()
        entries.sort(key=lambda e: e.path)
        return entries

    def _store_batch(self, batch: list[tuple[str, int]], looked_at: int) -> list[ManifestEntry]:
        out: list[ManifestEntry] = []
        for index, (rel, fd) in enumerate(batch):
            try:
                entry = self._store_fd(rel, fd, looked_at)
            except BaseException:
                for _, later in batch[index + 1 :]:
                    os.close(later)
                raise
            if entry is not None:
                out.append(entry)
        return out

    def _store_fd(self, rel: str, fd: int, looked_at: int) -> ManifestEntry | None:
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                return None  # replaced by something else since the scan
            sha, size = self._blobs.put_fd(fd, st.st_size, sync=self._fsync_each, bulk=True)
        finally:
            os.close(fd)
        self._wrote = True
        self._cache.record(rel, st, sha, looked_at)
        return _entry_from_stat(rel, st, size, sha)

    def _one(self, rel: str) -> ManifestEntry:
        looked_at = time.time_ns()
        st = self._target.lstat(rel)
        if st is None:
            self._cache.forget(rel)
            return ManifestEntry.absent(rel)
        if not stat_mod.S_ISREG(st.st_mode):
            return _entry_from_stat(rel, st, st.st_size, None)
        sha = self._cache.lookup(rel, st)
        if sha is not None and self._blobs.has(sha):
            return _entry_from_stat(rel, st, st.st_size, sha)
        try:
            with self._target.open_read(rel) as fh:
                fst = os.fstat(fh.fileno())
                sha, size = self._blobs.put_fd(fh.fileno(), fst.st_size, sync=self._fsync_each)
        except FileNotFoundError:
            self._cache.forget(rel)
            return ManifestEntry.absent(rel)
        self._wrote = True
        self._cache.record(rel, fst, sha, looked_at)
        return _entry_from_stat(rel, fst, size, sha)
