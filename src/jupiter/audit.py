"""The tamper-evident audit trail: a hash chain in the database.

Every state change calls :func:`record` in the same transaction as the
change, so the change and its audit entry land together or not at all. Each
entry's hash covers a canonical encoding of (seq, time, actor, action,
subject, data, previous hash); ``audit_head`` holds the newest link, so
deleting the tail is noticed too. :func:`verify` names the first entry that
was modified, deleted or reordered.

Someone who can write the database can still rewrite the whole chain from
one entry on, re-hashing every later one and the head. Signed checkpoints
(:mod:`jupiter.checkpoints`) close that gap: given the entry hashes a
checkpoint recorded, :func:`verify` also names the first entry that differs
from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupiter.integrations.events import event_for
from jupiter.redact import redact
from jupiter.store.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def entry_hash(
    seq: int, ts: str, actor: str, action: str, subject: str, data: str, prev_hash: str
) -> str:
    body = canonical(
        {
            "seq": seq,
            "ts": ts,
            "actor": actor,
            "action": action,
            "subject": subject,
            "data": data,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body).hexdigest()


def record(
    session: Session, actor: str, action: str, subject: str, data: dict[str, Any] | None = None
) -> AuditRow:
    """Append one entry to the chain inside the caller's transaction.

    An action the event map names (``jupiter.integrations.events``) also
    writes its outbox rows here, so the entry and its notifications land
    together or not at all."""
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHeadRow(id=1, seq=0, hash=GENESIS)
        session.add(head)
    seq = head.seq + 1
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    clean = redact(data or {})
    payload = canonical(clean).decode()
    digest = entry_hash(seq, ts, actor, action, subject, payload, head.hash)
    row = AuditRow(
        seq=seq,
        ts=ts,
        actor=actor,
        action=action,
        subject=subject,
        data=payload,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(row)
    head.seq, head.hash = seq, digest
    event = event_for(action, data)
    if event is not None:
        from jupiter.integrations.outbox import enqueue

        enqueue(session, row, event, clean)
    session.flush()
    return row


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str = ""
    checkpoint_entries: int | None = None
    """How many entries were also compared with a signed checkpoint."""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_entry": self.first_bad,
            "problem": self.problem,
            "checkpoint_entries": self.checkpoint_entries,
        }


@dataclass(frozen=True)
class Checkpointed:
    """What ``Engine.audit_checkpoint`` did: nothing (``checkpoint`` empty)
    when the chain did not verify, else the signed facts and the files."""

    result: VerifyResult
    checkpoint: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    against: Path | None = None
    """The earlier checkpoint the chain was compared with, if any."""


def verify(
    session: Session,
    expected: bytes | None = None,
    collect: bytearray | None = None,
) -> VerifyResult:
    """Walk the chain from the first entry; stop at the first broken link.

    ``expected`` holds the raw 32-byte hashes of entries 1..N as a checkpoint
    recorded them: entry k must still have that hash, and the chain must
    still have at least N entries. ``collect`` receives the raw hash of every
    entry walked (what a new checkpoint records).
    """
    with closing(_rows(session)) as rows:
        return _walk(session, rows, expected, collect)


def _walk(
    session: Session,
    rows: Iterator[AuditRow],
    expected: bytes | None = None,
    collect: bytearray | None = None,
) -> VerifyResult:
    checkpointed = None if expected is None else len(expected) // 32
    result = _walk_chain(session, rows, expected, collect)
    if result.ok and checkpointed is not None and result.entries < checkpointed:
        result = VerifyResult(
            False,
            result.entries,
            result.entries + 1,
            f"the chain ends at entry {result.entries} but the checkpoint signed "
            f"{checkpointed} entries: entries {result.entries + 1}-{checkpointed} were "
            "deleted and the head rewritten to hide it",
        )
    return replace(result, checkpoint_entries=checkpointed)


def _walk_chain(
    session: Session,
    rows: Iterator[AuditRow],
    expected: bytes | None,
    collect: bytearray | None,
) -> VerifyResult:
    expected_seq, prev_hash, count = 1, GENESIS, 0
    checkpointed = 0 if expected is None else len(expected) // 32
    for row in rows:
        if row.seq != expected_seq:
            return VerifyResult(
                False,
                count,
                expected_seq,
                f"entry {expected_seq} is missing: it was deleted, or entries were renumbered "
                f"(found entry {row.seq} next)",
            )
        if row.prev_hash != prev_hash:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} does not link to entry {row.seq - 1}: entries were "
                "reordered, or the one before it was replaced",
            )
        actual = entry_hash(
            row.seq, row.ts, row.actor, row.action, row.subject, row.data, row.prev_hash
        )
        if actual != row.hash:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} was modified: its content no longer matches its hash",
            )
        if row.seq <= checkpointed:
            assert expected is not None
            signed = expected[(row.seq - 1) * 32 : row.seq * 32].hex()
            if row.hash != signed:
                return VerifyResult(
                    False,
                    count,
                    row.seq,
                    f"entry {row.seq} differs from the signed checkpoint (hash {row.hash[:16]}… "
                    f"instead of {signed[:16]}…): the chain was rewritten or forked from "
                    f"entry {row.seq} on",
                )
        if collect is not None:
            collect += bytes.fromhex(row.hash)
        prev_hash, expected_seq, count = row.hash, expected_seq + 1, count + 1
    head = session.get(AuditHeadRow, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != count or head_hash != prev_hash:
        return VerifyResult(
            False,
            count,
            count + 1,
            f"the chain ends at entry {count} but its head records entry {head_seq}: "
            "entries at the end were deleted, or the head was edited",
        )
    return VerifyResult(True, count)


def _rows(session: Session) -> Generator[AuditRow, None, None]:
    stmt = select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=2000)
    result = session.scalars(stmt)
    try:
        yield from result
    finally:
        result.close()


def export_rows(session: Session) -> Iterator[dict[str, Any]]:
    for row in _rows(session):
        yield {
            "seq": row.seq,
            "ts": row.ts,
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "data": orjson.loads(row.data),
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }


# CEF severity (0-10) by the last word of the action: what a SOC should see first.
_CEF_SEVERITY = {"failed": 8, "mismatch": 8, "refused": 7, "rolled_back": 6}


def _cef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _cef_ext(value: str) -> str:
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def to_cef(entry: dict[str, Any], version: str) -> str:
    """One ArcSight CEF line for a SIEM."""
    action = entry["action"]
    severity = _CEF_SEVERITY.get(action.rsplit(".", 1)[-1], 3)
    ts = datetime.fromisoformat(entry["ts"])
    ext = {
        "rt": str(int(ts.timestamp() * 1000)),
        "suser": entry["actor"],
        "act": action,
        "cs1Label": "subject",
        "cs1": entry["subject"],
        "cs2Label": "hash",
        "cs2": entry["hash"],
        "cn1Label": "seq",
        "cn1": str(entry["seq"]),
        "msg": canonical(entry["data"]).decode(),
    }
    extension = " ".join(f"{k}={_cef_ext(v)}" for k, v in ext.items())
    header = "|".join(
        _cef_header(x)
        for x in ("CEF:0", "Jupiter", "Jupiter", version, action, action.replace(".", " "))
    )
    return f"{header}|{severity}|{extension}"
