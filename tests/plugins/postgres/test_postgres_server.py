"""PostgreSQL remediators against the real server: the validator, and a
remediated messy cluster that really serves TLS + SCRAM and refuses plain TCP.

One throw-away cluster (initdb) serves the whole module; each start ~0.1 s.
When running as root, the server runs as the ``postgres`` account.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jupiter.keygen import materialise
from jupiter.plans import GenerateKey, IssueCertificate, Plan, SetMode, WriteFile, sha256_bytes
from jupiter.plugins.postgres import validate as postgres_validate
from jupiter.plugins.postgres.fix import PgHba, PostgresParams, PostgresqlConf
from jupiter.plugins.postgres.server import (
    Cluster,
    RunAs,
    find_postgres,
    give_to,
    running_server,
    server_account,
    throwaway_cluster,
)
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.conftest import need_service

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "postgres"
MAIN = "etc/postgresql/15/main/postgresql.conf"
HBA = "etc/postgresql/15/main/pg_hba.conf"
BINARY = find_postgres()
ACCOUNT = server_account()


@pytest.fixture(autouse=True)
def _need_postgres_binary() -> None:
    """Skips without a server binary to run, or fails under JUPITER_REQUIRE_SERVICES=1."""
    why = ACCOUNT if isinstance(ACCOUNT, str) else "no postgres binary found"
    need_service(
        BINARY is not None and not isinstance(ACCOUNT, str),
        f"no PostgreSQL server to run here ({why})",
    )


@pytest.fixture(scope="module")
def sandbox() -> Cluster:
    assert BINARY is not None and isinstance(ACCOUNT, RunAs)
    return throwaway_cluster(BINARY, ACCOUNT)


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory the server's account can reach (pytest's tmp_path is 0700 root)."""
    base = Path(tempfile.mkdtemp(prefix="jupiter-pgtest-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def copy_fixture(root: Path) -> LocalTarget:
    shutil.copytree(FIXTURE, root)
    return LocalTarget(root)


def apply(target: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        if isinstance(change, GenerateKey | IssueCertificate):
            change = materialise(target, change)  # as the engine does, right before the write
        if isinstance(change, WriteFile):
            now = sha256_bytes(target.read_bytes(change.path)) if target.stat(change.path) else None
            assert now == change.before_sha256
            target.write_bytes(change.path, change.content.encode(), change.mode)
        else:
            assert isinstance(change, SetMode)
            target.set_mode(change.path, change.mode)
            if change.uid is not None and change.gid is not None:
                target.set_owner(change.path, change.uid, change.gid)


def first(
    remediator: PostgresqlConf | PgHba,
    target: LocalTarget,
    rule: str,
    params: PostgresParams | None = None,
) -> Plan:
    finding = next(f for f in remediator.detect(target, params) if f.rule_id == rule)
    return remediator.plan(finding, target, params or PostgresParams())


# ------------------------------------------------------------------ validator


def test_validator_passes_the_fix_plans(tmp_path: Path) -> None:
    target = copy_fixture(tmp_path / "host")
    ssl = first(PostgresqlConf(), target, "PG-SSL-OFF")
    [result] = PostgresqlConf().validate(ssl, OverlayView(target, ssl))
    assert result.status == "passed", result.detail
    assert "PostgreSQL" in result.detail and MAIN in result.detail
    hba = first(PgHba(), target, "PG-HBA-NO-SSL")
    [result] = PgHba().validate(hba, OverlayView(target, hba))
    assert result.status == "passed", result.detail


def _plan_writing(target: LocalTarget, path: str, content: str, mode: int | None = None) -> Plan:
    before = sha256_bytes(target.read_bytes(path)) if target.stat(path) else None
    return Plan(
        remediator="postgresql-conf",
        rule_id="PG-SSL-OFF",
        title="t",
        changes=[WriteFile(path=path, content=content, before_sha256=before, mode=mode)],
    )


def test_validator_fails_what_the_server_refuses(tmp_path: Path) -> None:
    target = copy_fixture(tmp_path / "host")
    hba_text = target.read_bytes(HBA).decode()
    broken = _plan_writing(target, HBA, hba_text + "host all\n")
    [result] = PgHba().validate(broken, OverlayView(target, broken))
    assert result.status == "failed"
    assert "line 37" in result.detail and "pg_hba.conf" in result.detail

    conf = target.read_bytes(MAIN).decode()
    no_cert = _plan_writing(target, MAIN, conf.replace("ssl     off", "ssl     on"))
    [result] = PostgresqlConf().validate(no_cert, OverlayView(target, no_cert))
    assert result.status == "failed"
    assert "could not load server certificate file" in result.detail

    ssl = first(PostgresqlConf(), target, "PG-SSL-OFF")
    loose = ssl.model_copy(
        update={
            "changes": [
                c.model_copy(update={"mode": 0o644}) if isinstance(c, GenerateKey) else c
                for c in ssl.changes
                if not isinstance(c, SetMode)
            ]
        }
    )
    [result] = PostgresqlConf().validate(loose, OverlayView(target, loose))
    assert result.status == "failed" and "group or world access" in result.detail


def test_validator_neutralises_host_specific_values_only(tmp_path: Path) -> None:
    target = copy_fixture(tmp_path / "host")
    conf = tmp_path / "host" / MAIN
    absolute = "include_dir '/etc/postgresql/15/main/conf.d'"
    conf.write_text(
        conf.read_text()
        .replace("include_dir = 'conf.d'", absolute)
        .replace("'pg_stat_statements'", "'not_installed_here'")
        .replace("lc_messages = 'C.UTF-8'", "lc_messages = 'xx_YY.UTF-8'")
    )
    plan = first(PostgresqlConf(), target, "PG-LOG-CONNECTIONS")  # edits conf.d/50-legacy-app
    [result] = PostgresqlConf().validate(plan, OverlayView(target, plan))
    assert result.status == "passed", result.detail
    bad = plan.model_copy(
        update={
            "changes": [
                c.model_copy(update={"content": c.content + "work_mem = 'lots'\n"})
                for c in plan.changes
                if isinstance(c, WriteFile)
            ]
        }
    )
    [result] = PostgresqlConf().validate(bad, OverlayView(target, bad))
    assert result.status == "failed" and '"work_mem": "lots"' in result.detail


def test_validator_skips_without_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = copy_fixture(tmp_path / "host")
    plan = first(PostgresqlConf(), target, "PG-LOG-DISCONNECTIONS")
    monkeypatch.setattr(postgres_validate, "find_postgres", lambda: None)
    [result] = PostgresqlConf().validate(plan, OverlayView(target, plan))
    assert result.status == "skipped" and "not installed" in result.detail
    assert (
        PostgresqlConf().validate(
            Plan(remediator="x", rule_id="y", title="z"), OverlayView(target, plan)
        )
        == []
    )


# ------------------------------------------------------------------ real server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _psql(who: RunAs, sock: Path, port: int, sql: str) -> str:
    """psql over the Unix socket as the server's account (peer authentication)."""
    extra: dict[str, object] = (
        {"user": who.uid, "group": who.gid, "extra_groups": []} if os.geteuid() == 0 else {}
    )
    result = subprocess.run(  # type: ignore[call-overload]
        [
            "psql",
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(sock),
            "-p",
            str(port),
            "-U",
            who.name,
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        **extra,
    )
    assert result.returncode == 0, result.stderr
    return str(result.stdout).strip()


def test_remediated_messy_cluster_serves_tls_and_scram_only(
    sandbox: Cluster, host_dir: Path
) -> None:
    root = host_dir / "host"
    target = copy_fixture(root)
    # This host's root is ``root``: its configuration names its own files there.
    conf_path = root / MAIN
    conf_path.write_text(
        conf_path.read_text().replace("'/etc/postgresql/", f"'{root}/etc/postgresql/")
    )
    give_to(root / "etc/postgresql", sandbox.who)  # as Debian: postgres owns the config
    params = PostgresParams(server_root=str(root))

    for remediator in (PostgresqlConf(), PgHba()):
        for _ in range(20):
            plans = [remediator.plan(f, target, params) for f in remediator.detect(target, params)]
            todo = [p for p in plans if not p.needs_manual]
            if not todo:
                break
            [check] = remediator.validate(todo[0], OverlayView(target, todo[0]))
            assert check.status == "passed", check.detail
            apply(target, todo[0])
    remaining = [f.rule_id for r in (PostgresqlConf(), PgHba()) for f in r.detect(target, params)]
    assert remaining == ["PG-LISTEN-ALL"]
    key = root / "etc/postgresql/15/main/jupiter-server.key"
    assert key.stat().st_uid == sandbox.who.uid  # chowned by the plan, as the server needs
    assert f"ssl_key_file = '{key}'" in conf_path.read_text()

    port = _free_port()
    work = sandbox.workdir()
    try:
        with running_server(
            sandbox, conf_path, {"listen_addresses": "127.0.0.1"}, work, port=port
        ) as server:
            _psql(
                sandbox.who,
                server.socket_dir,
                port,
                "CREATE ROLE app_user LOGIN PASSWORD 'Corr3ct-horse'",
            )
            stored = _psql(
                sandbox.who,
                server.socket_dir,
                port,
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'app_user'",
            )
            assert stored.startswith("SCRAM-SHA-256$")

            dsn = dict(
                host="127.0.0.1", port=port, user="app_user", dbname="postgres", connect_timeout=10
            )
            with psycopg.connect(**dsn, password="Corr3ct-horse", sslmode="require") as conn:
                row = conn.execute(
                    "SELECT ssl, current_setting('password_encryption'), "
                    "current_setting('log_disconnections') "
                    "FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                ).fetchone()
                assert row == (True, "scram-sha-256", "on")
            with pytest.raises(psycopg.OperationalError, match="rejects connection"):
                psycopg.connect(**dsn, password="Corr3ct-horse", sslmode="disable")
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(**dsn, password="wrong", sslmode="require")
        log = server.log.read_text()
        assert "connection authorized: user=app_user" in log and "SSL enabled" in log
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_jupiter_fix_then_the_server_accepts_tls_scram_and_rollback_restores(
    sandbox: Cluster, host_dir: Path, tmp_path: Path
) -> None:
    """The issue's acceptance path through the engine: fix, serve, roll back."""
    from jupiter.engine import Engine
    from jupiter.workspace import Workspace

    root = host_dir / "host"
    copy_fixture(root)
    conf_path = root / MAIN
    conf_path.write_text(
        conf_path.read_text().replace("'/etc/postgresql/", f"'{root}/etc/postgresql/")
    )
    give_to(root / "etc/postgresql", sandbox.who)
    before = {p: (p.read_bytes(), p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
    engine = Engine(Workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws/j.db'}"), "dba")
    try:
        result = engine.fix(
            str(root),
            only=["config.database"],
            raw_params=[f"postgresql-conf.server_root={root}", f"pg-hba.server_root={root}"],
        )
        statuses = {s["status"] for s in result["steps"]}
        assert statuses <= {"verified", "already_fixed", "needs_manual"}, result["steps"]
        assert [s["rule_id"] for s in result["steps"] if s["status"] == "needs_manual"] == [
            "PG-LISTEN-ALL"
        ]
        port = _free_port()
        work = sandbox.workdir()
        try:
            with running_server(
                sandbox, conf_path, {"listen_addresses": "127.0.0.1"}, work, port=port
            ) as server:
                _psql(
                    sandbox.who,
                    server.socket_dir,
                    port,
                    "CREATE ROLE engine_user LOGIN PASSWORD 'Corr3ct-horse'",
                )
                dsn = dict(
                    host="127.0.0.1",
                    port=port,
                    user="engine_user",
                    dbname="postgres",
                    connect_timeout=10,
                )
                with psycopg.connect(**dsn, password="Corr3ct-horse", sslmode="require") as c:
                    row = c.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    assert row.fetchone() == (True,)
                with pytest.raises(psycopg.OperationalError, match="rejects connection"):
                    psycopg.connect(**dsn, password="Corr3ct-horse", sslmode="disable")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rb = engine.rollback(result["run"])
        assert rb["verified"] and rb["full"]
        after = {p: (p.read_bytes(), p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
        assert after == before, "rollback restores the originals byte for byte"
    finally:
        engine.close()
