"""The private key a PostgreSQL TLS fix makes never leaves the host.

Through the real CLI: scan, ``plan --json``, ``fix --json``, ``runs show``,
``script`` (bash, python, ansible) and ``audit export``; then every byte of the
workspace database file and every row of every table. The key is looked for
as its PEM body, as any 32-character run of that body, and as its DER bytes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.plans import GENERATED_KEY
from tests.conftest import run_cli

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "postgres"
KEY = "etc/postgresql/15/main/jupiter-server.key"


def needles(pem: bytes) -> list[bytes]:
    """Pieces of a PEM key that must appear nowhere: its body, every
    32-character slice of it, and its DER bytes (in 32-byte slices)."""
    lines = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    body = b"".join(lines)
    der = base64.b64decode(body)
    return (
        [body]
        + [body[i : i + 32] for i in range(0, len(body) - 32, 16)]
        + [der[i : i + 32] for i in range(0, len(der) - 32, 16)]
    )


def assert_absent(pieces: list[bytes], haystack: bytes, where: str) -> None:
    assert b"PRIVATE KEY-----" not in haystack, where
    for piece in pieces:
        assert piece not in haystack, f"a piece of the private key is in {where}"


@pytest.mark.slow  # a dozen CLI processes and a validated fix: ~30 s on a loaded machine
def test_generated_key_is_in_no_output_export_audit_or_database(tmp_path: Path) -> None:
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, root)
    conf = root / "etc/postgresql/15/main/postgresql.conf"  # this host's root is ``root``
    conf.write_text(conf.read_text().replace("'/etc/postgresql/", f"'{root}/etc/postgresql/"))
    home = tmp_path / "ws"
    params = ["--param", f"postgresql-conf.server_root={root}"]
    params += ["--param", f"pg-hba.server_root={root}"]
    outputs: dict[str, str] = {}

    scanned = run_cli("scan", str(root), "--json", home=home)
    assert scanned.returncode == 0, scanned.stderr
    listed = run_cli("findings", "list", "--json", home=home)
    rows = json.loads(listed.stdout)
    rows = rows["findings"] if isinstance(rows, dict) else rows
    ssl_id = next(str(r["id"]) for r in rows if r["rule_id"] == "PG-SSL-OFF")
    planned = run_cli("plan", ssl_id, "--json", *params, home=home)
    assert planned.returncode == 0, planned.stderr
    assert GENERATED_KEY in planned.stdout
    outputs["plan --json"] = planned.stdout + planned.stderr
    for fmt in ("bash", "python", "ansible"):
        exported = run_cli("script", ssl_id, "--format", fmt, home=home)
        assert exported.returncode == 0, exported.stderr
        assert "openssl" in exported.stdout
        outputs[f"script --format {fmt}"] = exported.stdout + exported.stderr

    fixed = run_cli("fix", str(root), "--only", "PG-SSL-OFF", "--yes", "--json", *params, home=home)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    result = json.loads(fixed.stdout)
    ssl_step = next(s for s in result["steps"] if s["rule_id"] == "PG-SSL-OFF")
    assert ssl_step["status"] == "verified", ssl_step
    assert GENERATED_KEY in ssl_step["diff"]
    outputs["fix --json"] = fixed.stdout + fixed.stderr
    key = (root / KEY).read_bytes()
    assert b"PRIVATE KEY" in key and (root / KEY).stat().st_mode & 0o777 == 0o600

    for args in (
        ("runs", "show", str(result["run"]), "--json"),
        ("runs", "show", str(result["run"])),
        ("findings", "show", ssl_id),
        ("audit", "export"),
    ):
        done = run_cli(*args, home=home)
        assert done.returncode == 0, (args, done.stderr)
        outputs[" ".join(args)] = done.stdout + done.stderr

    pieces = needles(key)
    for where, text in outputs.items():
        assert_absent(pieces, text.encode(), where)
    [db_file] = list(home.glob("*.db"))
    assert_absent(pieces, db_file.read_bytes(), f"the database file {db_file.name}")
    with sqlite3.connect(db_file) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "run_steps" in tables or len(tables) > 3
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                text = "\x1f".join(
                    v.hex() + "\x1f" + v.decode("latin-1") if isinstance(v, bytes) else str(v)
                    for v in row
                )
                assert_absent(pieces, text.encode(), f"table {table}")


def test_a_generated_key_is_never_committed_by_git_delivery(
    tmp_path: Path, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # keep the host's ~/.gitconfig out
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    conf = root / "etc/postgresql/15/main/postgresql.conf"
    conf.write_text(conf.read_text().replace("'/etc/postgresql/", f"'{root}/etc/postgresql/"))
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.name", "Dev"),
        ("config", "user.email", "dev@example.org"),
        ("add", "-A"),
        ("commit", "-q", "-m", "initial"),
    ):
        git(root, *args)
    result = sqlite_engine.fix(
        str(root),
        only=["PG-SSL-OFF"],
        raw_params=[f"postgresql-conf.server_root={root}"],
        git_branch="jupiter/tls",
    )
    [step] = result["steps"]
    assert step["status"] == "rolled_back" and "never commits" in step["detail"], step["detail"]
    assert not (root / KEY).exists()
    history = git(root, "log", "--all", "-p", "--format=%H")
    assert "PRIVATE KEY" not in history and "jupiter-server.key" not in history


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
