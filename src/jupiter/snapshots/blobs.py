"""A content-addressed blob store: one file per distinct content, named by its sha256.

Layout: ``<directory>/ab/cdef...`` (two-hex-digit fan-out), files 0o600,
directories 0o700, so snapshots of secrets stay readable only by Jupiter.
Identical content is stored once. A blob only ever appears complete: small
content is written to an unnamed ``O_TMPFILE`` and linked into place (or, where
that is unsupported, to a temp file renamed into place); large streams go
through ``<directory>/tmp`` and a rename. ``<directory>/statcache`` holds the
capture stat cache (see :mod:`jupiter.snapshots.statcache`).

Secret content (see :mod:`jupiter.snapshots.secret_blobs`) is stored sealed
under the workspace key instead, at ``<directory>/sealed/ab/cdef...`` — still
named by the sha256 of its plaintext, so manifests and restores do not change:
:meth:`BlobStore.open` decrypts, and a restore is still proven by re-hashing
the plaintext. The key comes from ``keys`` (by default the ``keys/`` directory
beside ``directory``, i.e. the workspace's own) and is created on the first
secret blob.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from jupiter.errors import SealedDataError, SnapshotError
from jupiter.snapshots.secret_blobs import SealedStore, looks_secret

if TYPE_CHECKING:
    from jupiter.keys import KeyStore
    from jupiter.sealing import WorkspaceKey

CHUNK = 1 << 20
SMALL_FILE = 4 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


_tmpfile_ok = [True]  # flips to False once O_TMPFILE or /proc linking is unavailable
_root_fd_cache: list[int] = []


def _root_fd() -> int:
    """A descriptor of ``/``: passing it makes ``os.link`` use linkat(2)."""
    if not _root_fd_cache:
        _root_fd_cache.append(os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    return _root_fd_cache[0]


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class BlobStore:
    """Blobs under ``directory`` (created 0o700 if missing).

    ``sync=True`` (the default) fsyncs each blob before it becomes visible;
    bulk writers pass ``sync=False`` and call :meth:`sync` once at the end.
    """

    def __init__(self, directory: Path, keys: KeyStore | None = None) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.directory / "tmp").mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise SnapshotError(
                f"blob store {self.directory} cannot be created ({exc.strerror}); "
                "check the workspace path and its permissions"
            ) from exc
        self._made_dirs: set[str] = set()
        self._prefix = f"{self.directory}/"
        self._present: dict[str, set[str]] | None = None
        self._sealed = SealedStore(self.directory, keys)

    # -- naming ----------------------------------------------------------

    def path_for(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        if not _SHA_RE.match(sha):
            raise SnapshotError(f"blob id {sha!r} is not a lowercase sha256 hex digest")
        return self.directory / sha[:2] / sha[2:]

    def sealed_path_for(self, sha: str) -> Path:
        """Where the sealed (encrypted) copy of blob ``sha`` lives."""
        self.path_for(sha)  # validates the name
        return self._sealed.path_for(sha)

    def has_listed(self, sha: str, *, sealed: bool = False) -> bool:
        """Like :meth:`has`, answered from one listing per fan-out directory,
        taken on first use and kept for this store object's lifetime (plus the
        blobs it writes). For bulk checks right after a scan; a blob deleted
        by someone else meanwhile is still reported present. ``sealed=True``
        asks for the sealed copy only."""
        if len(sha) != 64:
            return False
        if self._present is None:
            self._present = {}
        fan = sha[:2]
        names = self._present.get(fan)
        if names is None:
            if not _SHA_RE.match(sha):
                return False
            try:
                names = set(os.listdir(f"{self._prefix}{fan}"))
            except FileNotFoundError:
                names = set()
            self._present[fan] = names
        if sha[2:] in names and not sealed:
            return True
        return self._sealed.has_listed(sha)

    def has(self, sha: str) -> bool:
        """True when blob ``sha`` is stored, plain or sealed."""
        return self._plain_exists(sha) or self.has_sealed(sha)

    def has_sealed(self, sha: str) -> bool:
        """True when blob ``sha`` is stored sealed (whether or not also plain)."""
        return _SHA_RE.match(sha) is not None and self._sealed.has(sha)

    def _plain_exists(self, sha: str) -> bool:
        # String paths, not Path objects: this runs once per file on re-snapshots.
        return _SHA_RE.match(sha) is not None and os.path.isfile(
            f"{self._prefix}{sha[:2]}/{sha[2:]}"
        )

    # -- writing ---------------------------------------------------------

    def _new_temp(self) -> tuple[int, Path]:
        tmp = self.directory / "tmp" / f"{secrets.token_hex(8)}.part"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        return fd, tmp

    def _publish(self, tmp: Path, sha: str) -> None:
        """Move a finished temp file into place (or drop it if the blob exists)."""
        self._ensure_fan(sha)
        final = self.path_for(sha)
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
        if self._present is not None:
            self._present.setdefault(sha[:2], set()).add(sha[2:])

    def _ensure_fan(self, sha: str) -> str:
        fan = sha[:2]
        if fan not in self._made_dirs:
            with contextlib.suppress(FileExistsError):
                os.mkdir(f"{self._prefix}{fan}", 0o700)
            self._made_dirs.add(fan)
        return f"{self._prefix}{fan}"

    def put_bytes(
        self, data: bytes, *, sync: bool = True, bulk: bool = False, secret: bool = False
    ) -> str:
        """Store ``data``; returns its sha256 hex digest. Content already in
        the store is not written again. ``bulk=True`` answers "is it there?"
        from directory listings (see :meth:`has_listed`) instead of one stat
        per blob; a blob that appeared meanwhile is still handled.
        ``secret=True``, or content holding a private key, stores it sealed."""
        sha = hashlib.sha256(data).hexdigest()
        if secret or looks_secret(data):
            if not self.has_sealed(sha):
                self._sealed.put(sha, [data], sync)
            return sha
        if (self.has_listed(sha) and self.has(sha)) if bulk else self.has(sha):
            return sha
        fan_dir = self._ensure_fan(sha)
        final = f"{fan_dir}/{sha[2:]}"
        if not self._link_anonymous(fan_dir, final, data, sync):
            self._rename_into(fan_dir, final, data, sync)
        if self._present is not None:
            self._present.setdefault(sha[:2], set()).add(sha[2:])
        return sha

    def _link_anonymous(self, fan_dir: str, final: str, data: bytes, sync: bool) -> bool:
        """Write an unnamed file (O_TMPFILE) and link it in: one directory
        update instead of create + rename. False if the system cannot."""
        if not _tmpfile_ok[0]:
            return False
        try:
            fd = os.open(fan_dir, os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                _tmpfile_ok[0] = False
                return False
            raise
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
            try:
                # linkat(AT_SYMLINK_FOLLOW) on the /proc magic link names the
                # open inode; the link appears complete or not at all.
                os.link(f"proc/self/fd/{fd}", final, src_dir_fd=_root_fd(), follow_symlinks=True)
            except FileExistsError:
                pass  # the same content was stored concurrently
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EXDEV, errno.EPERM):
                    raise
                _tmpfile_ok[0] = False  # no /proc, or linking not permitted
                return False
        finally:
            os.close(fd)
        return True

    @staticmethod
    def _rename_into(fan_dir: str, final: str, data: bytes, sync: bool) -> None:
        tmp = f"{final}.{secrets.token_hex(4)}.part"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            try:
                _write_all(fd, data)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_fd(
        self,
        fd: int,
        size_hint: int,
        *,
        sync: bool = True,
        bulk: bool = False,
        secret: bool = False,
    ) -> tuple[str, int]:
        """Store what is readable from an open descriptor (the caller closes
        it); returns ``(sha256, size)``. Files up to 4 MiB are read whole and
        hashed first, so content already stored costs no write at all."""
        if size_hint <= SMALL_FILE:
            parts: list[bytes] = []
            total = 0
            while total <= SMALL_FILE:
                chunk = os.read(fd, max(size_hint + 1, 65536))
                if not chunk:
                    data = parts[0] if len(parts) == 1 else b"".join(parts)
                    return self.put_bytes(data, sync=sync, bulk=bulk, secret=secret), total
                parts.append(chunk)
                total += len(chunk)
            # It grew past the limit while we read: stream the rest.
            rest = iter(lambda: os.read(fd, CHUNK), b"")
            return self.put_chunks(itertools.chain(parts, rest), sync=sync, secret=secret)
        return self.put_chunks(iter(lambda: os.read(fd, CHUNK), b""), sync=sync, secret=secret)

    def put_chunks(
        self, chunks: Iterable[bytes], *, sync: bool = True, secret: bool = False
    ) -> tuple[str, int]:
        """Store the concatenation of ``chunks`` in one pass (never all in
        memory); returns ``(sha256, size)``. Sealed when ``secret`` or when
        the first chunk holds a private key."""
        stream = iter(chunks)
        first = next(stream, b"")
        if secret or looks_secret(first):
            return self._sealed.put_stream(itertools.chain([first], stream), sync)
        stream = itertools.chain([first], stream)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = self._new_temp()
        try:
            try:
                for chunk in stream:
                    digest.update(chunk)
                    size += len(chunk)
                    _write_all(fd, chunk)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            sha = digest.hexdigest()
            self._publish(tmp, sha)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return sha, size

    def put_stream(
        self, stream: BinaryIO, *, sync: bool = True, secret: bool = False
    ) -> tuple[str, int]:
        """Store everything readable from ``stream``; returns ``(sha256, size)``."""
        return self.put_chunks(iter(lambda: stream.read(CHUNK), b""), sync=sync, secret=secret)

    def put_file(self, path: Path, *, sync: bool = True, secret: bool = False) -> tuple[str, int]:
        """Store a local file's content; returns ``(sha256, size)``."""
        with open(path, "rb") as fh:
            return self.put_stream(fh, sync=sync, secret=secret)

    def workspace_key(self, *, create: bool) -> WorkspaceKey:
        """The key sealed blobs use (loaded once; created only when ``create``)."""
        return self._sealed.workspace_key(create=create)

    def sync(self) -> None:
        """Flush blobs written with ``sync=False`` to disk (one ``sync(2)``)."""
        os.sync()

    # -- reading ---------------------------------------------------------

    def open(self, sha: str) -> BinaryIO:
        """Open a blob's plaintext for streaming reads (a sealed blob is
        decrypted as it is read); SnapshotError if it is missing,
        KeyFileError if it is sealed and the workspace key is missing or another."""
        try:
            return open(self.path_for(sha), "rb")
        except FileNotFoundError:
            pass
        sealed = self._sealed.open(sha, CHUNK)
        if sealed is None:
            raise SnapshotError(
                f"blob {sha} is missing from {self.directory}; the snapshot cannot be used"
            )
        return sealed

    def get(self, sha: str) -> bytes:
        with self.open(sha) as fh:
            return fh.read()

    def hash_of(self, sha: str) -> str | None:
        """The actual sha256 of the stored blob ``sha`` (of its plaintext, for
        a sealed blob), ``None`` if missing, ``"unauthentic"`` for a sealed
        blob that fails authentication (damaged or swapped)."""
        self.path_for(sha)  # an invalid name is an error, not a missing blob
        digest = hashlib.sha256()
        try:
            with self.open(sha) as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
        except SnapshotError:
            return None
        except SealedDataError:
            return "unauthentic"
        return digest.hexdigest()

    def verify(self, sha: str) -> bool:
        """True when the blob exists and its content still hashes to ``sha``."""
        return self.hash_of(sha) == sha
