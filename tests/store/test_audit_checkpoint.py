"""Signed checkpoints catch what the chain alone cannot: a rewrite of the
whole chain from one entry on, a hidden truncation, a fork — on both backends."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from jupiter import audit
from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.store.tables import AuditHeadRow, AuditRow


def _chain(engine: Engine, n: int, start: int = 0) -> None:
    with engine.db.transaction() as s:
        for i in range(start, start + n):
            audit.record(s, "alice", "test.event", f"thing:{i}", {"i": i})


def _rewrite_from(engine: Engine, seq: int, actor: str = "mallory") -> None:
    """What an attacker with write access to the database does: change one
    entry, then re-hash it and every later entry and the head, so that the
    chain verifies again."""
    with engine.db.transaction() as s:
        rows = list(s.scalars(select(AuditRow).order_by(AuditRow.seq)))
        prev = rows[seq - 2].hash if seq > 1 else audit.GENESIS
        for row in rows[seq - 1 :]:
            if row.seq == seq:
                row.actor = actor
            row.prev_hash = prev
            row.hash = audit.entry_hash(
                row.seq, row.ts, row.actor, row.action, row.subject, row.data, prev
            )
            prev = row.hash
        head = s.get(AuditHeadRow, 1)
        assert head is not None
        head.hash = prev


def _checkpoint(engine: Engine, tmp_path: Path) -> Path:
    done = engine.audit_checkpoint(tmp_path / "witness.checkpoint")
    assert done.checkpoint and done.files[-1] == tmp_path / "witness.checkpoint"
    return done.files[-1]


def test_checkpoint_verifies_and_later_entries_are_allowed(engine: Engine, tmp_path: Path) -> None:
    _chain(engine, 5)
    cp = _checkpoint(engine, tmp_path)
    _chain(engine, 3, start=5)  # the chain grows past the checkpoint: fine
    result = engine.audit_verify(cp)
    # 5 entries, the checkpoint's own audit entry, 3 more.
    assert result.ok and result.entries == 9 and result.checkpoint_entries == 5
    assert result.to_json()["checkpoint_entries"] == 5


def test_whole_chain_rewrite_is_caught_and_the_first_entry_named(
    engine: Engine, tmp_path: Path
) -> None:
    _chain(engine, 8)
    cp = _checkpoint(engine, tmp_path)
    _rewrite_from(engine, 3)
    assert engine.audit_verify().ok  # the chain alone cannot see it
    result = engine.audit_verify(cp)
    assert not result.ok and result.first_bad == 3
    assert "entry 3 differs from the signed checkpoint" in result.problem
    assert "rewritten or forked from entry 3 on" in result.problem


def test_rewrite_of_the_first_and_of_the_last_checkpointed_entry(
    engine: Engine, tmp_path: Path
) -> None:
    _chain(engine, 4)
    cp = _checkpoint(engine, tmp_path)
    _rewrite_from(engine, 4)
    assert engine.audit_verify(cp).first_bad == 4
    _rewrite_from(engine, 1)
    assert engine.audit_verify(cp).first_bad == 1


def test_hidden_truncation_is_caught(engine: Engine, tmp_path: Path) -> None:
    _chain(engine, 6)
    cp = _checkpoint(engine, tmp_path)
    with engine.db.transaction() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq > 4))
        last = s.get(AuditRow, 4)
        head = s.get(AuditHeadRow, 1)
        assert last is not None and head is not None
        head.seq, head.hash = 4, last.hash
    assert engine.audit_verify().ok
    result = engine.audit_verify(cp)
    assert not result.ok and result.first_bad == 5
    assert "ends at entry 4 but the checkpoint signed 6 entries" in result.problem


def test_fork_is_caught(engine: Engine, tmp_path: Path) -> None:
    """The database is swapped for another history sharing only entry 1
    (say, an old backup that was then written to) — longer than the checkpoint."""
    _chain(engine, 4)
    cp = _checkpoint(engine, tmp_path)
    with engine.db.transaction() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq > 1))
        first = s.get(AuditRow, 1)
        head = s.get(AuditHeadRow, 1)
        assert first is not None and head is not None
        head.seq, head.hash = 1, first.hash
    _chain(engine, 10, start=100)
    assert engine.audit_verify().ok
    result = engine.audit_verify(cp)
    assert not result.ok and result.first_bad == 2


def test_plain_tampering_is_still_named_with_a_checkpoint(engine: Engine, tmp_path: Path) -> None:
    _chain(engine, 5)
    cp = _checkpoint(engine, tmp_path)
    with engine.db.transaction() as s:
        row = s.get(AuditRow, 2)
        assert row is not None
        row.subject = "edited"
    result = engine.audit_verify(cp)
    assert result.first_bad == 2 and "entry 2 was modified" in result.problem


def test_broken_chain_is_not_signed(engine: Engine, tmp_path: Path) -> None:
    _chain(engine, 3)
    with engine.db.transaction() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == 2))
    done = engine.audit_checkpoint(tmp_path)
    assert not done.checkpoint and done.result.first_bad == 2
    assert not list(tmp_path.glob("*.checkpoint"))
    assert not (engine.workspace.home / "checkpoints").exists()


def test_checkpoint_of_an_empty_chain(engine: Engine, tmp_path: Path) -> None:
    done = engine.audit_checkpoint(tmp_path)
    assert done.checkpoint["entries"] == 0 and done.checkpoint["head"] == audit.GENESIS
    assert engine.audit_verify(done.files[-1]).ok


def test_altered_checkpoint_is_refused(engine: Engine, tmp_path: Path) -> None:
    _chain(engine, 3)
    cp = _checkpoint(engine, tmp_path)
    lines = cp.read_text().splitlines(keepends=True)
    # A consistent forgery claiming 2 entries (to hide a later truncation):
    # head, list and digest all fit, but it cannot be signed without the key.
    second = bytes.fromhex(lines[-2].strip())
    hashes = bytes.fromhex(lines[-3].strip()) + second
    forged_lines = [
        lines[0],
        "2\n",
        base64.b64encode(second).decode() + "\n",
        lines[3],
        f"entries-sha256 {hashlib.sha256(hashes).hexdigest()}\n",
        *lines[5:8],
        "# entry hashes 1-2; covered by entries-sha256\n",
        *lines[-3:-1],
    ]
    forged = tmp_path / "forged.checkpoint"
    forged.write_text("".join(forged_lines))
    with pytest.raises(InputError, match=r"signature of checkpoint .* does not match"):
        engine.audit_verify(forged)
    # Replace a listed entry hash: the list no longer matches its signed digest.
    lines[-1] = "0" * 64 + "\n"
    forged.write_text("".join(lines))
    with pytest.raises(InputError, match=r"entry hashes listed in checkpoint .* do not match"):
        engine.audit_verify(forged)


def test_a_rewrite_since_the_last_checkpoint_is_not_signed_over(
    engine: Engine, tmp_path: Path
) -> None:
    """Signing the rewritten chain would launder the rewrite: refused, like a
    witness that will not cosign a head inconsistent with the one it holds."""
    _chain(engine, 5)
    first = _checkpoint(engine, tmp_path)
    _rewrite_from(engine, 2)
    local = sorted((engine.workspace.home / "checkpoints").iterdir())
    done = engine.audit_checkpoint(tmp_path)
    assert not done.checkpoint and done.result.first_bad == 2
    assert done.against is not None and done.against.name == local[-1].name
    assert sorted((engine.workspace.home / "checkpoints").iterdir()) == local
    assert [p.name for p in tmp_path.glob("*.checkpoint")] == ["witness.checkpoint"]
    assert first.exists()


def test_checkpoints_extend_each_other(engine: Engine, tmp_path: Path) -> None:
    _chain(engine, 3)
    first = engine.audit_checkpoint(tmp_path)
    _chain(engine, 3, start=3)
    second = engine.audit_checkpoint(tmp_path)
    assert second.checkpoint and second.against == first.files[-1]
    assert second.checkpoint["entries"] == first.checkpoint["entries"] + 4  # 3 + its audit entry
    assert len(list(tmp_path.glob("*.checkpoint"))) == 2
    assert engine.audit_verify(first.files[-1]).ok and engine.audit_verify(second.files[-1]).ok


def test_an_existing_file_that_is_not_a_checkpoint_is_never_overwritten(
    engine: Engine, tmp_path: Path
) -> None:
    _chain(engine, 2)
    precious = tmp_path / "notes.txt"
    precious.write_text("do not lose me\n")
    with pytest.raises(InputError, match=r"is not a valid checkpoint .* not overwritten"):
        engine.audit_checkpoint(precious)
    assert precious.read_text() == "do not lose me\n"
    assert not (engine.workspace.home / "checkpoints").exists()
