"""Which snapshot blobs are secret, and reading them back sealed.

A file's copy in the blob store is sealed under the workspace key (see
:mod:`jupiter.sealing`) when the file was readable by its owner only (no
group or other permission bits: ``0600``, ``0400``, ``0700``…), when its
content holds a private key, or when the caller names it secret. Anything
else stays plain, so the common case costs no cryptography.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

if TYPE_CHECKING:
    from jupiter.keys import KeyStore
    from jupiter.sealing import WorkspaceKey

# PEM "-----BEGIN … PRIVATE KEY-----" of any kind (RSA, EC, OPENSSH, ENCRYPTED,
# PKCS#8) anywhere in a file; PuTTY key files and age identities by how they
# start. One literal search over the whole content: it runs near memory speed,
# where a regex over every captured file would halve capture throughput.
_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def blob_context(sha: str) -> str:
    """Sealed blobs authenticate their own name: one cannot stand in for another."""
    return f"jupiter snapshot blob {sha}"


def is_private_mode(mode: int | None) -> bool:
    """True for permission bits that let nobody but the owner in."""
    return mode is not None and mode & 0o077 == 0


def looks_secret(head: bytes) -> bool:
    """True when ``head`` (a file's content, or its first chunk) holds a private key."""
    if b"PRIVATE KEY-----" in head and _PEM.search(head) is not None:
        return True
    return head.startswith(b"PuTTY-User-Key-File-") or b"AGE-SECRET-KEY-1" in head[:4096]


class _SealedReader(io.RawIOBase):
    """The plaintext of a sealed blob as a stream; only authenticated
    segments are ever returned (see :meth:`WorkspaceKey.unseal_chunks`)."""

    def __init__(self, fh: BinaryIO, key: WorkspaceKey, context: str) -> None:
        super().__init__()
        self._fh = fh
        self._segments: Iterator[bytes] = key.unseal_chunks(fh, context)
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._segments))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


class SealedStore:
    """The sealed half of a :class:`~jupiter.snapshots.blobs.BlobStore`:
    ``<blob dir>/sealed/ab/cdef...`` (0700 directories, 0600 files), named by
    the sha256 of the plaintext. The caller validates names."""

    def __init__(self, blob_dir: Path, keys: KeyStore | None) -> None:
        self.directory = Path(blob_dir) / "sealed"
        self._tmp = Path(blob_dir) / "tmp"
        self._keys = keys
        self._blob_dir = Path(blob_dir)
        self._key: WorkspaceKey | None = None
        self._lock = threading.Lock()
        self._listed: dict[str, set[str]] = {}
        self._made_dirs: set[str] = set()

    def path_for(self, sha: str) -> Path:
        return self.directory / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        return os.path.isfile(f"{self.directory}/{sha[:2]}/{sha[2:]}")

    def has_listed(self, sha: str) -> bool:
        """Like :meth:`has`, from one directory listing per fan-out (kept)."""
        names = self._listed.get(sha[:2])
        if names is None:
            try:
                names = set(os.listdir(f"{self.directory}/{sha[:2]}"))
            except FileNotFoundError:
                names = set()
            self._listed[sha[:2]] = names
        return sha[2:] in names

    def workspace_key(self, *, create: bool) -> WorkspaceKey:
        with self._lock:
            if self._key is None:
                from jupiter.keys import KeyStore

                keys = self._keys if self._keys is not None else KeyStore(self._blob_dir.parent)
                self._key = keys.workspace_key(create=create)
            return self._key

    def put(self, sha: str, chunks: Iterable[bytes], sync: bool) -> None:
        """Seal the plaintext ``chunks`` (whose sha256 is ``sha``) into place."""
        key = self.workspace_key(create=True)
        fd, tmp = self._new_temp()
        try:
            try:
                for piece in key.seal_chunks(chunks, blob_context(sha)):
                    _write_all(fd, piece)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            final = self.path_for(sha)
            if sha[:2] not in self._made_dirs:
                for directory in (self.directory, final.parent):
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(directory, 0o700)
                self._made_dirs.add(sha[:2])
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self._listed.setdefault(sha[:2], set()).add(sha[2:])

    def put_stream(self, chunks: Iterator[bytes], sync: bool) -> tuple[str, int]:
        """Seal a stream too large to hold, whose name (its sha256) is known
        only at its end. Sealed blobs authenticate their name, so the stream
        is first sealed to a temp file under a one-off context, then
        re-sealed from there under its name: nothing plain touches the disk,
        at the cost of a second pass (secret files over 4 MiB are rare)."""
        digest = hashlib.sha256()
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        key = self.workspace_key(create=True)
        provisional = f"jupiter blob upload {secrets.token_hex(16)}"
        fd, tmp = self._new_temp()
        try:
            try:
                for piece in key.seal_chunks(counted(), provisional):
                    _write_all(fd, piece)
            finally:
                os.close(fd)
            sha = digest.hexdigest()
            if not self.has(sha):
                with open(tmp, "rb") as fh:
                    self.put(sha, key.unseal_chunks(fh, provisional), sync)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return sha, size

    def open(self, sha: str, buffer: int) -> BinaryIO | None:
        """The plaintext of blob ``sha`` as a stream, or ``None`` if it is not
        stored sealed. KeyFileError when the workspace key is missing or
        another; reads raise SealedDataError where the blob fails
        authentication."""
        try:
            fh = open(self.path_for(sha), "rb")  # noqa: SIM115 - the returned reader closes it
        except FileNotFoundError:
            return None
        try:
            key = self.workspace_key(create=False)
        except BaseException:
            fh.close()
            raise
        return cast(BinaryIO, io.BufferedReader(_SealedReader(fh, key, blob_context(sha)), buffer))

    def _new_temp(self) -> tuple[int, Path]:
        tmp = self._tmp / f"{secrets.token_hex(8)}.sealed.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(tmp, flags, 0o600), tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
