"""Seal secrets at rest under the workspace key (AES-256-GCM, in segments).

A sealed blob is a 23-byte header — ``JUPSEAL1``, the key's 8-byte id and a
random 7-byte nonce prefix — followed by segments of up to 64 KiB of
plaintext, each encrypted and authenticated on its own (16-byte tag). Segment
``i`` uses the nonce ``prefix || i (4 bytes) || last (1 byte)``, and every
segment authenticates the header and the caller's *context* as associated
data. So a blob cannot be read under another key, moved to another context
(say, another blob's name), reordered, or cut short at a segment boundary
without :meth:`WorkspaceKey.unseal` noticing; and it can be written and read
as a stream, never whole in memory (the "STREAM" construction of age and
Tink).

Typical use::

    key = KeyStore(home).workspace_key()
    blob = key.seal(b"secret", "plan:42/password")
    assert key.unseal(blob, "plan:42/password") == b"secret"
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jupiter.errors import KeyFileError, SealedDataError

KEY_BYTES = 32
MAGIC = b"JUPSEAL1"
SEGMENT = 64 * 1024
TAG = 16
_PREFIX = 7
HEADER = len(MAGIC) + 8 + _PREFIX


def is_sealed(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of some data) starts a sealed blob."""
    return head.startswith(MAGIC)


class WorkspaceKey:
    """The workspace's AES-256 key; ``str``/``repr`` never show the key."""

    __slots__ = ("_aead", "id", "source")

    def __init__(self, material: bytes, source: str = "memory") -> None:
        if len(material) != KEY_BYTES:
            raise KeyFileError(f"a workspace key must be {KEY_BYTES} bytes, got {len(material)}")
        self._aead = AESGCM(material)
        self.id = hashlib.sha256(b"jupiter-workspace-key\n" + material).digest()[:8]
        self.source = source

    def __repr__(self) -> str:
        return f"WorkspaceKey(id={self.id.hex()}, source={self.source!r})"

    # -- whole values -----------------------------------------------------

    def seal(self, data: bytes, context: str) -> bytes:
        """Encrypt and authenticate ``data``, bound to ``context``."""
        return b"".join(self.seal_chunks([data], context))

    def unseal(self, blob: bytes, context: str) -> bytes:
        """The plaintext of :meth:`seal`'s output; SealedDataError if it was
        altered, cut short or sealed with another context, KeyFileError if it
        was sealed under another key."""
        return b"".join(self.unseal_chunks(_BytesReader(blob), context))

    # -- streams ------------------------------------------------------------

    def seal_chunks(self, chunks: Iterable[bytes], context: str) -> Iterator[bytes]:
        """Sealed output for the concatenation of ``chunks``, piece by piece."""
        import secrets

        header = MAGIC + self.id + secrets.token_bytes(_PREFIX)
        aad = header + context.encode()
        prefix = header[-_PREFIX:]
        yield header
        pending = b""
        index = 0
        for chunk in chunks:
            pending = pending + chunk if pending else chunk
            # Keep at least one byte back: the last segment must be marked last.
            start = 0
            while len(pending) - start > SEGMENT:
                segment = pending[start : start + SEGMENT]
                yield self._aead.encrypt(_nonce(prefix, index, False), segment, aad)
                start += SEGMENT
                index += 1
            pending = pending[start:]
        yield self._aead.encrypt(_nonce(prefix, index, True), pending, aad)

    def unseal_chunks(self, stream: BinaryIO | _BytesReader, context: str) -> Iterator[bytes]:
        """Authenticated plaintext segments read from ``stream``; nothing is
        yielded that has not passed its tag check."""
        header = _read_exact(stream, HEADER)
        if len(header) < HEADER or not is_sealed(header):
            raise SealedDataError("the data is not sealed by Jupiter (no JUPSEAL1 header)")
        sealed_by = header[len(MAGIC) : len(MAGIC) + 8]
        if sealed_by != self.id:
            raise KeyFileError(
                f"the data was sealed under workspace key {sealed_by.hex()}, but the key at "
                f"{self.source} is {self.id.hex()}; restore the original key file"
            )
        aad = header + context.encode()
        prefix = header[-_PREFIX:]
        index = 0
        current = _read_exact(stream, SEGMENT + TAG)
        while True:
            following = _read_exact(stream, SEGMENT + TAG) if len(current) == SEGMENT + TAG else b""
            last = not following
            if len(current) < TAG:
                raise SealedDataError("the sealed data is cut short")
            try:
                yield self._aead.decrypt(_nonce(prefix, index, last), current, aad)
            except InvalidTag:
                raise SealedDataError(
                    f"sealed segment {index} fails authentication: the data is damaged, "
                    "was altered or cut short, or belongs to another context"
                ) from None
            if last:
                return
            current, index = following, index + 1


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 1 << 32:
        raise SealedDataError("sealed data larger than 256 TiB is not supported")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int) -> bytes:
        out = bytes(self._view[self._pos : self._pos + n])
        self._pos += len(out)
        return out


def _read_exact(stream: BinaryIO | _BytesReader, n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
