"""The workspace the seed's Example 1 runs against: a database server, a
fleet of Django-style web apps (two production copies and one staging copy)
with a SQL injection in ``auth/login.py``, Splunk HEC and Jira channels on
loopback fakes, and ``analyst_01`` (analyst + operator) as a user.

The workspace's policy is the default with one change: a remediation whose
staging checklist passed is approved by policy (the seed's "Deploy (after
approval)" without a second person in the script); see ``POLICY``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from jupiter.engine import Engine
from jupiter.workspace import Workspace
from tests.conftest import ROOT

LOGIN = '''"""Login lookups for the portal (Django)."""

from django.db import connection


def find_user(username, password_hash):
    """The user id and name for a username and password hash, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, username FROM auth_user WHERE username = '%s' AND password = '%s'"
            % (username, password_hash)
        )
        return cursor.fetchone()
'''

# The app's own check (assets.yaml `tests` and the health probe): Django on
# an in-memory SQLite database, one user; a right password logs in, a wrong
# one does not.
CHECK = """import sys

import django
from django.conf import settings

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=[],
)
django.setup()
from django.db import connection  # noqa: E402

from auth.login import find_user  # noqa: E402

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, username TEXT, password TEXT)")
    cursor.execute("INSERT INTO auth_user VALUES (1, 'alice', 'h1')")
assert find_user("alice", "h1") == (1, "alice"), "a right password must log in"
assert find_user("alice", "wrong") is None, "a wrong password must not log in"
"""

EXPLOIT = "' OR '1'='1"

# The default policy, plus: code changes whose checklist passed are approved
# by policy in this demo workspace.
POLICY_EXTRA = """
auto_approve if input.remediation.workflow == "code.sql_injection"
"""


def make_app(root: Path) -> None:
    (root / "auth").mkdir(parents=True)
    (root / "auth/__init__.py").write_text("")
    (root / "auth/login.py").write_text(LOGIN)
    (root / "check_app.py").write_text(CHECK)
    (root / "manage.py").write_text('"""Django\'s command-line utility."""\n')


def build(tmp: Path, *, splunk: str | None = None, jira: str | None = None) -> Path:
    """The workspace home under ``tmp`` (assets imported, users enrolled)."""
    fleet = tmp / "fleet"
    assets: list[dict[str, Any]] = []
    for name, env in (("web-01", "prod"), ("web-02", "prod"), ("web-stg", "staging")):
        root = fleet / name
        make_app(root)
        check = [sys.executable, "check_app.py", "."]
        assets.append(
            {
                "id": name,
                "name": f"Customer portal {name}",
                "kind": "web_app",
                "environment": env,
                "criticality": 5,
                "group": "portal",
                "connection": f"local:{root}",
                "tests": check,
                "probes": [
                    {
                        "kind": "command",
                        "argv": [sys.executable, "{root}/check_app.py", "{root}"],
                        "timeout": 30,
                    }
                ],
            }
        )
    shutil.copytree(ROOT / "examples/host", fleet / "db-01", symlinks=True)
    assets.append(
        {
            "id": "db-01",
            "name": "Portal database",
            "kind": "database",
            "environment": "prod",
            "criticality": 5,
            "group": "data",
            "connection": f"local:{fleet / 'db-01'}",
        }
    )
    (tmp / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
    home = tmp / "home"
    (home / "policies").mkdir(parents=True)
    default = (ROOT / "src/jupiter/policies/default.rego").read_text()
    (home / "policies/default.rego").write_text(default + POLICY_EXTRA)
    channels: dict[str, Any] = {}
    if splunk:
        channels["splunk"] = {"type": "splunk", "url": splunk, "token_env": "COPILOT_HEC_TOKEN"}
    if jira:
        channels["tickets"] = {
            "type": "jira",
            "url": jira,
            "user": "bot@example.com",
            "token_env": "COPILOT_JIRA_TOKEN",
            "project": "SEC",
        }
    if channels:
        config = {"channels": channels, "routes": [{"events": ["*"], "channels": list(channels)}]}
        (home / "integrations.yaml").write_text(yaml.safe_dump(config))
    with Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="admin") as eng:
        eng.init()
        eng.import_assets(tmp / "assets.yaml")
        eng.add_user("analyst_01", ["analyst", "operator"])
        eng.add_user("viewer_01", ["viewer"])
    return home
