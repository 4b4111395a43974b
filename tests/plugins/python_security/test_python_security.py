"""python-security: Bandit's findings fixed in real code, proven by running
the code and Bandit itself, with nothing over-fixed."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from jupiter.catalog import load_catalog
from jupiter.engine import Engine
from jupiter.plugins.python_security.detect import scan
from jupiter.plugins.python_security.fix import PythonSecurity
from jupiter.plugins.registry import load_registry
from jupiter.targets.local import LocalTarget
from tests.conftest import FIXTURES
from tests.tools import tool

APP = FIXTURES / "pyapp"
FIXABLE = {
    "B113", "B501", "B506", "B323", "B201", "B602", "B605", "B324", "B311", "B306",
    "B701", "B307", "B614", "B202", "B314", "B318", "B405", "B408",
}  # fmt: skip


def bandit(root: Path) -> list[tuple[str, str, int]]:
    out = subprocess.run(
        [str(tool("bandit", "bandit")), "-q", "-r", "-f", "json", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    results = json.loads(out.stdout)["results"]
    return sorted(
        (str(Path(r["filename"]).relative_to(root)), r["test_id"], r["line_number"])
        for r in results
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(tmp_path: Path) -> Path:
    dst = tmp_path / "pyapp"
    shutil.copytree(APP, dst)
    return dst


@pytest.fixture
def with_bandit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPITER_BANDIT", str(tool("bandit", "bandit")))


@pytest.fixture
def http_server() -> Iterator[str]:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("root", [APP, FIXTURES / "pysamples"], ids=["pyapp", "samples"])
def test_detector_reports_what_bandit_reports(root: Path) -> None:
    """Same rule ids on the same lines as Bandit, for every rule Jupiter fixes."""
    ours = sorted(
        (str(p.relative_to(root)), h.rule_id, h.line)
        for p in root.rglob("*.py")
        for h in scan(str(p), p.read_text())
    )
    theirs = [r for r in bandit(root) if r[1] in FIXABLE]
    assert sorted(set(ours)) == sorted(set(theirs))


@pytest.mark.usefixtures("with_bandit")
def test_fix_the_app_prove_it_with_bandit_and_by_running_it(
    sqlite_engine: Engine, app: Path, http_server: str
) -> None:
    original = tree(app)
    result = sqlite_engine.fix(str(app))
    assert result["status"] == "succeeded", result
    steps = {(s["rule_id"], s["status"]) for s in result["steps"]}
    manual = {s["rule_id"]: s["detail"] for s in result["steps"] if s["status"] == "needs_manual"}
    # nothing over-fixed: the dice roll, the password hash, the built command
    assert set(manual) == {"B311", "B324", "B602"}
    assert "dice" in manual["B311"] and "left as is" in manual["B311"]
    assert "argon2" in manual["B324"]
    assert "list [program, arg, ...]" in manual["B602"]
    assert ("B113", "verified") in steps and ("B501", "verified") in steps
    for step in result["steps"]:
        if step["status"] == "verified":
            checks = {v["validator"]: v["status"] for v in step["validations"]}
            assert checks == {"compile": "passed", "bandit": "passed"}, step

    # Bandit after: only what a person must decide, plus the expected
    # transitions of shell=True -> argv (B603/B607 are information)
    after = {(f, r) for f, r, _ in bandit(app)}
    assert after == {
        ("app/ops.py", "B404"),
        ("app/ops.py", "B603"),
        ("app/ops.py", "B607"),
        ("app/ops.py", "B602"),
        ("app/tokens.py", "B311"),
        ("app/tokens.py", "B324"),
    }
    assert (app / "requirements.txt").read_text().endswith("jinja2>=3.1\ndefusedxml>=0.7.1\n")
    client = (app / "app/client.py").read_text()
    assert '        verify=True,  # "temporary", since 2019\n        timeout=30,\n' in client

    # the code still does its job, and now safely
    tokens = load(app / "app/tokens.py", "pyapp_tokens")
    token = tokens.make_reset_token()
    assert len(token) == 32 and set(token) <= set(tokens.ALPHABET)
    assert tokens.etag(b"body") == hashlib.md5(b"body").hexdigest()
    assert 1 <= tokens.roll_dice() <= 6
    client_mod = load(app / "app/client.py", "pyapp_client")
    assert client_mod.fetch(http_server) == "hello"
    assert client_mod.load_config("a: 1") == {"a": 1}
    import yaml

    with pytest.raises(yaml.YAMLError):
        client_mod.load_config("!!python/object/apply:os.getcwd []")
    importer = load(app / "app/importer.py", "pyapp_importer")
    assert importer.item_names('<r><item name="a"/><item name="b"/></r>') == ["a", "b"]
    import defusedxml

    bomb = '<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><r>&b;</r>'
    with pytest.raises(defusedxml.DefusedXmlException):
        importer.item_names(bomb)
    pages = load(app / "app/pages.py", "pyapp_pages")
    assert pages.hello("<b>") == "<p>Hello &lt;b&gt;</p>"
    assert pages.LIMITS == {"page": 50, "burst": 5}
    ops = load(app / "app/ops.py", "pyapp_ops")
    scratch = Path(ops.scratch_file())
    assert scratch.read_text() == "scratch\n" and scratch.stat().st_mode & 0o777 == 0o600
    scratch.unlink()
    ops.greet()

    # a second run changes nothing; rollback restores byte for byte
    fixed = tree(app)
    again = sqlite_engine.fix(str(app))
    assert again["run"] is None and tree(app) == fixed
    assert {s["status"] for s in again["steps"]} == {"needs_manual"}
    sqlite_engine.rollback(result["run"])
    assert tree(app) == original


@pytest.mark.usefixtures("with_bandit")
def test_findings_from_a_bandit_report_are_fixed(sqlite_engine: Engine, app: Path) -> None:
    """Bandit reports B501 on the keyword's line, not the call's: the ingested
    finding is still the one fixed and verified."""
    report = app.parent / "bandit.json"
    subprocess.run(
        [str(tool("bandit", "bandit")), "-q", "-r", "-f", "json", "-o", str(report), str(app)],
        timeout=120,
        check=False,
    )
    sqlite_engine.ingest([report], asset="pyapp")
    by_rule = {
        (f["rule_id"], f["location"]["start_line"]): f for f in sqlite_engine.list_findings()
    }
    assert by_rule[("B501", 17)]["category"] == "code.tls_verify"
    sqlite_engine.fix(str(app), asset="pyapp")
    statuses = {
        (f["rule_id"], f["location"]["start_line"]): f["status"]
        for f in sqlite_engine.list_findings()
    }
    assert statuses[("B501", 17)] == "verified"
    assert statuses[("B113", 9)] == "verified"
    assert statuses[("B311", 16)] != "verified"  # the dice roll is left alone


def test_hardcoded_password_is_never_printed(sqlite_engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "settings.py").write_text('DB_PASSWORD = "hunter2-correct-horse"\n')
    report = tmp_path / "bandit.json"
    subprocess.run(
        [str(tool("bandit", "bandit")), "-q", "-r", "-f", "json", "-o", str(report), str(root)],
        timeout=120,
        check=False,
    )
    sqlite_engine.ingest([report], asset="svc")
    result = sqlite_engine.fix(str(root), asset="svc")
    (step,) = [s for s in result["steps"] if s["rule_id"] == "B105"]
    assert step["status"] == "needs_manual"
    assert "environment variable" in step["detail"] and "rotate" in step["detail"]
    assert "hunter2" not in step["detail"] and "hunter2" not in json.dumps(step.get("plan", {}))


def test_bad_modules_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "py2.py").write_text('print "hello"\n')
    (root / "latin1.py").write_bytes(b"# caf\xe9\nimport requests\n")
    (root / "ok.py").write_text("import requests\n\nrequests.get('http://x')\n")
    findings, problems = PythonSecurity().survey(LocalTarget(root))
    assert [(f.location.path, f.rule_id) for f in findings] == [("ok.py", "B113")]
    assert any(p.startswith("py2.py:1: Python that does not parse") for p in problems)
    assert any("latin1.py is not UTF-8 text" in p for p in problems)


def test_catalog_answers_most_of_bandit_and_the_remediators_handle_it() -> None:
    catalog = load_catalog()
    coverage = catalog.coverage("bandit")
    assert coverage["rule_ids"] >= 45, coverage
    handled = set().union(*(p.rule_ids for p in load_registry()))
    for entry in catalog.select("python"):
        for rid in entry.checks.get("bandit", []) + entry.checks.get("jupiter", []):
            assert rid in handled, f"{entry.id}: no remediator handles {rid}"
        if entry.fix_class == "needs_manual":
            assert entry.decision and len(entry.decision) > 30


def test_what_bandit_does_not_check(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Django's DEBUG, cookie flags (risk), unverified JWTs and CSRF
    exemptions (needs a person): Jupiter's own rules."""
    root = tmp_path / "pyweb"
    shutil.copytree(FIXTURES / "pyweb", root)
    result = sqlite_engine.fix(str(root))
    status = {s["rule_id"]: s for s in result["steps"]}
    assert status["PY-DJANGO-DEBUG"]["status"] == "verified"
    assert status["PY-COOKIE-FLAGS"]["status"] == "verified"
    assert any("plain http" in w for w in status["PY-COOKIE-FLAGS"]["risk"]["warnings"])
    assert status["PY-JWT-NO-VERIFY"]["status"] == "needs_manual"
    assert "algorithms" in status["PY-JWT-NO-VERIFY"]["detail"]
    assert status["PY-CSRF-EXEMPT"]["status"] == "needs_manual"
    views = (root / "shop/views.py").read_text()
    assert 'set_cookie("session", "abc123", secure=True, httponly=True, samesite="Lax")' in views
    settings = root / "shop/settings.py"
    assert 'DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"  # set by the template' in (
        settings.read_text()
    )
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    assert load(settings, "pyweb_settings_off").DEBUG is False
    monkeypatch.setenv("DJANGO_DEBUG", "1")
    assert load(settings, "pyweb_settings_on").DEBUG is True
