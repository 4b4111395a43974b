"""A workspace for the console tests: a production fleet (copies of
examples/host, fixed by the built-in plugins), a remediation awaiting two
approvals, and users with API tokens:

* ``root``: admin; ``ann``: analyst, operator and approver (she requests
  the remediation, so separation of duties forbids her to approve it);
* ``bob`` and ``cat``: approvers; ``vic``: viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from jupiter.api.app import create_app
from jupiter.console import mount
from jupiter.engine import Engine
from jupiter.workspace import Workspace
from tests.remediations.fleetlib import make_fleet, workflow

STAGES = [{"kind": "snapshot"}, {"kind": "approval"}, {"kind": "deploy"}]
#: Three fixes on three files (quick to plan and deploy; one path can be
#: rolled back while the others stay fixed).
RULES = ["SSHD-ROOT-LOGIN", "SSHD-PASSWORD-AUTH", "PG-LOG-CONNECTIONS"]


@dataclass
class Place:
    home: Path
    db_url: str
    roots: list[Path]
    rem: str
    tokens: dict[str, str]

    def engine(self, actor: str = "root") -> Engine:
        return Engine(Workspace(self.home, self.db_url), actor=actor)

    def app(self) -> FastAPI:
        app = create_app(self.home, self.db_url)
        mount(app)  # create_app may already have; mount() is idempotent
        return app


def prepare(tmp: Path, targets: int = 2) -> Place:
    roots = make_fleet(tmp, targets)
    home, db_url = tmp / "home", f"sqlite:///{tmp / 'jupiter.db'}"
    admin = Engine(Workspace(home, db_url), actor="root")
    try:
        admin.init()
        admin.add_user("ann", ["analyst", "operator", "approver"])
        admin.add_user("bob", ["approver"])
        admin.add_user("cat", ["approver"])
        admin.add_user("vic", ["viewer"])
        admin.import_assets(tmp / "assets.yaml")
        tokens = {
            u: admin.create_token(user=u, label="console test")["token"]
            for u in ("root", "ann", "bob", "cat", "vic")
        }
    finally:
        admin.close()
    workflow(home, "guarded", STAGES)
    ann = Engine(Workspace(home, db_url), actor="ann")
    try:
        made = ann.remediations.create(workflow="guarded", group="web", only=RULES)
        assert made.remediation is not None
        rem = made.remediation.id
        assert ann.remediations.run(rem).status == "awaiting_approval"
    finally:
        ann.close()
    return Place(home, db_url, roots, rem, tokens)
