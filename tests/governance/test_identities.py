"""Users, scoped roles, API tokens and the bootstrap admin."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.conftest import run_cli

from jupiter.engine import Engine
from jupiter.errors import InputError, PermissionDenied, TargetError
from jupiter.store.tables import ApiTokenRow, AssetRow, AuditRow, UserRow, utcnow
from jupiter.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'jupiter.db'}")


def _asset(eng: Engine, asset_id: str, group: str, env: str) -> None:
    with eng.db.transaction() as s:
        now = utcnow()
        s.add(
            AssetRow(
                id=asset_id,
                name=asset_id,
                kind="host",
                environment=env,
                criticality=3,
                owner=None,
                tags=[],
                group_name=group,
                connection=None,
                registered=True,
                created_at=now,
                updated_at=now,
            )
        )


def test_first_user_is_admin_and_unknown_users_are_refused(ws: Workspace) -> None:
    with Engine(ws, actor="alice") as alice:
        assert alice.init()["admin"] == "alice"
        assert alice.init()["admin"] is None  # idempotent
        mallory = Engine(ws, actor="mallory")
        with mallory, pytest.raises(PermissionDenied, match=r"user 'mallory' is not known"):
            mallory.list_findings()
        with alice.db.reading() as s:
            denied = s.scalars(select(AuditRow).where(AuditRow.action == "permission.denied"))
            assert [r.actor for r in denied] == ["mallory"]


def test_scoped_roles_count_only_inside_their_scope(ws: Workspace) -> None:
    with Engine(ws, actor="alice") as alice:
        alice.init()
        _asset(alice, "portal-1", "portal-fleet", "prod")
        _asset(alice, "shop-1", "shop", "prod")
        alice.add_user("olga", ["operator"], group="portal-fleet")
        with Engine(ws, actor="olga") as olga:
            # In scope: the check passes (the scan itself then finds no target).
            with pytest.raises(TargetError, match="does not exist"):
                olga.scan("/nonexistent/x", asset="portal-1")
            with pytest.raises(PermissionDenied, match=r"on asset 'shop-1'.*operator or admin"):
                olga.scan("/nonexistent/x", asset="shop-1")
            # No asset named: a scoped grant does not count for a change...
            with pytest.raises(PermissionDenied):
                olga.scan("/nonexistent/x")
            # ...but does for reading.
            assert olga.list_findings() == []


def test_disable_user_and_last_admin(ws: Workspace) -> None:
    with Engine(ws, actor="alice") as alice:
        alice.init()
        with pytest.raises(InputError, match="last enabled admin"):
            alice.disable_user("alice")
        alice.add_user("bob", ["viewer"])
        alice.disable_user("bob")
        with pytest.raises(InputError, match="already disabled"):
            alice.disable_user("bob")
        with pytest.raises(InputError, match="unknown role 'boss'"):
            alice.add_user("carol", ["boss"])
        with alice.db.reading() as s:
            assert s.scalar(select(UserRow).where(UserRow.name == "carol")) is None
    with Engine(ws, actor="bob") as bob, pytest.raises(PermissionDenied, match="disabled"):
        bob.list_assets()


def test_tokens_are_hashed_shown_once_and_refused_when_revoked_or_expired(
    ws: Workspace,
) -> None:
    with Engine(ws, actor="alice") as alice:
        alice.init()
        alice.add_user("bot", ["viewer"])
        made = alice.create_token("bot", label="ci", expires_days=1)
        token = made["token"]
        with alice.db.reading() as s:
            row = s.get(ApiTokenRow, made["id"])
            assert row is not None and token.split("_")[2] not in row.secret_hash
            assert row.secret_hash.startswith("$argon2id$")
        with Engine(ws, actor="whoever", token=token) as eng:
            assert eng.whoami().name == "bot"
            assert eng.list_findings() == []
            with pytest.raises(PermissionDenied, match="needs the analyst or admin role"):
                eng.ingest([Path("/nonexistent")])
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        with Engine(ws, token=tampered) as eng, pytest.raises(PermissionDenied, match="not valid"):
            eng.list_findings()
        with alice.db.transaction() as s:
            s.execute(update(ApiTokenRow).values(expires_at=utcnow() - timedelta(seconds=1)))
        with Engine(ws, token=token) as eng, pytest.raises(PermissionDenied, match="expired"):
            eng.list_findings()
        alice.revoke_token(made["id"])
        with Engine(ws, token=token) as eng, pytest.raises(PermissionDenied, match="revoked"):
            eng.list_findings()
        with pytest.raises(InputError, match="already revoked"):
            alice.revoke_token(made["id"])


def test_cli_users_and_token_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    init = run_cli("init", "--json", home=home, env={"JUPITER_ACTOR": "root-user"})
    assert init.returncode == 0 and json.loads(init.stdout)["admin"] == "root-user"
    admin = {"JUPITER_ACTOR": "root-user"}
    done = run_cli("users", "add", "vic", "--role", "viewer", home=home, env=admin)
    assert done.returncode == 0, done.stderr
    made = run_cli("users", "token", "create", "--user", "vic", "--json", home=home, env=admin)
    token = json.loads(made.stdout)["token"]
    env = {"JUPITER_TOKEN": token, "JUPITER_ACTOR": "root-user"}
    listed = run_cli("findings", "list", "--json", home=home, env=env)
    assert listed.returncode == 0, listed.stderr
    refused = run_cli("users", "add", "eve", "--role", "admin", home=home, env=env)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "needs the admin role" in refused.stderr
    unknown = run_cli("users", "list", home=home, env={"JUPITER_ACTOR": "nobody"})
    assert unknown.returncode == 2 and "not known" in unknown.stderr
    bad = run_cli("users", "add", "x", "--role", "boss", home=home, env=admin)
    assert bad.returncode == 2 and "unknown role" in bad.stderr
    users = json.loads(run_cli("users", "list", "--json", home=home, env=admin).stdout)
    assert [u["name"] for u in users] == ["root-user", "vic"]
    assert os.environ.get("JUPITER_TOKEN") is None
