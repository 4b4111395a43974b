"""Detection, mapping of external findings, plan shape and the needs_manual cases."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import NoParams
from jupiter.plugins.sql_injection.detect import RULE_DJANGO, RULE_EXECUTE, RULE_TEXT, scan_source
from jupiter.plugins.sql_injection.fix import SqlInjectionPython
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.plugins.sql_injection import harness

REM = SqlInjectionPython()
FIXTURES = harness.HERE


def _target(tmp_path: Path, files: dict[str, str]) -> LocalTarget:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return LocalTarget(tmp_path)


def _plan_only(tmp_path: Path, source: str) -> tuple[LocalTarget, list[FindingRecord]]:
    target = _target(tmp_path, {"app/db.py": source})
    return target, REM.detect(target)


def test_detect_sqlite_fixture() -> None:
    source = (FIXTURES / "sqlite_app.py").read_text()
    target = LocalTarget(FIXTURES)
    findings = [f for f in REM.detect(target) if f.location.path == "sqlite_app.py"]
    lines = source.splitlines()
    assert len(findings) == 14
    for f in findings:
        assert (f.rule_id, f.category, f.severity, f.cwe) == (
            RULE_EXECUTE,
            Category.CODE_SQL_INJECTION,
            Severity.HIGH,
            ["CWE-89"],
        )
        assert f.location.start_line is not None
        assert "execute" in lines[f.location.start_line - 1]
        assert f.evidence == lines[f.location.start_line - 1].strip()
    functions = {f.extra["function"] for f in findings}
    assert "by_name_safe" not in functions and "all_names" not in functions
    local = next(f for f in findings if f.extra["function"] == "by_name_local_variable")
    assert local.evidence == "cur.execute(query)"
    start, _ = local.extra["construction_lines"]
    assert lines[start - 1].strip().startswith("query = ")


def test_detect_django_and_sqlalchemy_rules() -> None:
    target = LocalTarget(FIXTURES)
    by_file: dict[str, list[str]] = {}
    for f in REM.detect(target):
        by_file.setdefault(f.location.path or "", []).append(f.rule_id)
    assert sorted(by_file["django_app.py"]) == [RULE_EXECUTE] * 2 + [RULE_DJANGO] * 2
    assert by_file["sqlalchemy_app.py"] == [RULE_TEXT] * 4
    assert by_file["psycopg_app.py"] == [RULE_EXECUTE] * 3
    assert "harness.py" not in by_file


def test_handles_own_bandit_and_semgrep_ids() -> None:
    def finding(rule: str, path: str = "a.py") -> FindingRecord:
        return FindingRecord(
            scanner="x",
            rule_id=rule,
            title="t",
            severity=Severity.HIGH,
            location=Location(path=path, start_line=3),
        )

    for rule in (
        RULE_EXECUTE,
        RULE_DJANGO,
        RULE_TEXT,
        "B608",
        "python.lang.security.audit.formatted-sql-query.formatted-sql-query",
        "python.django.security.injection.sql.sql-injection-using-db-cursor-execute",
        "python.sqlalchemy.security.sqlalchemy-sqli",
    ):
        assert REM.handles(finding(rule)), rule
    for rule in ("B602", "python.lang.security.audit.eval-detected", "sql-config"):
        assert not REM.handles(finding(rule)), rule
    assert not REM.handles(finding("B608", "schema.sql"))


def test_bandit_style_finding_on_construction_line(tmp_path: Path) -> None:
    target = harness.copy_fixture(tmp_path, "sqlite_app.py")
    source = target.read_bytes("sqlite_app.py").decode()
    assign_line = (
        source.splitlines().index(
            "    query = \"SELECT id, name FROM users WHERE name = '%s' ORDER BY id\" % name"
        )
        + 1
    )
    b608 = FindingRecord(
        scanner="bandit",
        rule_id="B608",
        title="SQL injection",
        severity=Severity.MEDIUM,
        location=Location(path="sqlite_app.py", start_line=assign_line),
    )
    assert not REM.is_fixed(b608, target, NoParams())
    plan = REM.plan(b608, target, NoParams())
    assert plan.needs_manual is None and len(plan.changes) == 1
    assert plan.diff.count("\n-") == 2  # the assignment and the call, nothing else
    assert "+    cur.execute(query, (name,))" in plan.diff
    harness.apply_plan(target, plan)
    assert REM.plan(b608, target, NoParams()).empty
    assert REM.is_fixed(b608, target, NoParams())
    # The same line number through the default issue-key check would not tell:
    # the detector reports the call's line, Bandit the string's.
    far = b608.model_copy(update={"location": Location(path="sqlite_app.py", start_line=1)})
    assert REM.plan(far, target, NoParams()).needs_manual is not None
    assert not REM.is_fixed(far, target, NoParams())


def test_plan_shape_validate_and_idempotence(tmp_path: Path) -> None:
    target = harness.copy_fixture(tmp_path, "psycopg_app.py")
    findings = REM.detect(target)
    first = REM.plan(findings[0], target, NoParams())
    assert first.plan_hash() == REM.plan(findings[0], target, NoParams()).plan_hash()
    (change,) = first.changes
    assert isinstance(change, WriteFile)
    before = target.read_bytes("psycopg_app.py")
    assert change.before_sha256 == sha256_bytes(before)
    assert first.diff == unified_diff("psycopg_app.py", before.decode(), change.content)
    assert first.risk.change_kind == "code" and first.rule_id == RULE_EXECUTE
    results = REM.validate(first, OverlayView(target, first))
    assert [(r.validator, r.status) for r in results] == [("python-compile", "passed")]
    broken = first.model_copy(
        update={
            "changes": [
                change.model_copy(
                    update={"content": change.content.replace("def by_name(", "def by_name((")}
                )
            ]
        }
    )
    assert REM.validate(broken, OverlayView(target, broken))[0].status == "failed"


def test_only_changed_nodes_differ(tmp_path_factory: pytest.TempPathFactory) -> None:
    original = (FIXTURES / "sqlite_app.py").read_text()
    spans = [
        (min(s.construction_lines[0], s.line), s.end_line)
        for s in scan_source("sqlite_app.py", original).sites
    ]
    run = harness.fixed_fixture(tmp_path_factory.mktemp, "sqlite_app.py")
    assert run.original == original
    old, new = original.splitlines(), run.fixed.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            assert any(lo <= i1 + 1 and i2 <= hi for lo, hi in spans), old[i1:i2]
    comments = [line.split("#", 1)[1] for line in old if "#" in line and "'" not in line]
    assert comments and all(any(c in line for line in new) for c in comments)
    assert len(run.applied) == 11


SQLITE = "import sqlite3\n"
MANUAL_CASES = [
    (
        "import psycopg, sqlite3\ndef f(cur, x):\n"
        "    cur.execute(\"SELECT 1 WHERE a = '%s'\" % x)\n",
        "ambiguous",
    ),
    (
        "def f(cur, x):\n    cur.execute(f\"SELECT 1 WHERE a = '{x}'\")\n",
        "placeholder style is unknown",
    ),
    (
        SQLITE + "def f(cur, x, y):\n"
        "    cur.execute(\"SELECT 1 WHERE a = '%s' AND b = ?\" % x, (y,))\n",
        "already passes a parameters",
    ),
    (
        SQLITE + "def f(cur, x):\n    q = \"SELECT 1 WHERE a = '%s'\" % x\n    print(q)\n"
        "    cur.execute(q)\n",
        "used elsewhere",
    ),
    (
        SQLITE + "def f(cur, x):\n    q = \"SELECT 1 WHERE a = '%s'\" % x\n    x = 'other'\n"
        "    cur.execute(q)\n",
        "reassigned",
    ),
    (
        SQLITE + "def f(cur, x):\n    q = 'SELECT 1'\n    if x:\n"
        "        q = \"SELECT 1 WHERE a = '%s'\" % x\n    cur.execute(q)\n",
        "assigned more than once",
    ),
    (
        SQLITE + "def f(cur, x):\n    cur.execute('SELECT 1 WHERE a = \"%s\"' % x)\n",
        "double quotes",
    ),
    (SQLITE + "def f(cur, x):\n    cur.execute(f\"SELECT 1 WHERE a = '{x!r}'\")\n", "conversion"),
    (SQLITE + "def f(cur, x):\n    cur.execute(\"SELECT 1 WHERE a = '%5s'\" % x)\n", "rendered"),
    (
        SQLITE + 'def f(cur, t):\n    cur.execute("SELECT * FROM " + t + " WHERE a = 1")\n',
        "allow-list",
    ),
    (SQLITE + 'def f(cur, c):\n    cur.execute(f"SELECT 1 FROM u WHERE {c} = 1")\n', "allow-list"),
    (
        SQLITE + "def f(cur, rows, t):\n"
        "    cur.executemany(\"INSERT INTO t VALUES ('%s', ?)\" % t, rows)\n",
        "executemany",
    ),
    (
        "from django.db import models\ndef f(M, x, y):\n"
        "    return M.objects.extra(where=[\"a = '%s'\" % x], params=[y])\n",
        "params=",
    ),
]


@pytest.mark.parametrize(("source", "reason"), MANUAL_CASES)
def test_needs_manual_cases(tmp_path: Path, source: str, reason: str) -> None:
    target, findings = _plan_only(tmp_path, source)
    assert len(findings) == 1
    plan = REM.plan(findings[0], target, NoParams())
    assert plan.empty and plan.needs_manual is not None
    assert reason in plan.needs_manual, plan.needs_manual
    assert plan.needs_manual.startswith("app/db.py line ")


def test_module_level_script_and_aliased_text(tmp_path: Path) -> None:
    source = (
        "import sqlalchemy as sa\nimport sqlite3\n\nconn = sqlite3.connect(':memory:')\n"
        "user = input()\n"
        "conn.execute(\"SELECT 1 WHERE 'a' = '%s'\" % user)  # script\n"
        "stmt = sa.text(f\"SELECT :x WHERE 'a' = '{user}'\")\n"
    )
    target, findings = _plan_only(tmp_path, source)
    assert [(f.rule_id, f.location.start_line) for f in findings] == [
        (RULE_EXECUTE, 6),
        (RULE_TEXT, 7),
    ]
    run = harness.fix_all(target, "app/db.py")
    assert "conn.execute(\"SELECT 1 WHERE 'a' = ?\", (user,))  # script" in run.fixed
    assert "sa.text(\"SELECT :x WHERE 'a' = :user\").bindparams(user=user)" in run.fixed


def test_bind_names_do_not_clash(tmp_path: Path) -> None:
    source = (
        "from sqlalchemy import text as t\n"
        "def f(conn, user, x):\n"
        "    return conn.execute(\n"
        "        t(\"SELECT :user WHERE a = '%s' AND b = '%s'\" % (user.name, x.name)))\n"
    )
    target, _ = _plan_only(tmp_path, source)
    run = harness.fix_all(target, "app/db.py")
    assert 'a = :name AND b = :name_2").bindparams(name=user.name, name_2=x.name)' in run.fixed


def test_unparsable_file_is_an_input_error(tmp_path: Path) -> None:
    broken = "import sqlite3\n\ndef f(:\n    cur.execute(x)\n"
    target = _target(tmp_path, {"pkg/broken.py": broken})
    with pytest.raises(InputError, match=r"pkg/broken\.py line 3"):
        REM.detect(target)
    finding = FindingRecord(
        scanner="bandit",
        rule_id="B608",
        title="t",
        severity=Severity.HIGH,
        location=Location(path="pkg/broken.py", start_line=4),
    )
    with pytest.raises(InputError, match=r"pkg/broken\.py line 3"):
        REM.plan(finding, target, NoParams())


def test_missing_file_and_fixed_site(tmp_path: Path) -> None:
    safe = "import sqlite3\ndef f(c, x):\n    c.execute('SELECT ?', (x,))\n"
    target = _target(tmp_path, {"a.py": safe})
    assert REM.detect(target) == []
    own = FindingRecord(
        scanner="jupiter-sqli",
        rule_id=RULE_EXECUTE,
        title="t",
        severity=Severity.HIGH,
        location=Location(path="a.py", start_line=3),
    )
    assert REM.plan(own, target, NoParams()).empty
    assert REM.plan(own, target, NoParams()).needs_manual is None
    gone = own.model_copy(update={"location": Location(path="b.py", start_line=3)})
    assert "does not exist" in (REM.plan(gone, target, NoParams()).needs_manual or "")
