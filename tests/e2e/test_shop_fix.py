"""Acceptance test: ``jupiter fix`` on a small, deliberately vulnerable web app.

``examples/shop`` holds sqlite3 and Django-style code with every SQL-building
pattern the codemod handles (and one ORDER BY identifier it must not touch),
six vulnerable pins in ``requirements.txt``, a two-container Deployment plus a
Service, and a Dockerfile. One module fixture copies it, runs the app's own
tests, Bandit and Checkov (whose reports are ingested), runs ``Engine.fix``,
then the same three checks again and a second fix; each test below checks one
promise of the issue's "Done when" on that outcome. The last test rolls the
run back and compares the whole tree byte for byte.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tokenize
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML

from jupiter.engine import Engine
from jupiter.plugins.base import NoParams
from jupiter.plugins.sql_injection.fix import SqlInjectionPython
from jupiter.targets.local import LocalTarget
from jupiter.workspace import Workspace
from tests.conftest import ROOT, run_cli
from tests.tools import tool

SHOP = ROOT / "examples" / "shop"
ADVISORIES = ROOT / "examples" / "advisories"
ASSET = "shop"

# Files the fix may change: the app's own code, pins and IaC, nothing else.
APP_FILES = {
    "shop/db.py",
    "shop/reports.py",
    "requirements.txt",
    "k8s/deployment.yaml",
    "Dockerfile",
}
APP_REMEDIATORS = {
    "sql-injection-python",
    "python-dependencies",
    "kubernetes-pod-security",
    "dockerfile-hardening",
}

# Lowest fixing version per pin, worked out by hand from examples/advisories:
# Django 3.2.0: fixes at 3.2.1 (CVE-2021-28658), 3.2.4 (-33203), 3.2.5 (-35042),
#   3.2.10 (-44420); the 4.2/5.0 record does not affect the 3.2 line -> 3.2.10.
# flask 2.2.2: 2.2.5. jinja2 3.1.2: 3.1.3, 3.1.4, 3.1.5 -> 3.1.5.
# requests 2.25.1: 2.31.0 is still hit by "< 2.32.0" -> 2.32.0 (the withdrawn
#   record's "fixed 2.99.0" must not count).
# urllib3 1.26.5: 1.26.17, 1.26.18, 1.26.19 on the 1.26 line -> 1.26.19.
# PyYAML 5.3.1: 5.4 (CVE-2020-1747, fixed in 5.3.1, does not affect it).
PIN_BUMPS = {
    "Django": ("3.2.0", "3.2.10"),
    "flask": ("2.2.2", "2.2.5"),
    "jinja2": ("3.1.2", "3.1.5"),
    "requests[socks]": ("2.25.1", "2.32.0"),
    "urllib3": ("1.26.5", "1.26.19"),
    "PyYAML": ("5.3.1", "5.4"),
}
ADVISORIES_FOUND = {
    ("django", "3.2.0", "CVE-2021-28658"),
    ("django", "3.2.0", "CVE-2021-33203"),
    ("django", "3.2.0", "CVE-2021-35042"),
    ("django", "3.2.0", "CVE-2021-44420"),
    ("flask", "2.2.2", "CVE-2023-30861"),
    ("jinja2", "3.1.2", "CVE-2024-22195"),
    ("jinja2", "3.1.2", "CVE-2024-34064"),
    ("jinja2", "3.1.2", "CVE-2024-56326"),
    ("requests", "2.25.1", "CVE-2023-32681"),
    ("requests", "2.25.1", "CVE-2024-35195"),
    ("urllib3", "1.26.5", "CVE-2023-43804"),
    ("urllib3", "1.26.5", "CVE-2023-45803"),
    ("urllib3", "1.26.5", "CVE-2024-37891"),
    ("pyyaml", "5.3.1", "CVE-2020-14343"),
}

# Checkov checks the fix must clear, and what may remain (each with a
# needs_manual step, except CKV2_K8S_6: a NetworkPolicy no remediator writes).
CHECKOV_FIXED = {
    "CKV_K8S_16",
    "CKV_K8S_20",
    "CKV_K8S_23",
    "CKV_K8S_28",
    "CKV_K8S_29",
    "CKV_K8S_30",
    "CKV_K8S_31",
    "CKV_K8S_37",
    "CKV_K8S_38",
    "CKV_K8S_40",
    "CKV_DOCKER_3",
    "CKV_DOCKER_4",
}
CHECKOV_LEFT = {
    "CKV_K8S_8",
    "CKV_K8S_9",
    "CKV_K8S_10",
    "CKV_K8S_11",
    "CKV_K8S_12",
    "CKV_K8S_13",
    "CKV_K8S_14",
    "CKV_K8S_22",
    "CKV_K8S_43",
    "CKV2_K8S_6",
    "CKV_DOCKER_2",
}

# Functions holding a Bandit B608/B610 report before the fix, and after it
# (the ORDER BY identifier needs an allow-list, so it stays).
BANDIT_BEFORE = (
    {
        ("shop/db.py", f, "B608")
        for f in (
            "product_by_name",
            "products_in_category",
            "cheaper_in_category",
            "search_products",
            "product_by_id",
            "customer_by_email",
            "in_stock_page",
            "orders_of",
            "place_order",
            "rename_customer",
            "products_sorted",
        )
    }
    | {
        ("shop/reports.py", f, "B608")
        for f in ("revenue_by_category", "big_orders", "customers_named")
    }
    | {("shop/reports.py", "customers_with_email", "B610")}
)
BANDIT_AFTER = {("shop/db.py", "products_sorted", "B608")}
INJECT = "x' OR '1'='1"


@dataclass
class Scan:
    """The app's tests, Bandit and Checkov on one state of the tree."""

    tests: subprocess.CompletedProcess[str]
    bandit: dict[str, Any]
    checkov: list[dict[str, Any]]


@dataclass
class Outcome:
    copy: Path
    engine: Engine
    advisories: dict[str, Any]
    before_tree: dict[str, tuple[bytes, int]]
    before: Scan
    findings_before: list[dict[str, Any]]
    result: dict[str, Any]
    after_tree: dict[str, tuple[bytes, int]]
    after: Scan
    findings_after: list[dict[str, Any]]
    second: dict[str, Any]
    tree_after_second: dict[str, tuple[bytes, int]]


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: relative path -> (bytes, mode)."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run_app_tests(copy: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _bandit(copy: Path, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [str(tool("bandit", "bandit")), "-r", "shop", "-f", "json", "-q"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: issues found
    out.write_text(proc.stdout)
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report["errors"] == []
    return report


def _checkov(copy: Path, out: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [
            str(tool("checkov", "checkov")),
            "-d",
            str(copy.resolve()),
            "--framework",
            "kubernetes",
            "dockerfile",
            "--skip-download",
            "-o",
            "json",
            "--quiet",
        ],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: failed checks
    out.write_text(proc.stdout)
    data = json.loads(proc.stdout)
    return data if isinstance(data, list) else [data]


def _scan(copy: Path, reports: Path, label: str) -> Scan:
    return Scan(
        _run_app_tests(copy),
        _bandit(copy, reports / f"bandit-{label}.json"),
        _checkov(copy, reports / f"checkov-{label}.json"),
    )


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    base = tmp_path_factory.mktemp("shop_e2e")
    copy = base / "shop"
    reports = base / "reports"
    reports.mkdir()
    shutil.copytree(SHOP, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    home = base / "home"
    engine = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="tester")
    try:
        advisories = engine.import_advisories(ADVISORIES)
        before_tree = _tree(copy)
        before = _scan(copy, reports, "before")
        assert _tree(copy) == before_tree, "the app's tests or the scanners wrote into the app"
        engine.ingest(
            [reports / "bandit-before.json", reports / "checkov-before.json"], asset=ASSET
        )
        findings_before = engine.list_findings(asset=ASSET)
        result = engine.fix(str(copy), asset=ASSET)
        after_tree = _tree(copy)
        after = _scan(copy, reports, "after")
        findings_after = engine.list_findings(asset=ASSET)
        second = engine.fix(str(copy), asset=ASSET)
        yield Outcome(
            copy,
            engine,
            advisories,
            before_tree,
            before,
            findings_before,
            result,
            after_tree,
            after,
            findings_after,
            second,
            _tree(copy),
        )
    finally:
        engine.close()


# -- helpers ---------------------------------------------------------------


def _functions_at(source: str, lines: set[int]) -> dict[int, str]:
    """Line -> name of the top-level function holding it."""
    found: dict[int, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            for line in lines:
                if node.lineno <= line <= (node.end_lineno or node.lineno):
                    found[line] = node.name
    return found


def _bandit_functions(
    report: dict[str, Any], tree: dict[str, tuple[bytes, int]]
) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for r in report["results"]:
        path = r["filename"].removeprefix("./")
        where = _functions_at(tree[path][0].decode(), {r["line_number"]})
        out.add((path, where.get(r["line_number"], "<module>"), r["test_id"]))
    return out


def _checkov_failed(reports: list[dict[str, Any]]) -> set[str]:
    return {c["check_id"] for rep in reports for c in rep["results"]["failed_checks"]}


def _comments(path: str, data: bytes) -> list[str]:
    """The comments of a file, in order (Python via tokenize; others by '#')."""
    text = data.decode()
    if path.endswith(".py"):
        return [
            t.string
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.COMMENT
        ]
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            out.append(stripped)
        elif " #" in line:
            out.append(line[line.index(" #") + 1 :].strip())
    return out


def _import(path: Path) -> ModuleType:
    name = f"shop_e2e_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(module: ModuleType, name: str) -> ast.FunctionDef:
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _steps(outcome: Outcome, status: str | None = None) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = outcome.result["steps"]
    return [s for s in steps if status is None or s["status"] == status]


# -- the promises ----------------------------------------------------------


def test_advisories_and_the_findings_they_raise(outcome: Outcome) -> None:
    assert outcome.advisories["records"] == 17 and outcome.advisories["withdrawn"] == 1
    assert outcome.advisories["packages"] == 6
    deps = {
        (f["location"]["package"], f["location"]["version"], f["rule_id"])
        for f in outcome.findings_after
        if f["category"] == "dependency"
    }
    assert deps == ADVISORIES_FOUND
    # What the two scanners reported was stored before the fix ran.
    ingested = {f["rule_id"] for f in outcome.findings_before}
    assert ingested == {"B608", "B610"} | _checkov_failed(outcome.before.checkov)


def test_the_apps_own_tests_pass_before_and_after(outcome: Outcome) -> None:
    for label, scan in (("before", outcome.before), ("after", outcome.after)):
        proc = scan.tests
        assert proc.returncode == 0, f"{label}:\n{proc.stdout}\n{proc.stderr}"
        assert "14 passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout


def test_scanners_report_the_weaknesses_before(outcome: Outcome) -> None:
    assert _bandit_functions(outcome.before.bandit, outcome.before_tree) == BANDIT_BEFORE
    assert _checkov_failed(outcome.before.checkov) == CHECKOV_FIXED | CHECKOV_LEFT


def test_bandit_and_builtin_findings_are_one_finding(outcome: Outcome) -> None:
    """A one-line sink reported by Bandit (B608) and by Jupiter's detector
    (PY-SQLI-00x) is stored once, with both sources."""
    db_py = outcome.before_tree["shop/db.py"][0].decode()
    merged: dict[str, list[set[str]]] = {}
    for f in outcome.findings_after:
        if f["category"] != "code.sql_injection" or f["location"]["path"] != "shop/db.py":
            continue
        line = f["location"]["start_line"]
        name = _functions_at(db_py, {line}).get(line, "<module>")
        merged.setdefault(name, []).append({s["scanner"] for s in f["sources"]})
    for name in (
        "product_by_name",
        "products_in_category",
        "search_products",
        "product_by_id",
        "customer_by_email",
        "products_sorted",
    ):
        assert merged.get(name) == [{"bandit", "jupiter-sqli"}], (name, merged)


def test_every_step_settles_and_the_run_succeeds(outcome: Outcome) -> None:
    result = outcome.result
    assert result["run"] is not None and result["status"] == "succeeded", result["status"]
    statuses = {s["status"] for s in _steps(outcome)}
    assert statuses <= {"verified", "already_fixed", "needs_manual"}, statuses
    verified = {s["remediator"] for s in _steps(outcome, "verified")}
    assert verified >= APP_REMEDIATORS  # (and no others: test_the_fix_stays_within_the_app)
    for step in _steps(outcome, "needs_manual"):
        assert step["detail"] and len(step["detail"]) > 40, step
    # One verified bump per package; the other advisories are then already fixed.
    deps = [s for s in _steps(outcome, "verified") if s["remediator"] == "python-dependencies"]
    assert len(deps) == len(PIN_BUMPS)


def test_what_needs_a_human_is_listed_with_its_reason(outcome: Outcome) -> None:
    manual = [(s["remediator"], s["rule_id"], s["detail"]) for s in _steps(outcome, "needs_manual")]

    def has(remediator: str, rules: set[str], *words: str) -> bool:
        return any(
            r == remediator and rule in rules and all(w in d for w in words)
            for r, rule, d in manual
        )

    assert has(
        "sql-injection-python",
        {"B608", "PY-SQLI-001"},
        "shop/db.py",
        "{column}",
        "identifier",
        "allow-list",
    )
    assert has(
        "kubernetes-pod-security",
        {"K8S-IMAGE-DIGEST", "CKV_K8S_43"},
        "digest",
        "registry.example.com/shop/web:1.4.2",
    )
    assert has(
        "kubernetes-pod-security",
        {"K8S-IMAGE-LATEST", "CKV_K8S_14"},
        "registry.example.com/shop/worker:latest",
    )
    assert has("kubernetes-pod-security", {"K8S-PROBES", "CKV_K8S_8", "CKV_K8S_9"}, "probes")
    assert has("kubernetes-pod-security", {"K8S-RESOURCES", "CKV_K8S_10"}, "limits.memory")
    assert has(
        "kubernetes-pod-security", {"K8S-READ-ONLY-ROOT-FS", "CKV_K8S_22"}, "readOnlyRootFilesystem"
    )
    assert has("dockerfile-hardening", {"DOCKER-NO-HEALTHCHECK", "CKV_DOCKER_2"}, "HEALTHCHECK")
    # Nothing fixable was left as manual work.
    fixable = {
        "K8S-PRIVILEGED",
        "K8S-PRIV-ESCALATION",
        "K8S-RUN-AS-NON-ROOT",
        "K8S-LOW-UID",
        "K8S-CAPS-DROP-ALL",
        "K8S-CAP-NET-RAW",
        "K8S-SECCOMP",
        "K8S-SA-TOKEN-AUTOMOUNT",
        "DOCKER-ROOT-USER",
        "DOCKER-ADD",
        *CHECKOV_FIXED,
    }
    assert not [m for m in manual if m[1] in fixable], manual


def test_only_findings_no_remediator_handles_stay_open_without_a_step(outcome: Outcome) -> None:
    """Every finding some remediator can fix gets a step. What is left is
    outside every remediator: Checkov's NetworkPolicy graph check (the
    "has a securityContext" checks CKV_K8S_29/30 have their own rules now)."""
    stepped = {s["finding"] for s in _steps(outcome)}
    orphans = {
        f["rule_id"]
        for f in outcome.findings_after
        if f["id"] not in stepped and f["status"] == "open"
    }
    assert orphans == {"CKV2_K8S_6"}, orphans
    # ... and the run lists them, each with the reason and what to do.
    listed = {u["rule_id"]: u["reason"] for u in outcome.result["unhandled"]}
    assert orphans <= set(listed), listed
    assert all("no remediator handles" in why for why in listed.values())


def test_the_fix_stays_within_the_app(outcome: Outcome) -> None:
    """An application repository gets no host configuration (e.g. no
    etc/nftables.conf): only the app's own files change."""
    changed = {
        p
        for p in outcome.before_tree.keys() | outcome.after_tree.keys()
        if outcome.before_tree.get(p) != outcome.after_tree.get(p)
    }
    assert changed == APP_FILES, sorted(changed ^ APP_FILES)
    assert {s["remediator"] for s in _steps(outcome)} <= APP_REMEDIATORS


def test_sql_injection_is_gone_except_the_identifier(outcome: Outcome) -> None:
    left = SqlInjectionPython().detect(LocalTarget(outcome.copy), NoParams())
    where = {(f.location.path, f.extra["function"]) for f in left}
    assert where == {("shop/db.py", "products_sorted")}, where
    assert _bandit_functions(outcome.after.bandit, outcome.after_tree) == BANDIT_AFTER
    # Every fixed module compiles; the Django ones too (Django need not be configured).
    for path in ("shop/db.py", "shop/reports.py"):
        compile(outcome.after_tree[path][0], path, "exec", dont_inherit=True)


def test_injection_payloads_are_data_after_the_fix(outcome: Outcome) -> None:
    original, fixed = _import(SHOP / "shop" / "db.py"), _import(outcome.copy / "shop" / "db.py")
    for module, expect_injected in ((original, True), (fixed, False)):
        conn = module.connect()
        try:
            conn.executemany(
                "INSERT INTO products VALUES (?, ?, ?, ?, ?)",
                [(1, "Blue mug", "kitchen", 1200, 10), (2, "Pen", "office", 150, 3)],
            )
            conn.execute("INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com')")
            assert (module.product_by_name(conn, INJECT) is not None) is expect_injected
            assert (module.customer_by_email(conn, INJECT) is not None) is expect_injected
            assert (len(module.products_in_category(conn, INJECT)) == 2) is expect_injected
            assert (
                module.search_products(conn, "zz%' OR '1'='1' OR name LIKE '") != []
            ) is expect_injected
            if not expect_injected:
                assert module.product_by_id(conn, "0 OR 1=1") is None
        finally:
            conn.close()
    # The identifier case is left exactly as it was, for a human.
    assert ast.get_source_segment(
        outcome.before_tree["shop/db.py"][0].decode(), _function(original, "products_sorted")
    ) == ast.get_source_segment(
        outcome.after_tree["shop/db.py"][0].decode(), _function(fixed, "products_sorted")
    )


def test_checkov_is_clean_for_the_fixed_checks(outcome: Outcome) -> None:
    failed = _checkov_failed(outcome.after.checkov)
    assert not failed & CHECKOV_FIXED, sorted(failed & CHECKOV_FIXED)
    assert failed == CHECKOV_LEFT, sorted(failed ^ CHECKOV_LEFT)


def test_the_privileged_trap_is_resolved_consistently(outcome: Outcome) -> None:
    docs = list(YAML(typ="safe").load_all(outcome.after_tree["k8s/deployment.yaml"][0]))
    spec = docs[0]["spec"]["template"]["spec"]
    web, worker = spec["containers"]
    # allowPrivilegeEscalation: false next to privileged: true is rejected by the API server.
    assert web["securityContext"]["privileged"] is False
    for container in (web, worker):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
        assert sc["runAsUser"] >= 10000 and "ALL" in sc["capabilities"]["drop"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    dockerfile = outcome.after_tree["Dockerfile"][0].decode()
    assert "\nADD " not in dockerfile and "COPY settings.ini /srv/settings.ini" in dockerfile
    users = [ln.split()[1] for ln in dockerfile.splitlines() if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_every_pin_lands_on_its_lowest_fixing_version(outcome: Outcome) -> None:
    before = outcome.before_tree["requirements.txt"][0].decode()
    after = outcome.after_tree["requirements.txt"][0].decode()
    expected = before
    for name, (old, new) in PIN_BUMPS.items():
        assert f"{name}=={old}" in expected
        expected = expected.replace(f"{name}=={old}", f"{name}=={new}", 1)
    # Only the version characters change: comments, extras, markers, spacing stay.
    assert after == expected
    assert 'PyYAML==5.4 ; python_version >= "3.8"' in after
    assert "requests[socks]==2.32.0" in after and "gunicorn>=20.1" in after


def test_comments_and_the_service_survive(outcome: Outcome) -> None:
    for path in sorted(APP_FILES):
        before = _comments(path, outcome.before_tree[path][0])
        after = _comments(path, outcome.after_tree[path][0])
        assert before, path
        assert after == before, path
    before_docs = outcome.before_tree["k8s/deployment.yaml"][0].split(b"\n---\n")
    after_docs = outcome.after_tree["k8s/deployment.yaml"][0].split(b"\n---\n")
    assert len(before_docs) == len(after_docs) == 2
    assert after_docs[1] == before_docs[1]  # the Service, byte for byte
    assert b"kind: Service" in after_docs[1]
    # Edits add lines; of the old lines, only the ones holding a changed value go.
    for path, gone in (
        ("k8s/deployment.yaml", ["            privileged: true  # TODO remove"]),
        ("Dockerfile", ["ADD settings.ini /srv/settings.ini"]),
    ):
        old_lines = outcome.before_tree[path][0].decode().splitlines()
        new_lines = outcome.after_tree[path][0].decode().splitlines()
        removed = [ln[2:] for ln in difflib.ndiff(old_lines, new_lines) if ln.startswith("- ")]
        assert removed == gone, (path, removed)


def test_a_second_fix_changes_nothing(outcome: Outcome) -> None:
    assert outcome.second["run"] is None, outcome.second["status"]
    assert outcome.second["status"] == "nothing_to_do"
    assert outcome.tree_after_second == outcome.after_tree


def test_the_cli_plans_the_same_fixes_without_touching_anything(
    tmp_path: Path, outcome: Outcome
) -> None:
    """`jupiter advisories import` + `jupiter fix --dry-run --json`, as the
    shop's README shows them, on a fresh copy (no scanner reports)."""
    copy = tmp_path / "shop"
    shutil.copytree(SHOP, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    home = tmp_path / "home"
    imported = run_cli("advisories", "import", str(ADVISORIES), "--json", home=home)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["packages"] == 6
    proc = run_cli("fix", str(copy), "--asset", ASSET, "--dry-run", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    preview = json.loads(proc.stdout)
    assert preview["status"] == "dry_run" and preview["run"] is None
    planned = {
        (s["remediator"], s["rule_id"]) for s in preview["steps"] if s["status"] == "planned"
    }
    assert {r for r, _ in planned} >= APP_REMEDIATORS
    # Without Bandit's report, every SQL sink is one of Jupiter's own findings.
    assert {rule for r, rule in planned if r == "sql-injection-python"} == {
        "PY-SQLI-001",
        "PY-SQLI-002",
    }
    manual = [s for s in preview["steps"] if s["status"] == "needs_manual"]
    assert any("{column}" in (s["needs_manual"] or "") for s in manual), manual
    assert _tree(copy) == outcome.before_tree


def test_rollback_restores_the_tree_byte_for_byte(outcome: Outcome) -> None:
    # Last in the module: it changes the tree the other tests describe.
    run = outcome.result["run"]
    assert run is not None
    rolled = outcome.engine.rollback(run)
    assert rolled["verified"] and rolled["full"] and not rolled["mismatches"]
    assert _tree(outcome.copy) == outcome.before_tree
    assert _run_app_tests(outcome.copy).returncode == 0
