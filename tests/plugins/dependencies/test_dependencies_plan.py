"""Remediator python-dependencies: version choice, edits, manual cases, three-step test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.advisories import Advisory, AdvisoryDB
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import Plan, WriteFile
from jupiter.plugins.dependencies.fix import PythonDependencies
from jupiter.plugins.dependencies.versions import bump_kind, choose_fix_version
from jupiter.plugins.registry import Registry
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PARAMS = PythonDependencies().parse_params(None)


@pytest.fixture(scope="module")
def advisories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("advisories")
    AdvisoryDB(directory).import_path(FIXTURES / "osv")
    return directory


def project(tmp_path: Path, name: str) -> LocalTarget:
    root = tmp_path / name
    shutil.copytree(FIXTURES / "deps" / name, root)
    return LocalTarget(root)


def apply(target: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        target.write_bytes(change.path, change.content.encode())


def finding_for(
    remediator: PythonDependencies, view: LocalTarget, package: str, rule_id: str | None = None
) -> FindingRecord:
    return next(
        f
        for f in remediator.detect(view)
        if f.location.package == package and (rule_id is None or f.rule_id == rule_id)
    )


def advisory(ident: str, *ranges: tuple[tuple[str, str], ...]) -> Advisory:
    fixed = tuple(v for r in ranges for k, v in r if k == "fixed")
    return Advisory(id=ident, ecosystem="PyPI", package="demo", ranges=ranges, fixed_versions=fixed)


def test_django_32_takes_the_lowest_fix_of_its_line_and_three_step(
    tmp_path: Path, advisories: Path
) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(advisories)
    original = (view.root / "requirements.txt").read_text()
    django = [f for f in remediator.detect(view) if f.location.package == "django"]
    assert len(django) == 3
    finding = next(f for f in django if f.rule_id == "CVE-2021-33203")
    plan = remediator.plan(finding, view, PARAMS)
    assert plan.needs_manual is None
    assert plan.title == "Upgrade django 3.2.0 -> 3.2.5 (fixes 3 advisories)"
    assert plan.risk.change_kind == "dependency_patch"
    assert plan.severity is Severity.CRITICAL  # the worst advisory fixed by the plan
    assert plan.related_findings == ["CVE-2021-28658", "CVE-2021-35042"]
    (change,) = plan.changes
    assert isinstance(change, WriteFile) and change.path == "requirements.txt"
    # only the version characters change: comment, extras, markers, order all kept
    expected = original.replace("Django[argon2]==3.2.0  # LTS", "Django[argon2]==3.2.5  # LTS")
    assert change.content == expected
    assert plan.diff.count("\n-") == 1 and "+Django[argon2]==3.2.5  # LTS line" in plan.diff
    candidate = OverlayView(view, plan)
    assert [r.status for r in remediator.validate(plan, candidate)] == ["passed"]
    # the candidate is already clean for django (detection verifies)
    assert not [f for f in remediator.detect(candidate) if f.location.package == "django"]
    assert not remediator.is_fixed(finding, view, PARAMS)
    apply(view, plan)
    assert not [f for f in remediator.detect(view) if f.location.package == "django"]
    for old in django:
        again = remediator.plan(old, view, PARAMS)
        assert again.empty and again.needs_manual is None
        assert remediator.is_fixed(old, view, PARAMS)
    assert (view.root / "requirements.txt").read_text() == expected


@pytest.mark.parametrize(
    ("package", "line", "kind"),
    [
        ("jinja2", 'jinja2==3.1.5 ; python_version < "3.12"\n', "dependency_patch"),
        (
            "urllib3",
            "urllib3==1.26.19    # transitive, pinned for reproducibility\n",
            "dependency_patch",
        ),
        ("requests", "requests == 2.32.0\n", "dependency_minor"),
        ("pyyaml", "PyYAML==5.4\n", "dependency_minor"),
        ("werkzeug", "Werkzeug==3.0.3\n", "dependency_major"),
    ],
)
def test_bump_target_and_classification(
    tmp_path: Path, advisories: Path, package: str, line: str, kind: str
) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(advisories)
    plan = remediator.plan(finding_for(remediator, view, package), view, PARAMS)
    assert plan.risk.change_kind == kind
    (change,) = plan.changes
    assert isinstance(change, WriteFile)
    assert line in change.content.splitlines(keepends=True)
    assert bool(plan.risk.warnings) == (kind == "dependency_major")


def test_fixing_every_package_leaves_detect_clean_and_comments_intact(
    tmp_path: Path, advisories: Path
) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(advisories)
    for _ in range(10):
        findings = remediator.detect(view)
        if not findings:
            break
        plan = remediator.plan(findings[0], view, PARAMS)
        assert plan.changes, plan
        apply(view, plan)
        assert remediator.plan(findings[0], view, PARAMS).empty
    assert remediator.detect(view) == []
    assert (view.root / "requirements.txt").read_text() == (
        "# Web application dependencies (pinned; reviewed 2024-05)\n"
        "--index-url https://pypi.org/simple\n"
        "-r common/base.txt\n"
        "\n"
        "Django[argon2]==3.2.5  # LTS line, keep on 3.2.x\n"
        'jinja2==3.1.5 ; python_version < "3.12"\n'
        "requests == 2.32.0\n"
        "urllib3==1.26.19    # transitive, pinned for reproducibility\n"
        "-e ./vendor/localpkg\n"
        "https://example.org/wheels/internal_tool-1.0-py3-none-any.whl\n"
        "gunicorn>=20.1\n"
    )
    assert (view.root / "common/base.txt").read_text() == (
        "# shared with the worker image\nPyYAML==5.4\nWerkzeug==3.0.3\n"
    )


def test_plan_is_pure_and_stable(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(advisories)
    finding = finding_for(remediator, view, "requests")
    before = (view.root / "requirements.txt").read_bytes()
    first, second = (remediator.plan(finding, view, PARAMS) for _ in range(2))
    assert first.plan_hash() == second.plan_hash()
    assert (view.root / "requirements.txt").read_bytes() == before


def test_choose_fix_version_rules() -> None:
    one = advisory(
        "A1", (("introduced", "0"), ("fixed", "3.2.1")), (("introduced", "4.0"), ("fixed", "5.0.1"))
    )
    two = advisory(
        "A2",
        (("introduced", "3.2"), ("fixed", "3.2.4")),
        (("introduced", "5.0"), ("fixed", "5.0.2")),
    )
    three = advisory(
        "A3",
        (("introduced", "3.0"), ("fixed", "3.2.5")),
        (("introduced", "5.0"), ("fixed", "5.0.3")),
    )
    assert choose_fix_version("3.2.0", [one, two, three]) == "3.2.5"
    assert choose_fix_version("3.2.0", [one]) == "3.2.1"
    # no fix on the 4.0 line of A1 except in 5.x: the lowest fix above
    assert choose_fix_version("4.1", [one]) == "5.0.1"
    # a version a *different* advisory affects is skipped (introduced in 3.2.5)
    later = advisory("A4", (("introduced", "3.2.5"), ("fixed", "3.2.7")))
    assert choose_fix_version("3.2.0", [one, two, three, later]) == "3.2.7"
    # pre-releases only for pre-release users
    rc = advisory(
        "A5",
        (("introduced", "0"), ("fixed", "2.0rc1")),
        (("introduced", "2.0rc2"), ("fixed", "2.0.1")),
    )
    assert choose_fix_version("1.0", [rc]) == "2.0.1"
    assert choose_fix_version("2.0b1", [rc]) == "2.0rc1"
    # last_affected with no later fix: nothing known to upgrade to
    open_ended = advisory("A6", (("introduced", "0"), ("last_affected", "9.9")))
    assert choose_fix_version("1.0", [open_ended]) is None
    # a scanner's bare fix list (no ranges): same line first, a later line only as a whole
    assert choose_fix_version("3.2.0", [], ["3.2.1", "4.0.5"]) == "3.2.1"
    assert choose_fix_version("3.3.0", [], ["3.2.1", "4.0.5"]) == "4.0.5"
    assert choose_fix_version("not-a-version", [one]) is None


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("3.2.0", "3.2.5", "dependency_patch"),
        ("3.2", "3.2.5", "dependency_patch"),
        ("2.25.1", "2.32.0", "dependency_minor"),
        ("5.3.1", "5.4", "dependency_minor"),
        ("2.2.2", "3.0.3", "dependency_major"),
        ("1!1.0", "1!1.0.1", "dependency_patch"),
    ],
)
def test_bump_kind(old: str, new: str, kind: str) -> None:
    assert bump_kind(old, new) == kind


def test_hash_pinned_requirement_needs_manual_refresh(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "hashed")
    remediator = PythonDependencies(advisories)
    finding = finding_for(remediator, view, "flask")
    assert finding.extra["hashed"] is True
    assert finding.location.start_line == 7 and finding.location.end_line == 9
    plan = remediator.plan(finding, view, PARAMS)
    assert plan.changes == []
    assert plan.needs_manual is not None and "hash" in plan.needs_manual
    (step,) = plan.risk.manual_steps
    assert "requirements.txt:7" in step
    assert "flask==2.2.5" in step and "pip-compile --generate-hashes" in step
    assert plan.risk.change_kind == "dependency_patch"


def test_poetry_lock_names_the_poetry_command(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "poetry")
    remediator = PythonDependencies(advisories)
    plan = remediator.plan(finding_for(remediator, view, "jinja2"), view, PARAMS)
    assert plan.changes == [] and plan.needs_manual
    edit, lock = plan.risk.manual_steps
    assert edit == "pyproject.toml:10: change jinja2 3.1.2 to 3.1.5"
    assert lock.startswith("poetry.lock") and "`poetry update jinja2`" in lock
    assert plan.rule_id == "CVE-2024-22195"
    assert plan.related_findings == ["CVE-2024-34064", "CVE-2024-56326"]
    # requests is only vulnerable in the lock (the pyproject range is not a pin)
    lock_only = remediator.plan(finding_for(remediator, view, "requests"), view, PARAMS)
    assert lock_only.needs_manual and "poetry update requests" in lock_only.risk.manual_steps[0]
    assert "2.32.0" in lock_only.risk.manual_steps[0]


def test_uv_lock_names_the_uv_command(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "uv")
    remediator = PythonDependencies(advisories)
    finding = finding_for(remediator, view, "urllib3")
    plan = remediator.plan(finding, view, PARAMS)
    assert plan.changes == [] and plan.needs_manual
    assert not remediator.is_fixed(finding, view, PARAMS)
    assert any("`uv lock --upgrade-package urllib3`" in s for s in plan.risk.manual_steps)


def test_pyproject_pins_are_edited_when_no_lock(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "uv")
    (view.root / "uv.lock").unlink()
    remediator = PythonDependencies(advisories)
    plan = remediator.plan(finding_for(remediator, view, "flask"), view, PARAMS)
    (change,) = plan.changes
    assert isinstance(change, WriteFile)
    assert "web = [\"Flask==2.2.5; python_version >= '3.11'\"]\n" in change.content
    assert [r.status for r in remediator.validate(plan, OverlayView(view, plan))] == ["passed"]
    apply(view, plan)
    assert {f.location.package for f in remediator.detect(view)} == {"urllib3"}

    poetry = project(tmp_path, "poetry")
    (poetry.root / "poetry.lock").unlink()
    plan = remediator.plan(finding_for(remediator, poetry, "jinja2"), poetry, PARAMS)
    (change,) = plan.changes
    assert isinstance(change, WriteFile)
    assert '# exact pin: Poetry reads a bare version as ==\njinja2 = "3.1.5"\n' in change.content
    apply(poetry, plan)
    assert remediator.detect(poetry) == []


def test_scanner_finding_with_own_fixed_versions(tmp_path: Path, advisories: Path) -> None:
    pip_audit = FindingRecord(
        scanner="pip-audit",
        rule_id="PYSEC-2023-74",
        category=Category.DEPENDENCY,
        title="requests 2.25.1 PYSEC-2023-74",
        severity=Severity.MEDIUM,
        aliases=["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
        location=Location(package="Requests", version="2.25.1"),
        fixed_versions=["2.31.0"],
    )
    view = project(tmp_path, "webapp")
    # no advisory database: the scanner's own fix list decides
    bare = PythonDependencies(tmp_path / "empty-db")
    assert bare.handles(pip_audit)
    plan = bare.plan(pip_audit, view, PARAMS)
    assert plan.risk.change_kind == "dependency_minor"
    assert "requests == 2.31.0\n" in plan.changes[0].content  # type: ignore[union-attr]
    # with the database, the other requests advisory is fixed at once
    full = PythonDependencies(advisories)
    plan = full.plan(pip_audit, view, PARAMS)
    assert "requests == 2.32.0\n" in plan.changes[0].content  # type: ignore[union-attr]
    assert plan.related_findings == ["CVE-2024-35195"]
    apply(view, plan)
    assert full.plan(pip_audit, view, PARAMS).empty


def test_scanner_finding_for_another_version_of_the_pin(tmp_path: Path) -> None:
    # pip-audit saw 2.25.1 installed; the file pins 2.26.0, short of the same fix
    (tmp_path / "requirements.txt").write_text("requests==2.26.0  # keep\n")
    view = LocalTarget(tmp_path)
    finding = FindingRecord(
        scanner="pip-audit",
        rule_id="GHSA-j8r2-6x86-q33q",
        category=Category.DEPENDENCY,
        title="requests",
        severity=Severity.MEDIUM,
        fixed_versions=["2.31.0"],
        location=Location(package="requests", version="2.25.1"),
    )
    remediator = PythonDependencies(tmp_path / "no-db")
    plan = remediator.plan(finding, view, PARAMS)
    assert plan.changes[0].content == "requests==2.31.0  # keep\n"  # type: ignore[union-attr]
    # the default issue-key check would call this fixed already (other version, no DB)
    assert not remediator.is_fixed(finding, view, PARAMS)
    apply(view, plan)
    assert remediator.plan(finding, view, PARAMS).empty
    assert remediator.is_fixed(finding, view, PARAMS)


def test_unpinned_package_and_foreign_findings(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(advisories)
    numpy = FindingRecord(
        scanner="trivy",
        rule_id="CVE-2021-41496",
        category=Category.DEPENDENCY,
        title="numpy",
        severity=Severity.MEDIUM,
        location=Location(package="numpy", version="1.21.0"),
        fixed_versions=["1.22.0"],
    )
    plan = remediator.plan(numpy, view, PARAMS)
    assert plan.needs_manual and "numpy is not pinned" in plan.needs_manual
    assert not remediator.is_fixed(numpy, view, PARAMS)
    npm = numpy.model_copy(update={"extra": {"ecosystem": "npm"}})
    assert not remediator.handles(npm)
    config = numpy.model_copy(update={"category": Category.CONFIG_SSH})
    assert not remediator.handles(config)


def test_registry_accepts_the_plugin_and_routes_dependency_findings() -> None:
    registry = Registry()
    plugin = PythonDependencies()
    registry.add(plugin)
    finding = FindingRecord(
        scanner="osv-scanner",
        rule_id="GHSA-xxxx",
        severity=Severity.LOW,
        category=Category.DEPENDENCY,
        title="t",
        location=Location(package="django", version="3.2.0"),
        extra={"ecosystem": "PyPI"},
    )
    assert registry.for_finding(finding) is plugin
    assert registry.get("python-dependencies") is plugin


def test_validate_rejects_a_broken_candidate(tmp_path: Path, advisories: Path) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(advisories)
    bad = Plan(
        remediator="python-dependencies",
        rule_id="X",
        title="x",
        changes=[WriteFile(path="requirements.txt", content="django=3.2.5\n", before_sha256=None)],
    )
    (result,) = remediator.validate(bad, OverlayView(view, bad))
    assert result.status == "failed"
    assert "requirements.txt:1" in result.detail
