"""Signed audit checkpoints: what the chain was, signed with a key outside the database.

A checkpoint follows the layout of a transparency-log checkpoint (C2SP
``tlog-checkpoint``, a "signed note" as Go's sumdb and sigsum use): a
signed text body, a blank line, an em-dash signature line. It then carries
the hash of every entry it covers, so a later verify can name the *first*
entry that differs, not merely say that something did::

    jupiter.audit/6f1c0b7e-3d0a-4a39-9a55-0d3c2b9f8e21     origin: workspace id
    42                                                      entries covered
    q0rU1kS0tB1B2cXxwY3ZeXo5hGm4mQ7m0hQxkVjQnQs=            head hash (base64)
    time 2026-12-05T12:50:09.123456+00:00
    entries-sha256 5d41402abc4b2a76b9719d911017c592...      over entry hashes 1..42

    — jupiter.audit/6f1c0b7e-… <base64: 4-byte key id + Ed25519 signature>

    # entry hashes 1-42; covered by entries-sha256
    3b4c…
    …

The signature covers the body (the five lines); ``entries-sha256`` binds the
hash list to it. Why a list and not a Merkle tree: the verifier always holds
the whole chain (it walks the database anyway), so what the checkpoint must
remember is what each entry's hash *was*. A Merkle root alone only says that
something changed; pinpointing the first changed entry needs the tree's
leaves again — this same list. The cost is 65 bytes per entry in the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jupiter.errors import InputError
from jupiter.keys import key_id, public_raw

ORIGIN_PREFIX = "jupiter.audit/"
SIG_PREFIX = "\u2014 "
LIST_HEADER = "# entry hashes"
_MAX_LINE = 512


def origin_for(workspace_id: str) -> str:
    return f"{ORIGIN_PREFIX}{workspace_id}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    entries: int
    head: str  # hex, as in the chain
    time: str
    hashes: bytes  # raw 32-byte entry hashes 1..entries
    key_id: str = ""
    signature: bytes = b""
    path: Path | None = None
    """Where it was read from."""

    @property
    def entries_digest(self) -> str:
        return hashlib.sha256(self.hashes).hexdigest()

    def body(self) -> bytes:
        """The signed text."""
        head_b64 = base64.b64encode(bytes.fromhex(self.head)).decode()
        return (
            f"{self.origin}\n{self.entries}\n{head_b64}\n"
            f"time {self.time}\nentries-sha256 {self.entries_digest}\n"
        ).encode()

    def write(self, fh: IO[bytes]) -> None:
        sig = base64.b64encode(bytes.fromhex(self.key_id) + self.signature).decode()
        fh.write(self.body())
        fh.write(f"\n{SIG_PREFIX}{self.origin} {sig}\n\n".encode())
        fh.write(f"{LIST_HEADER} 1-{self.entries}; covered by entries-sha256\n".encode())
        view = memoryview(self.hashes)
        for start in range(0, len(view), 32 * 4096):
            block = view[start : start + 32 * 4096]
            fh.write(
                "".join(
                    bytes(block[i : i + 32]).hex() + "\n" for i in range(0, len(block), 32)
                ).encode()
            )

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "entries": self.entries,
            "head": self.head,
            "time": self.time,
            "entries_sha256": self.entries_digest,
            "key_id": self.key_id,
        }


def sign(
    origin: str, hashes: bytes, key: Ed25519PrivateKey, now: datetime | None = None
) -> Checkpoint:
    """A checkpoint of the chain whose entry hashes are ``hashes`` (raw, in order)."""
    entries = len(hashes) // 32
    head = hashes[-32:].hex() if entries else "0" * 64
    when = (now or datetime.now(UTC)).isoformat(timespec="microseconds")
    unsigned = Checkpoint(origin, entries, head, when, bytes(hashes))
    return Checkpoint(
        origin,
        entries,
        head,
        when,
        unsigned.hashes,
        key_id(public_raw(key.public_key())),
        key.sign(unsigned.body()),
    )


def read(path: Path, origin: str, public: Ed25519PublicKey) -> Checkpoint:
    """Parse and authenticate the checkpoint at ``path`` for the workspace
    ``origin``: InputError (one sentence) if it is not a checkpoint, is of
    another workspace, was signed by another key, or was altered."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"checkpoint {path} cannot be read ({exc.strerror})") from None
    with fh:
        cp = _parse(path, fh)
    if cp.origin != origin:
        raise InputError(
            f"checkpoint {path} is of workspace {cp.origin.removeprefix(ORIGIN_PREFIX)}, "
            f"not of this one ({origin.removeprefix(ORIGIN_PREFIX)}); verify it against "
            "the workspace that signed it"
        )
    expected_id = key_id(public_raw(public))
    if cp.key_id != expected_id:
        raise InputError(
            f"checkpoint {path} was signed by key {cp.key_id}, not by key {expected_id}; "
            "pass --key with the public key that signed it"
        )
    try:
        public.verify(cp.signature, cp.body())
    except InvalidSignature:
        raise InputError(
            f"the signature of checkpoint {path} does not match its content: "
            "the checkpoint was altered after it was signed"
        ) from None
    return cp


def _parse(path: Path, fh: IO[bytes]) -> Checkpoint:
    def bad(why: str) -> InputError:
        return InputError(
            f"{path} is not a Jupiter audit checkpoint ({why}); "
            "pass a file written by `jupiter audit checkpoint`"
        )

    def line() -> str:
        raw = fh.readline(_MAX_LINE)
        if not raw.endswith(b"\n"):
            raise bad("a line is too long or the file ends early")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("it is not UTF-8 text") from None

    origin = line()
    if not origin.startswith(ORIGIN_PREFIX):
        raise bad(f"its first line does not start with {ORIGIN_PREFIX!r}")
    try:
        entries = int(line())
        head = base64.b64decode(line(), validate=True)
    except (ValueError, binascii.Error):
        raise bad("the entry count or head hash line is malformed") from None
    time_line, digest_line = line(), line()
    if (
        entries < 0
        or len(head) != 32
        or not time_line.startswith("time ")
        or not digest_line.startswith("entries-sha256 ")
        or line() != ""
    ):
        raise bad("its header lines are malformed")
    sig_line = line()
    if not sig_line.startswith(SIG_PREFIX + origin + " "):
        raise bad("the signature line is missing")
    try:
        sig = base64.b64decode(sig_line.rsplit(" ", 1)[1], validate=True)
    except binascii.Error:
        raise bad("the signature is not base64") from None
    if len(sig) != 4 + 64 or line() != "" or not line().startswith(LIST_HEADER):
        raise bad("the signature or the entry hash list is malformed")
    hashes = bytearray()
    try:
        for _ in range(entries):
            hashes += bytes.fromhex(line())
    except ValueError:
        raise bad("an entry hash is not hex") from None
    if len(hashes) != 32 * entries or fh.read(1):
        raise bad(f"it does not list exactly {entries} entry hashes")
    cp = Checkpoint(
        origin,
        entries,
        head.hex(),
        time_line.removeprefix("time "),
        bytes(hashes),
        sig[:4].hex(),
        sig[4:],
        path,
    )
    claimed = digest_line.removeprefix("entries-sha256 ")
    if cp.body() != _body_as_written(origin, entries, head, time_line, claimed):
        # Checked after the signature too; here it means the list was edited.
        raise InputError(
            f"the entry hashes listed in checkpoint {path} do not match its signed "
            "entries-sha256: the list was altered after it was signed"
        )
    if (hashes[-32:] if entries else bytes(32)) != head:
        raise bad("its head hash is not the last listed entry hash")
    return cp


def _body_as_written(origin: str, entries: int, head: bytes, time_line: str, digest: str) -> bytes:
    head_b64 = base64.b64encode(head).decode()
    return f"{origin}\n{entries}\n{head_b64}\n{time_line}\nentries-sha256 {digest}\n".encode()


def write(cp: Checkpoint, path: Path) -> None:
    """Write ``cp`` to ``path`` complete or not at all (temp file, fsync, rename)."""
    import os
    import secrets

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with tmp.open("xb") as fh:
            cp.write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"checkpoint cannot be written to {path} ({exc.strerror})") from None


def file_name(workspace_id: str, entries: int) -> str:
    """``<workspace id>-<entries>.checkpoint``: workspaces can share a directory."""
    return f"{workspace_id}-{entries:08d}.checkpoint"


def previous(
    local: Path, witness: Path | None, workspace_id: str, origin: str, public: Ed25519PublicKey
) -> list[Checkpoint]:
    """The newest earlier checkpoint in ``local`` and at ``witness``,
    authenticated, shortest first. InputError if ``witness`` is an existing
    file that is not a checkpoint of this workspace (it is never overwritten),
    or if two of them disagree (a fork between checkpoints)."""
    found: list[Checkpoint] = []
    newest = _newest(local, f"{workspace_id}-")
    if newest is not None:
        found.append(read(newest, origin, public))
    if witness is not None and witness.is_dir():
        newest = _newest(witness, f"{workspace_id}-")
        if newest is not None:
            found.append(read(newest, origin, public))
    elif witness is not None and witness.exists():
        try:
            found.append(read(witness, origin, public))
        except InputError as exc:
            raise InputError(
                f"witness file {witness} exists and is not a valid checkpoint of this "
                f"workspace, so it is not overwritten ({exc.message})"
            ) from None
    found.sort(key=lambda cp: cp.entries)
    for shorter, longer in itertools.pairwise(found):
        if not longer.hashes.startswith(shorter.hashes):
            k = next(
                i // 32 + 1
                for i in range(0, len(shorter.hashes), 32)
                if shorter.hashes[i : i + 32] != longer.hashes[i : i + 32]
            )
            raise InputError(
                f"checkpoints {shorter.path} and {longer.path} disagree about entry {k}: "
                "both are signed, so the chain forked between them; investigate before "
                "signing another"
            )
    return found


def _newest(directory: Path, prefix: str) -> Path | None:
    best: tuple[int, Path] | None = None
    for path in directory.glob(f"{prefix}*.checkpoint"):
        number = path.name.removeprefix(prefix).removesuffix(".checkpoint")
        if number.isdigit() and (best is None or int(number) > best[0]):
            best = (int(number), path)
    return best[1] if best else None
