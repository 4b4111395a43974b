"""Python codemod benchmark: SQL injection and python-security over a generated
tree, against Bandit's own scan.

Generates ``--files`` Python modules (default 2,000) in a temp dir: plain
utility modules without SQL, data-access modules that already use
parameters, and modules with SQL built by %, f-strings, format() and + for
sqlite3, psycopg, Django and SQLAlchemy. Then, in one run, times

* ``detect`` of ``sql-injection-python`` over the whole tree,
* ``rewrite``: plan + apply of every finding, one at a time as the engine
  would (each plan re-reads the file the previous apply changed),
* ``verify``: detect again (only needs_manual sites may remain),
* ``python-security``: detect, then plan + apply + verify of every finding,
  with the fix rate per Bandit rule id (needs_manual sites are the ones
  judged not to be a security use, or that need a person's decision),
* Bandit's own scan of the same tree, before and after both fixes
  (``bandit -r``, every test), when a bandit executable is found
  (``--bandit PATH``, ``.tools/bandit/bin/bandit`` from scripts/tools.sh, or PATH).

Prints one JSON object on stdout.

    .venv/bin/python benchmarks/codemod.py --files 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from jupiter.plans import WriteFile
from jupiter.plugins.base import NoParams
from jupiter.plugins.sql_injection.fix import SqlInjectionPython
from jupiter.targets.local import LocalTarget

WORDS = ["user", "order", "item", "account", "invoice", "ticket", "event", "note", "tag", "city"]

PLAIN = '''"""Helpers for {w} records (generated)."""

from dataclasses import dataclass


@dataclass
class {W}:
    id: int
    name: str
    # Free text entered by people.
    note: str = ""

    def label(self) -> str:
        return f"{{self.id}}: {{self.name}}"


def total_{w}(values: list[int]) -> int:
    result = 0
    for value in values:
        result += value * {n}
    return result


def describe_{w}(item: {W}) -> str:
    parts = [item.label(), "note=" + item.note, "x%d" % {n}]
    return ", ".join(parts)
'''

SAFE = '''"""Parameterised data access for {w}s (generated)."""

import sqlite3


def get_{w}(conn: sqlite3.Connection, key):
    return conn.execute("SELECT * FROM {w}s WHERE id = ?", (key,)).fetchall()


def find_{w}(conn, name):
    cur = conn.cursor()
    cur.execute("SELECT id FROM {w}s WHERE name = ? LIMIT ?", (name, {n}))
    return cur.fetchall()
'''

SQLITE_SQLI = '''"""{w} repository with SQL built from strings (generated)."""

import sqlite3

TABLE = "{w}s"


def by_name(conn: sqlite3.Connection, name):
    cur = conn.cursor()
    cur.execute("SELECT * FROM {w}s WHERE name = '%s'" % name)  # lookup
    return cur.fetchall()


def search(conn, term, limit):
    return conn.execute(
        f"SELECT id FROM {{TABLE}} WHERE name LIKE '%{{term}}%' LIMIT {{limit}}"
    ).fetchall()


def by_pair(conn, a, b):
    query = "SELECT id FROM {w}s WHERE a = '{{}}' AND b = {{x}}".format(a, x=b)
    return conn.execute(query).fetchall()


def by_id(conn, uid):
    return conn.execute("SELECT * FROM {w}s WHERE id = " + str(uid)).fetchall()


def ordered(conn, column):
    return conn.execute(f"SELECT * FROM {w}s ORDER BY {{column}}").fetchall()
'''

PSYCOPG_SQLI = '''"""{w} access over psycopg (generated)."""

import psycopg


def by_email(conn: psycopg.Connection, email):
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM {w}s WHERE email = '%s' AND name NOT LIKE 'x%%'" % email)
        return cur.fetchall()
'''

DJANGO_SQLI = '''"""Django queries for {w}s (generated)."""

from django.db import connection


def by_name(model, name):
    return list(model.objects.raw(f"SELECT * FROM {w}s WHERE name = '{{name}}'"))


def by_city(model, city):
    return model.objects.extra(where=["city = '%s'" % city])


def count(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM {w}s WHERE name = '{{}}'".format(name))
        return cursor.fetchone()
'''

SA_SQLI = '''"""SQLAlchemy text() queries for {w}s (generated)."""

from sqlalchemy import text


def by_name(conn, name):
    return conn.execute(text("SELECT * FROM {w}s WHERE name = '" + name + "'")).fetchall()
'''

CLIENT = '''"""HTTP client and config for {w}s (generated)."""

import os
import random
import hashlib
import tempfile

import requests
import yaml


def fetch_{w}(url):
    return requests.get(url).json()


def push_{w}(url, body):
    return requests.post(url, json=body, verify=False, timeout=5).status_code


def config_{w}(text):
    return yaml.load(text)


def reset_token_{w}():
    return "".join(random.choice("abcdef0123456789") for _ in range(32))


def shuffle_colour_{w}():
    return random.choice(["red", "green", "blue"])


def etag_{w}(body):
    return hashlib.md5(body).hexdigest()


def password_digest_{w}(password):
    return hashlib.sha1(password.encode()).hexdigest()


def cleanup_{w}():
    os.system("rm -f /tmp/{w}.lock")


def scratch_{w}():
    path = tempfile.mktemp(suffix=".{w}")
    return path
'''

PARSER = '''"""XML feed and pages for {w}s (generated)."""

import xml.etree.ElementTree as ET

import jinja2

ENV = jinja2.Environment(loader=jinja2.DictLoader({{"p.html": "{{{{ x }}}}"}}))


def names_{w}(document):
    return [e.get("name") for e in ET.fromstring(document).iter("{w}")]


def limits_{w}():
    return eval("{{'page': {n}}}")
'''

KINDS = [
    (PLAIN, 55),
    (SAFE, 20),
    (SQLITE_SQLI, 12),
    (PSYCOPG_SQLI, 5),
    (DJANGO_SQLI, 5),
    (SA_SQLI, 3),
    (CLIENT, 8),
    (PARSER, 4),
]
BANDIT_ONLY = (CLIENT, PARSER)


def build_tree(root: Path, files: int, seed: int) -> int:
    """Write ``files`` modules under ``root``; returns how many hold SQLi."""
    rng = random.Random(seed)
    # the project's dependency file, which the defusedxml fix declares into
    (root / "requirements.txt").write_text("requests>=2.31\npyyaml>=6\njinja2>=3.1\n")
    templates = [t for t, weight in KINDS for _ in range(weight)]
    with_sqli = 0
    for i in range(files):
        template = rng.choice(templates)
        word = rng.choice(WORDS)
        text = template.format(w=word, W=word.capitalize(), n=rng.randint(1, 99))
        path = root / f"pkg{i % 20:02d}" / f"mod_{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        with_sqli += template not in (PLAIN, SAFE, *BANDIT_ONLY)
    return with_sqli


def find_bandit(explicit: str | None) -> str | None:
    tools = Path(__file__).resolve().parent.parent / ".tools/bandit/bin/bandit"
    for candidate in (explicit, str(tools), shutil.which("bandit")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_bandit(bandit: str, root: Path) -> dict[str, object]:
    out = root.parent / "bandit.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [bandit, "-r", str(root), "-f", "json", "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.perf_counter() - start
    results = json.loads(out.read_text())["results"] if out.exists() else []
    by_rule: dict[str, int] = {}
    for r in results:
        by_rule[r["test_id"]] = by_rule.get(r["test_id"], 0) + 1
    return {
        "by_rule": dict(sorted(by_rule.items())),
        "path": bandit,
        "returncode": proc.returncode,
        "seconds": round(seconds, 3),
        "files_per_second": None,
        "b608_results": sum(1 for r in results if r["test_id"] == "B608"),
        "all_results": len(results),
    }


def python_security(target: LocalTarget, files: int) -> dict[str, object]:
    """Detect + plan + apply of every python-security finding, one at a
    time as the engine would; the fix rate per Bandit rule id."""
    from jupiter.plugins.python_security.fix import PythonSecurity

    plugin = PythonSecurity()
    params = plugin.default_params()
    start = time.perf_counter()
    findings = plugin.detect(target)
    detect_s = time.perf_counter() - start
    rules: dict[str, dict[str, int]] = {}
    start = time.perf_counter()
    for finding in findings:
        row = rules.setdefault(finding.rule_id, {"findings": 0, "fixed": 0, "needs_manual": 0})
        row["findings"] += 1
        plan = plugin.plan(finding, target, params)
        if plan.needs_manual:
            row["needs_manual"] += 1
            continue
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            target.write_bytes(change.path, change.content.encode())
        if (plan.changes and plugin.is_fixed(finding, target, params)) or not plan.changes:
            row["fixed"] += 1
    fix_s = time.perf_counter() - start
    for row in rules.values():
        row["fix_rate_percent"] = round(100 * row["fixed"] / row["findings"])
    return {
        "findings": len(findings),
        "detect_seconds": round(detect_s, 3),
        "detect_files_per_second": round(files / detect_s, 1),
        "fix_seconds": round(fix_s, 3),
        "by_rule": dict(sorted(rules.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--bandit", default=None, help="path of a bandit executable")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    remediator = SqlInjectionPython()
    with tempfile.TemporaryDirectory(prefix="jupiter-codemod-") as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        with_sqli = build_tree(root, args.files, args.seed)
        target = LocalTarget(root)

        bandit = find_bandit(args.bandit)
        bandit_result: dict[str, object] | None = None
        if bandit is not None:  # before the rewrite: the same tree we detect on
            bandit_result = run_bandit(bandit, root)
            bandit_result["files_per_second"] = round(
                args.files / float(bandit_result["seconds"]), 1
            )  # type: ignore[arg-type]

        start = time.perf_counter()
        findings = remediator.detect(target)
        detect_s = time.perf_counter() - start

        start = time.perf_counter()
        applied = manual = 0
        for finding in findings:
            plan = remediator.plan(finding, target, NoParams())
            if plan.needs_manual:
                manual += 1
                continue
            for change in plan.changes:
                assert isinstance(change, WriteFile)
                target.write_bytes(change.path, change.content.encode())
            applied += 1
        rewrite_s = time.perf_counter() - start

        start = time.perf_counter()
        remaining = remediator.detect(target)
        verify_s = time.perf_counter() - start

        py_result = python_security(target, args.files)
        if bandit is not None:
            after = run_bandit(bandit, root)
            py_result["bandit_after_by_rule"] = after["by_rule"]

    result = {
        "benchmark": "codemod-sql-injection-python",
        "files": args.files,
        "files_with_sqli": with_sqli,
        "findings": len(findings),
        "plans_applied": applied,
        "needs_manual": manual,
        "remaining_after_fix": len(remaining),
        "detect_seconds": round(detect_s, 3),
        "detect_files_per_second": round(args.files / detect_s, 1),
        "rewrite_seconds": round(rewrite_s, 3),
        "rewrite_findings_per_second": round(applied / rewrite_s, 1) if rewrite_s else None,
        "detect_plus_rewrite_files_per_second": round(args.files / (detect_s + rewrite_s), 1),
        "verify_seconds": round(verify_s, 3),
        "bandit": bandit_result,
        "python_security": py_result,
        "python": platform.python_version(),
        "libcst": version("libcst"),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0 if len(remaining) == manual else 1


if __name__ == "__main__":
    sys.exit(main())
