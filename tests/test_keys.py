"""The workspace key files and the seal/unseal API."""

from __future__ import annotations

import itertools
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupiter.errors import KeyFileError, SealedDataError
from jupiter.keys import KeyStore, load_public_key
from jupiter.sealing import SEGMENT, WorkspaceKey


def test_workspace_key_is_created_once_private(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "home")
    first = keys.workspace_key()
    assert stat.S_IMODE(keys.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.workspace_key_path.stat().st_mode) == 0o600
    assert KeyStore(tmp_path / "home").workspace_key().id == first.id
    material = keys.workspace_key_path.read_bytes().split()[-1].decode()
    assert material not in repr(first) and material not in str(first)


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    ids: list[bytes] = []

    def make() -> None:
        ids.append(KeyStore(tmp_path / "home").workspace_key().id)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert [p.name for p in (tmp_path / "home" / "keys").iterdir()] == ["workspace.key"]


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT])
def test_seal_round_trips_and_hides_the_plaintext(tmp_path: Path, size: int) -> None:
    key = KeyStore(tmp_path).workspace_key()
    data = (b"attack at dawn " * (size // 15 + 1))[:size]
    blob = key.seal(data, "plan:7/pg-key")
    assert key.unseal(blob, "plan:7/pg-key") == data
    if size >= 15:
        assert b"attack at dawn" not in blob
    assert key.seal(data, "plan:7/pg-key") != blob  # a fresh nonce every time


def test_unseal_refuses_other_context_tampering_truncation_and_other_key(tmp_path: Path) -> None:
    key = KeyStore(tmp_path / "a").workspace_key()
    blob = key.seal(b"x" * (2 * SEGMENT + 10), "ctx")
    with pytest.raises(SealedDataError, match="another context"):
        key.unseal(blob, "other")
    flipped = bytearray(blob)
    flipped[-3] ^= 0x80
    with pytest.raises(SealedDataError, match="fails authentication"):
        key.unseal(bytes(flipped), "ctx")
    # Dropping whole trailing segments is noticed: the last one is marked.
    with pytest.raises(SealedDataError):
        key.unseal(blob[: 23 + SEGMENT + 16], "ctx")
    with pytest.raises(SealedDataError, match="not sealed by Jupiter"):
        key.unseal(b"plain text", "ctx")
    other = KeyStore(tmp_path / "b").workspace_key()
    with pytest.raises(KeyFileError, match="sealed under workspace key"):
        other.unseal(blob, "ctx")


def test_bad_key_files_are_one_sentence(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    with pytest.raises(KeyFileError, match=r"workspace key at .* is missing; restore it"):
        keys.workspace_key(create=False)
    assert not keys.workspace_key_path.exists()
    keys.workspace_key()
    keys.workspace_key_path.write_text("jupiter-workspace-key-v1 aes-256-gcm !!notbase64\n")
    with pytest.raises(KeyFileError, match="is damaged"):
        keys.workspace_key()
    keys.workspace_key_path.write_bytes(b"")
    with pytest.raises(KeyFileError, match="is damaged"):
        keys.workspace_key()
    with pytest.raises(KeyFileError, match="must be 32 bytes"):
        WorkspaceKey(b"short")


def test_audit_key_pair_is_private_and_exportable(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    signing = keys.audit_signing_key()
    assert stat.S_IMODE(keys.audit_key_path.stat().st_mode) == 0o600
    pem = keys.audit_public_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in pem
    pub_file = keys.directory / "audit-ed25519.pub"
    assert pub_file.read_text() == pem
    loaded = load_public_key(pub_file)
    loaded.verify(signing.sign(b"m"), b"m")  # raises if the pair does not match
    keys.audit_key_path.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(KeyFileError, match=r"audit signing key at .* is damaged"):
        keys.audit_signing_key()
    (tmp_path / "not-a-key.pem").write_text("hello")
    with pytest.raises(KeyFileError, match="not an Ed25519 public key"):
        load_public_key(tmp_path / "not-a-key.pem")


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=3 * SEGMENT + 7),
    cuts=st.lists(st.integers(min_value=0, max_value=3 * SEGMENT + 7), max_size=6),
)
def test_any_chunking_seals_to_the_same_plaintext(data: bytes, cuts: list[int]) -> None:
    key = WorkspaceKey(bytes(range(32)))
    points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    blob = b"".join(key.seal_chunks(chunks, "ctx"))
    assert key.unseal(blob, "ctx") == data
    assert len(blob) == 23 + len(data) + 16 * (len(data) // SEGMENT + 1) - (
        16 if data and len(data) % SEGMENT == 0 else 0
    )
