"""Remember which content a file had, so an unchanged re-snapshot skips reading it.

A file's identity for the cache is ``(dev, ino, size, mtime_ns, ctime_ns)``:
any write, rename-over, truncate, chmod or touch changes at least one of them
(``ctime`` cannot be set by user space). As in git's "racily clean" rule, a
file whose timestamps are within :data:`RACY_MARGIN_NS` of the moment we
looked at it is never cached: it could still change within the same
timestamp tick, and a cache hit would then hide the change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

import orjson

RACY_MARGIN_NS = 2_000_000_000  # covers 1-2 s timestamp granularity (FAT, some NFS)

_Key = tuple[int, int, int, int, int]


def stat_key(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    """Per-target-root cache file ``<blob dir>/statcache/<hash of root>.json``.

    A damaged or unreadable cache file is ignored (everything is re-hashed).
    """

    def __init__(self, blob_dir: Path, root: str) -> None:
        name = hashlib.sha256(root.encode()).hexdigest()[:32]
        self._dir = Path(blob_dir) / "statcache"
        self._file = self._dir / f"{name}.json"
        self._entries: dict[str, list[int | str]] = {}
        self._dirty = False
        try:
            loaded = orjson.loads(self._file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            loaded = {}
        if isinstance(loaded, dict) and loaded.get("root") == root:
            files = loaded.get("files")
            if isinstance(files, dict):
                self._entries = files
        self._root = root

    def lookup(self, rel: str, st: os.stat_result) -> str | None:
        """The cached sha256 for ``rel`` if its stat identity is unchanged."""
        cached = self._entries.get(rel)
        if (
            cached is None
            or len(cached) != 6
            or cached[1] != st.st_ino
            or cached[3] != st.st_mtime_ns
            or cached[4] != st.st_ctime_ns
            or cached[2] != st.st_size
            or cached[0] != st.st_dev
        ):
            return None
        sha = cached[5]
        return sha if isinstance(sha, str) and len(sha) == 64 else None

    def record(self, rel: str, st: os.stat_result, sha: str, looked_at_ns: int) -> None:
        """Remember ``sha`` for ``rel`` unless the file is racily recent.

        ``st`` must be the stat taken *before* the content was read, and
        ``looked_at_ns`` a ``time.time_ns()`` taken before that stat.
        """
        newest = max(st.st_mtime_ns, st.st_ctime_ns)
        if newest >= looked_at_ns - RACY_MARGIN_NS:
            self._entries.pop(rel, None)
            self._dirty = True
            return
        self._entries[rel] = [*stat_key(st), sha]
        self._dirty = True

    def forget(self, rel: str) -> None:
        if self._entries.pop(rel, None) is not None:
            self._dirty = True

    def save(self) -> None:
        """Write the cache atomically (0o600) if anything changed."""
        if not self._dirty:
            return
        self._dir.mkdir(mode=0o700, exist_ok=True)
        tmp = self._dir / f".{secrets.token_hex(6)}.tmp"
        payload = orjson.dumps({"root": self._root, "files": self._entries})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, self._file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self._dirty = False
