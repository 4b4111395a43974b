"""The workspace's key files: kept beside the database, never inside it.

``JUPITER_HOME/keys/`` (mode 0700) holds

- ``workspace.key`` (0600): the AES-256 key that seals secrets at rest
  (see :mod:`jupiter.sealing`), e.g. snapshot copies of private keys;
- ``audit-ed25519`` (0600, PKCS#8 PEM): the key that signs audit
  checkpoints (see :mod:`jupiter.checkpoints`); ``audit-ed25519.pub`` is its
  public half, for whoever verifies checkpoints elsewhere.

Both are created on first use. Someone who can write the database but not
this directory can neither read sealed secrets nor forge a checkpoint. A key
file that is missing, damaged or readable by other users is refused with one
sentence (:class:`~jupiter.errors.KeyFileError`); nothing here ever prints
key material.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jupiter.errors import KeyFileError
from jupiter.sealing import KEY_BYTES, WorkspaceKey

WORKSPACE_KEY = "workspace.key"
AUDIT_KEY = "audit-ed25519"
_WORKSPACE_KEY_TAG = "jupiter-workspace-key-v1 aes-256-gcm"
_create_lock = threading.Lock()


def key_id(public: bytes) -> str:
    """A short public name for a key: the first 4 bytes of its sha256, hex."""
    return hashlib.sha256(public).hexdigest()[:8]


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (as ``jupiter audit public-key`` writes)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"public key file {path} cannot be read ({exc.strerror}); "
            "pass the file `jupiter audit public-key` wrote"
        ) from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(
            f"{path} is not an Ed25519 public key in PEM form; "
            "pass the file `jupiter audit public-key` wrote"
        )
    return key


class KeyStore:
    """The key files of one workspace home."""

    def __init__(self, home: Path) -> None:
        self.directory = Path(home) / "keys"

    @property
    def workspace_key_path(self) -> Path:
        return self.directory / WORKSPACE_KEY

    @property
    def audit_key_path(self) -> Path:
        return self.directory / AUDIT_KEY

    # -- the workspace (sealing) key ------------------------------------

    def workspace_key(self, *, create: bool = True) -> WorkspaceKey:
        """The sealing key; created on first use unless ``create=False``
        (reading sealed data must never invent a new, useless key)."""
        path = self.workspace_key_path
        if create and not path.exists():
            encoded_new = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
            self._create(path, f"{_WORKSPACE_KEY_TAG} {encoded_new}\n".encode())
        raw = self._read_private(path, "workspace key", needed_for="sealed secrets")
        text = raw.decode("ascii", errors="replace").strip()
        tag, _, encoded = text.rpartition(" ")
        try:
            material = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            material = b""
        if tag != _WORKSPACE_KEY_TAG or len(material) != KEY_BYTES:
            raise KeyFileError(
                f"the workspace key at {path} is damaged (not a {KEY_BYTES}-byte "
                "jupiter-workspace-key-v1 file); restore it from your backup — "
                "sealed secrets cannot be decrypted without it"
            )
        return WorkspaceKey(material, str(path))

    # -- the audit signing key ------------------------------------------

    def audit_signing_key(self, *, create: bool = True) -> Ed25519PrivateKey:
        path = self.audit_key_path
        if create and not path.exists():
            new = Ed25519PrivateKey.generate()
            pem = new.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            if self._create(path, pem):
                self._write_public(new.public_key())
        raw = self._read_private(path, "audit signing key", needed_for="audit checkpoints")
        try:
            key = serialization.load_pem_private_key(raw, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(
                f"the audit signing key at {path} is damaged (not an unencrypted Ed25519 "
                "PKCS#8 PEM key); restore it from your backup"
            )
        return key

    def audit_public_key(self, *, create: bool = True) -> Ed25519PublicKey:
        return self.audit_signing_key(create=create).public_key()

    def audit_public_pem(self, *, create: bool = True) -> str:
        key = self.audit_public_key(create=create)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def _write_public(self, key: Ed25519PublicKey) -> None:
        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        tmp = self.directory / f".{AUDIT_KEY}.pub.{secrets.token_hex(4)}"
        tmp.write_bytes(pem)
        os.replace(tmp, self.directory / f"{AUDIT_KEY}.pub")

    # -- files ------------------------------------------------------------

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self.directory.stat().st_mode) != 0o700:
                self.directory.chmod(0o700)
        except OSError as exc:
            raise KeyFileError(
                f"key directory {self.directory} cannot be created ({exc.strerror}); "
                "check the workspace's permissions"
            ) from None

    def _create(self, path: Path, content: bytes) -> bool:
        """Write a new key file 0600, complete or not at all; False when
        another process created it first (its key wins, ours is dropped)."""
        self._ensure_directory()
        with _create_lock:
            tmp = self.directory / f".{path.name}.{secrets.token_hex(4)}.part"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    os.write(fd, content)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    os.link(tmp, path)  # unlike rename, never replaces an existing key
                except FileExistsError:
                    return False
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return True

    @staticmethod
    def _read_private(path: Path, what: str, *, needed_for: str) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise KeyFileError(
                f"the {what} at {path} is missing; restore it from your backup "
                f"({needed_for} cannot be used without it)"
            ) from None
        except OSError as exc:
            raise KeyFileError(
                f"the {what} at {path} cannot be opened ({exc.strerror}); "
                "it must be a regular file readable by Jupiter's user"
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise KeyFileError(f"the {what} at {path} is not a regular file; replace it")
            if st.st_mode & 0o077:
                raise KeyFileError(
                    f"the {what} at {path} is accessible by other users "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}` "
                    "and consider the key exposed"
                )
            chunks: list[bytes] = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
                if sum(map(len, chunks)) > 65536:
                    raise KeyFileError(f"the {what} at {path} is too large to be a key; replace it")
            return b"".join(chunks)
        finally:
            os.close(fd)
