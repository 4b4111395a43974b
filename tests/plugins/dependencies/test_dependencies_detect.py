"""Detection of vulnerable Python pins (requirements, pyproject, locks) against the OSV DB."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.advisories import AdvisoryDB
from jupiter.errors import InputError
from jupiter.models import Category, Severity
from jupiter.plugins.dependencies.fix import PythonDependencies
from jupiter.plugins.dependencies.parse import is_manifest, logical_lines, parse_requirements
from jupiter.targets.local import LocalTarget

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def advisories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("advisories")
    AdvisoryDB(directory).import_path(FIXTURES / "osv")
    return directory


def project(tmp_path: Path, name: str) -> LocalTarget:
    root = tmp_path / name
    shutil.copytree(FIXTURES / "deps" / name, root)
    return LocalTarget(root)


def keyed(findings: list) -> set[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    return {(f.location.path, f.location.package, f.location.version, f.rule_id) for f in findings}


def test_requirements_with_comments_extras_markers_and_includes(
    tmp_path: Path, advisories: Path
) -> None:
    view = project(tmp_path, "webapp")
    scan = PythonDependencies(advisories).scan(view)
    assert scan.errors == []
    found = keyed(scan.findings)
    assert found == {
        ("requirements.txt", "django", "3.2.0", "CVE-2021-28658"),
        ("requirements.txt", "django", "3.2.0", "CVE-2021-33203"),
        ("requirements.txt", "django", "3.2.0", "CVE-2021-35042"),
        ("requirements.txt", "jinja2", "3.1.2", "CVE-2024-22195"),
        ("requirements.txt", "jinja2", "3.1.2", "CVE-2024-34064"),
        ("requirements.txt", "jinja2", "3.1.2", "CVE-2024-56326"),
        ("requirements.txt", "requests", "2.25.1", "CVE-2023-32681"),
        ("requirements.txt", "requests", "2.25.1", "CVE-2024-35195"),
        ("requirements.txt", "urllib3", "1.26.5", "CVE-2023-43804"),
        ("requirements.txt", "urllib3", "1.26.5", "CVE-2023-45803"),
        ("requirements.txt", "urllib3", "1.26.5", "CVE-2024-37891"),
        # reached only through `-r common/base.txt` (the name is not requirements*.txt)
        ("common/base.txt", "pyyaml", "5.3.1", "CVE-2020-14343"),
        ("common/base.txt", "werkzeug", "2.2.2", "CVE-2023-25577"),
        ("common/base.txt", "werkzeug", "2.2.2", "CVE-2023-46136"),
        ("common/base.txt", "werkzeug", "2.2.2", "CVE-2024-34069"),
        ("requirements-dev.txt", "flask", "2.2.2", "CVE-2023-30861"),
    }
    sql = next(f for f in scan.findings if f.rule_id == "CVE-2021-35042")
    assert sql.category is Category.DEPENDENCY
    assert sql.severity is Severity.CRITICAL
    assert sql.cvss_score == 9.8
    assert sql.location.start_line == 5
    assert sql.aliases == ["GHSA-xpfp-f569-q3p2", "PYSEC-2021-111"]
    assert sql.fixed_versions == ["3.1.13", "3.2.5"]
    assert sql.evidence == "requirements.txt:5: Django[argon2]==3.2.0"
    assert sql.extra["advisory_id"] == "PYSEC-2021-111"
    jinja = next(f for f in scan.findings if f.rule_id == "CVE-2024-22195")
    assert jinja.extra["marker"] == 'python_version < "3.12"'
    assert jinja.location.start_line == 6
    # the same issue from two scanners gets one fingerprint: rule id is the canonical CVE
    assert sql.issue_key() == ("dep", "django", "3.2.0", "CVE-2021-35042")


def test_parse_requirements_pins_only_exact_versions() -> None:
    text = (
        "# comment only\n"
        "alpha===1.0-legacy\n"
        "beta[x,y]==2.0 ; sys_platform == 'linux'  # trailing comment\n"
        "gamma==1.*\n"
        "delta>=1,<2\n"
        "epsilon @ https://example.org/epsilon-1.0.tar.gz\n"
        "./local/pkg\n"
        "git+https://example.org/repo.git#egg=zeta\n"
        "eta==3.0 \\\n"
        "    --hash=sha256:0123abcd\n"
        "--pre\n"
        "-c constraints.txt\n"
        "-r sub/more.txt\n"
        "--requirement=../shared.txt\n"
    )
    pins, includes = parse_requirements(text, "app/requirements.txt")
    got = [(p.name, p.operator, p.version, p.line, p.end_line, p.hashed) for p in pins]
    assert got == [
        ("alpha", "===", "1.0-legacy", 2, 2, False),
        ("beta", "==", "2.0", 3, 3, False),
        ("eta", "==", "3.0", 9, 10, True),
    ]
    assert includes == ["app/sub/more.txt", "shared.txt"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("requests=2.25.1", "is not a valid requirement"),
        ("django==3.2 --frobnicate", "option --frobnicate is not allowed"),
        ("--no-such-option", "option --no-such-option is not allowed"),
        ("-r ../../etc/passwd", "leads outside the target"),
        ("flask==2.2.2 --hash=md5:abc", "is not ALGO:HEXDIGEST"),
        ("-r", "needs a value"),
    ],
)
def test_lines_pip_would_reject_name_file_and_line(line: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_requirements(f"ok==1.0\n\n{line}\n", "sub/requirements.txt")
    assert str(info.value).startswith("sub/requirements.txt:3:")
    assert words in str(info.value)


def test_logical_lines_join_continuations_but_not_after_comments() -> None:
    text = "a==1 \\\n  --hash=sha256:00\n# note \\\nb==2.\\\n0\nc==3 \\\n# end\n"
    assert logical_lines(text) == [
        (1, 2, "a==1   --hash=sha256:00"),
        (3, 3, "# note \\"),
        (4, 5, "b==2.0"),
        (6, 7, "c==3  # end"),
    ]


def test_invalid_line_is_reported_and_other_files_still_scanned(
    tmp_path: Path, advisories: Path
) -> None:
    view = project(tmp_path, "broken")
    scan = PythonDependencies(advisories).scan(view)
    assert [str(e).split(":")[:2] for e in scan.errors] == [["requirements.txt", "3"]]
    assert "'requests=2.25.1' is not a valid requirement" in str(scan.errors[0])
    assert {f.location.path for f in scan.findings} == {"requirements-dev.txt"}
    assert {f.location.package for f in scan.findings} == {"werkzeug"}


def test_missing_include_is_an_error_naming_the_including_file(
    tmp_path: Path, advisories: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("-r missing.txt\nflask==2.2.2\n")
    scan = PythonDependencies(advisories).scan(LocalTarget(tmp_path))
    assert len(scan.errors) == 1
    assert "requirements.txt includes missing.txt, which does not exist" in str(scan.errors[0])
    assert [f.rule_id for f in scan.findings] == ["CVE-2023-30861"]


def test_pyproject_pep621_poetry_and_locks(tmp_path: Path, advisories: Path) -> None:
    uv = PythonDependencies(advisories).scan(project(tmp_path, "uv"))
    assert uv.errors == []
    assert {
        (f.location.path, f.location.package, f.location.start_line, f.extra["manifest"])
        for f in uv.findings
    } == {
        ("pyproject.toml", "urllib3", 6, "pyproject"),
        ("pyproject.toml", "flask", 11, "pyproject"),
        ("uv.lock", "urllib3", 20, "uv.lock"),
        ("uv.lock", "flask", 5, "uv.lock"),
    }
    poetry = PythonDependencies(advisories).scan(project(tmp_path, "poetry"))
    assert poetry.errors == []
    # requests is a caret range in pyproject and 2.31.0 in the lock: only CVE-2024-35195
    assert keyed(poetry.findings) == {
        ("pyproject.toml", "jinja2", "3.1.2", "CVE-2024-22195"),
        ("pyproject.toml", "jinja2", "3.1.2", "CVE-2024-34064"),
        ("pyproject.toml", "jinja2", "3.1.2", "CVE-2024-56326"),
        ("poetry.lock", "jinja2", "3.1.2", "CVE-2024-22195"),
        ("poetry.lock", "jinja2", "3.1.2", "CVE-2024-34064"),
        ("poetry.lock", "jinja2", "3.1.2", "CVE-2024-56326"),
        ("poetry.lock", "requests", "2.31.0", "CVE-2024-35195"),
    }
    jinja = next(f for f in poetry.findings if f.location.path == "pyproject.toml")
    assert jinja.location.start_line == 10


def test_invalid_toml_is_reported_with_its_position(tmp_path: Path, advisories: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 'x'\n")
    (tmp_path / "requirements.txt").write_text("pyyaml==5.3.1\n")
    scan = PythonDependencies(advisories).scan(LocalTarget(tmp_path))
    assert len(scan.errors) == 1
    assert str(scan.errors[0]).startswith("pyproject.toml: not valid TOML")
    assert "line 1" in str(scan.errors[0])
    assert [f.rule_id for f in scan.findings] == ["CVE-2020-14343"]


def test_without_advisories_detect_is_empty_with_a_message(tmp_path: Path) -> None:
    view = project(tmp_path, "webapp")
    remediator = PythonDependencies(tmp_path / "no-db")
    assert remediator.detect(view) == []
    scan = remediator.scan(view)
    assert sorted(d.name for d in scan.dependencies) == [
        "django",
        "flask",
        "jinja2",
        "pytest",
        "pyyaml",
        "requests",
        "urllib3",
        "werkzeug",
    ]
    assert any("no advisories in" in note for note in scan.notes)


def test_advisories_dir_defaults_to_jupiter_home(
    tmp_path: Path, advisories: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(advisories, home / "advisories")
    monkeypatch.setenv("JUPITER_HOME", str(home))
    view = project(tmp_path, "webapp")
    assert len(PythonDependencies().detect(view)) == 16


def test_manifest_discovery_skips_virtualenvs() -> None:
    assert is_manifest("requirements.txt")
    assert is_manifest("services/api/requirements-prod.txt")
    assert is_manifest("requirements/base.txt")
    assert is_manifest("pyproject.toml") and is_manifest("sub/uv.lock")
    assert not is_manifest(".venv/lib/python3.11/site-packages/x/requirements.txt")
    assert not is_manifest("notes.txt")
    assert not is_manifest("node_modules/pkg/requirements.txt")
