"""The audit chain notices edits, deletions and reordering — on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from jupiter import audit
from jupiter.engine import Engine
from jupiter.store.tables import AuditRow


def _chain(engine: Engine, n: int = 5) -> None:
    with engine.db.transaction() as s:
        for i in range(n):
            audit.record(s, "alice", "test.event", f"thing:{i}", {"i": i})


def test_intact_chain_verifies(engine: Engine) -> None:
    _chain(engine)
    result = engine.audit_verify()
    assert result.ok and result.entries == 5


def test_modified_entry_is_named(engine: Engine) -> None:
    _chain(engine)
    with engine.db.transaction() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 3).values(actor="mallory"))
    result = engine.audit_verify()
    assert not result.ok and result.first_bad == 3
    assert "entry 3 was modified" in result.problem


def test_deleted_entry_is_named(engine: Engine) -> None:
    _chain(engine)
    with engine.db.transaction() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == 2))
    result = engine.audit_verify()
    assert not result.ok and result.first_bad == 2
    assert "entry 2 is missing" in result.problem


def test_deleted_tail_is_noticed(engine: Engine) -> None:
    _chain(engine)
    with engine.db.transaction() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == 5))
    result = engine.audit_verify()
    assert not result.ok and result.first_bad == 5
    assert "deleted" in result.problem


def test_reordered_entries_are_named(engine: Engine) -> None:
    _chain(engine)
    with engine.db.transaction() as s:
        rows = {r.seq: r for r in s.scalars(select(AuditRow).where(AuditRow.seq.in_([2, 4])))}
        fields = ("ts", "actor", "action", "subject", "data", "prev_hash", "hash")
        a = {f: getattr(rows[2], f) for f in fields}
        b = {f: getattr(rows[4], f) for f in fields}
        s.execute(delete(AuditRow).where(AuditRow.seq.in_([2, 4])))
        s.flush()
        s.add(AuditRow(seq=2, **b))
        s.add(AuditRow(seq=4, **a))
    result = engine.audit_verify()
    assert not result.ok and result.first_bad == 2


def test_secrets_are_redacted_before_hashing(engine: Engine) -> None:
    with engine.db.transaction() as s:
        audit.record(
            s,
            "bob",
            "run.started",
            "run:1",
            {"password": "hunter2", "url": "postgresql://app:s3cret@db/x", "note": "token=abc123"},
        )
    (entry,) = list(engine.audit_export())
    text = str(entry["data"])
    assert "hunter2" not in text and "s3cret" not in text and "abc123" not in text
    assert engine.audit_verify().ok


def test_cef_export_escapes(engine: Engine) -> None:
    with engine.db.transaction() as s:
        audit.record(s, "eve|x", "finding.status", "a=b", {"msg": "line\nbreak"})
    (entry,) = list(engine.audit_export())
    line = audit.to_cef(entry, "0.1.0")
    assert line.startswith("CEF:0|Jupiter|Jupiter|0.1.0|finding.status|finding status|")
    assert "suser=eve|x" in line and "cs1=a\\=b" in line and "\n" not in line


@pytest.mark.parametrize("n", [1, 3])
def test_head_tracks_last_entry(engine: Engine, n: int) -> None:
    _chain(engine, n)
    from jupiter.store.tables import AuditHeadRow

    with engine.db.reading() as s:
        head = s.get(AuditHeadRow, 1)
        last = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc())).first()
        assert head is not None and last is not None
        assert (head.seq, head.hash) == (last.seq, last.hash) == (n, last.hash)
