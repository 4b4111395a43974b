"""Exceptions (waivers): requested, approved by someone else, honoured by
scan, findings list and fix, and reopened on expiry or revocation."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import ROOT

from jupiter.engine import Engine
from jupiter.errors import InputError, PermissionDenied
from jupiter.store.tables import AuditRow, WaiverRow, utcnow
from jupiter.workspace import Workspace


@pytest.fixture
def scanned(tmp_path: Path) -> tuple[Engine, Path, dict[str, object]]:
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    eng = Engine(Workspace(tmp_path / "home", f"sqlite:///{tmp_path / 'j.db'}"), actor="alice")
    eng.init()
    eng.add_user("bob", ["admin"])
    eng.add_user("ann", ["analyst"])
    eng.scan(str(host), asset="host-1")
    finding = next(f for f in eng.list_findings(asset="host-1") if f["rule_id"].startswith("SSH"))
    return eng, host, finding


def test_exception_hides_a_finding_until_it_expires(
    scanned: tuple[Engine, Path, dict[str, object]],
) -> None:
    alice, host, finding = scanned
    fid = int(str(finding["id"]))
    ann = Engine(alice.workspace, actor="ann")
    w = ann.request_exception("legacy client", "RISK-7", "10d", finding=str(fid))
    assert alice.get_finding(str(fid))["status"] == "open"  # not yet approved
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        ann.approve_exception(w["id"])
    approved = alice.approve_exception(w["id"], comment="ok")
    assert approved["excepted"] == [fid]
    assert alice.get_finding(str(fid))["status"] == "excepted"
    rescan = alice.scan(str(host), asset="host-1")
    assert fid in rescan.excepted and alice.get_finding(str(fid))["status"] == "excepted"
    dry = alice.fix(str(host), asset="host-1", dry_run=True)
    assert fid not in [s.get("finding") for s in dry["steps"]]
    assert alice.expire_exceptions() == []  # not due yet
    done = alice.expire_exceptions(now=utcnow() + timedelta(days=11))
    assert done[0]["id"] == w["id"] and done[0]["reopened"] == [fid]
    assert alice.get_finding(str(fid))["status"] == "open"
    assert alice.list_exceptions()[0]["status"] == "expired"


def test_separation_of_duties_and_bad_input(
    scanned: tuple[Engine, Path, dict[str, object]],
) -> None:
    alice, _, finding = scanned
    fid = str(finding["id"])
    with pytest.raises(InputError, match="in the past"):
        alice.request_exception("r", "T-1", "2020-01-01", finding=fid)
    with pytest.raises(InputError, match="not a date"):
        alice.request_exception("r", "T-1", "soon", finding=fid)
    with pytest.raises(InputError, match=r"the policy allows at most (30|90) days"):
        alice.request_exception("r", "T-1", "400d", finding=fid)
    with pytest.raises(InputError, match="--rule RULE"):
        alice.request_exception("r", "T-1", "5d", rule="SSH-001")
    with alice.db.reading() as s:
        assert s.scalars(select(WaiverRow)).all() == []
    w = alice.request_exception("r", "T-1", "5d", rule=str(finding["rule_id"]), asset="host-1")
    with pytest.raises(PermissionDenied, match="separation of duties"):
        alice.approve_exception(w["id"])
    bob = Engine(alice.workspace, actor="bob")
    assert bob.approve_exception(w["id"])["excepted"]
    with pytest.raises(PermissionDenied, match="already approved"):
        bob.approve_exception(w["id"])
    with alice.db.reading() as s:
        refused = s.scalars(select(AuditRow).where(AuditRow.action == "permission.denied"))
        assert [r.actor for r in refused] == ["alice", "bob"]
    revoked = alice.revoke_exception(w["id"], reason="fixed upstream")
    assert int(str(finding["id"])) in revoked["reopened"]
    assert alice.get_finding(fid)["status"] == "open"
