"""``jupiter audit checkpoint`` / ``verify --checkpoint`` / ``public-key`` end to end."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from tests.conftest import run_cli

from jupiter import audit
from jupiter.engine import Engine
from jupiter.keys import KeyStore


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    # The CLI below acts as cli-tester: the workspace's first user (its admin).
    with Engine.open(
        home=home, database_url=f"sqlite:///{home / 'jupiter.db'}", actor="cli-tester"
    ) as engine:
        engine.init()
        with engine.db.transaction() as s:
            for i in range(3):
                audit.record(s, "alice", "test.event", f"thing:{i}", {"i": i})
    return home


def _entries(home: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(home / "jupiter.db") as db:
        return list(db.execute("SELECT seq, hash FROM audit_log ORDER BY seq"))


def _rewrite_from(home: Path, seq: int) -> None:
    """Edit entry ``seq`` and re-hash it, every later entry and the head."""
    with sqlite3.connect(home / "jupiter.db") as db:
        rows = list(
            db.execute("SELECT seq, ts, actor, action, subject, data FROM audit_log ORDER BY seq")
        )
        (prev,) = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq - 1,)).fetchone()
        for number, ts, actor, action, subject, data in rows[seq - 1 :]:
            actor = "mallory" if number == seq else actor
            digest = audit.entry_hash(number, ts, actor, action, subject, data, prev)
            db.execute(
                "UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (actor, prev, digest, number),
            )
            prev = digest
        db.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))


def test_checkpoint_then_rewrite_is_caught(home: Path, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    witness.mkdir()
    done = run_cli("audit", "checkpoint", "--witness", str(witness), "--json", home=home)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["entries"] == 4 and info["head"] == _entries(home)[3][1]
    (written,) = witness.iterdir()
    assert written.name.endswith("-00000004.checkpoint")
    assert (home / "checkpoints" / written.name).read_bytes() == written.read_bytes()
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "keys" / "audit-ed25519").stat().st_mode) == 0o600
    # The checkpoint itself is audited.
    assert len(_entries(home)) == 5

    _rewrite_from(home, 2)
    plain = run_cli("audit", "verify", home=home)
    assert plain.returncode == 0  # the documented limit of the chain alone
    caught = run_cli("audit", "verify", "--checkpoint", str(written), "--json", home=home)
    assert caught.returncode == 1
    result = json.loads(caught.stdout)
    assert result["ok"] is False and result["first_bad_entry"] == 2
    assert result["checkpoint_entries"] == 4
    human = run_cli("audit", "verify", "--checkpoint", str(written), home=home)
    assert human.returncode == 1
    assert "entry 2 differs from the signed checkpoint" in human.stderr


def _bad_inputs(tmp_path: Path, good: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    not_one = tmp_path / "notes.txt"
    not_one.write_text("hello\nworld\n")
    tampered = tmp_path / "tampered"
    text = good.read_text().splitlines(keepends=True)
    text[3] = "time 2020-01-01T00:00:00.000000+00:00\n"
    tampered.write_text("".join(text))
    other_pub = tmp_path / "other.pub"
    other_pub.write_text(KeyStore(tmp_path / "other").audit_public_pem())
    second_db = {"JUPITER_DATABASE_URL": f"sqlite:///{tmp_path / 'second.db'}"}
    return {
        "is not a Jupiter audit checkpoint": ([str(not_one)], {}),
        "cannot be read": ([str(tmp_path / "absent")], {}),
        "the checkpoint was altered after it was signed": ([str(tampered)], {}),
        "pass --key with the public key": ([str(good), "--key", str(other_pub)], {}),
        "is not an Ed25519 public key": ([str(good), "--key", str(not_one)], {}),
        # Same home and key, another database: a checkpoint of another workspace.
        "not of this one": ([str(good)], second_db),
    }


@pytest.mark.parametrize(
    "fragment",
    [
        "is not a Jupiter audit checkpoint",
        "cannot be read",
        "the checkpoint was altered after it was signed",
        "pass --key with the public key",
        "is not an Ed25519 public key",
        "not of this one",
    ],
)
def test_bad_checkpoint_is_one_sentence_exit_2_nothing_written(
    home: Path, tmp_path: Path, fragment: str
) -> None:
    # The CLI below acts as cli-tester: the workspace's first user (its admin).
    with Engine.open(
        home=home, database_url=f"sqlite:///{home / 'jupiter.db'}", actor="cli-tester"
    ) as engine:
        good = engine.audit_checkpoint(tmp_path / "cp").files[-1]
    before = _entries(home)
    checkpoints_before = sorted((home / "checkpoints").iterdir())
    args, env = _bad_inputs(tmp_path, good)[fragment]
    out = run_cli("audit", "verify", "--checkpoint", *args, home=home, env=env)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert fragment in lines[0]
    assert out.stdout == ""
    assert _entries(home) == before
    assert sorted((home / "checkpoints").iterdir()) == checkpoints_before


def test_checkpoint_into_a_missing_directory_writes_nothing(home: Path, tmp_path: Path) -> None:
    before = _entries(home)
    out = run_cli("audit", "checkpoint", "--witness", str(tmp_path / "no" / "cp"), home=home)
    assert out.returncode == 2
    assert "does not exist" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert _entries(home) == before and not (home / "checkpoints").exists()


def test_exported_public_key_verifies_a_copied_checkpoint(home: Path, tmp_path: Path) -> None:
    """Verification elsewhere: only the public key and the checkpoint travel."""
    made = run_cli("audit", "checkpoint", "--witness", str(tmp_path / "cp"), home=home)
    assert made.returncode == 0, made.stderr
    pub = run_cli("audit", "public-key", home=home)
    assert pub.stdout.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in pub.stdout
    (tmp_path / "audit.pub").write_text(pub.stdout)
    (home / "keys" / "audit-ed25519").rename(tmp_path / "private-key-moved-away")
    ok = run_cli(
        "audit", "verify", "--checkpoint", str(tmp_path / "cp"),
        "--key", str(tmp_path / "audit.pub"), home=home,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "the first 4 as signed in" in ok.stdout
    missing = run_cli("audit", "verify", "--checkpoint", str(tmp_path / "cp"), home=home)
    assert missing.returncode == 2 and "pass --key" in missing.stderr
