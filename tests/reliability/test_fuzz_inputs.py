"""Hostile or broken input, generated: every scanner report format and every
configuration file a remediator parses is mutated from a real sample
(hypothesis) and handed to the same entry point the product uses. The only
acceptable outcomes are a result or a JupiterError (one sentence, exit 2):
never another exception, never a write to the target.

Crashing inputs found are kept in ``tests/fixtures/fuzz/`` and replayed
first by :func:`test_saved_crashers_stay_fixed`. The coverage-guided variant
(atheris) is ``tests/reliability/fuzz_parsers.py``, run by ``make soak``.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupiter.errors import JupiterError
from jupiter.ingest import parse_report
from jupiter.plugins.registry import load_registry
from jupiter.targets.local import LocalTarget
from tests.conftest import ROOT
from tests.reliability.counts import count

FIXTURES = ROOT / "tests" / "fixtures"
SAVED = FIXTURES / "fuzz"
REPORTS = sorted((FIXTURES / "scanners").glob("*.json")) + sorted(
    (FIXTURES / "scanners").glob("*.sarif")
)
#: (remediator, path inside the target, real sample)
CONFIGS = [
    ("sshd-hardening", "etc/ssh/sshd_config", ROOT / "examples/host/etc/ssh/sshd_config"),
    (
        "postgresql-conf",
        "etc/postgresql/15/main/postgresql.conf",
        ROOT / "examples/host/etc/postgresql/15/main/postgresql.conf",
    ),
    (
        "pg-hba",
        "etc/postgresql/15/main/pg_hba.conf",
        ROOT / "examples/host/etc/postgresql/15/main/pg_hba.conf",
    ),
    ("nftables-firewall", "etc/nftables.conf", FIXTURES / "firewall/hand-written.nft"),
    ("dockerfile-hardening", "Dockerfile", ROOT / "examples/webapp/Dockerfile"),
    (
        "kubernetes-pod-security",
        "k8s/deployment.yaml",
        ROOT / "examples/webapp/k8s/deployment.yaml",
    ),
    ("python-dependencies", "requirements.txt", ROOT / "examples/webapp/requirements.txt"),
    ("python-dependencies", "pyproject.toml", FIXTURES / "deps/poetry/pyproject.toml"),
    ("python-dependencies", "poetry.lock", FIXTURES / "deps/poetry/poetry.lock"),
    ("python-dependencies", "uv.lock", FIXTURES / "deps/uv/uv.lock"),
]
TOKENS = [
    b"\x00",
    b"\xff",
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"'",
    b"\\",
    b"#",
    b"=",
    b":",
    b"-",
    b" ",
    b"\t",
    b"include ",
    b"Match ",
    b"${",
    b"<<",
    b"!!",
    b"&a",
    b"*a",
    b"9" * 30,
    b"-1",
    b"1e999",
    b"null",
    b"true",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xae",
]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few random edits: cuts, duplications, inserted tokens
    or bytes, truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "dup", "truncate", "bytes"]))
        if op == "insert":
            data[where:where] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[where : where + draw(st.integers(1, 40))]
        elif op == "dup":
            data[where:where] = data[where : where + draw(st.integers(1, 200))]
        elif op == "truncate":
            del data[where:]
        else:
            data[where:where] = draw(st.binary(max_size=8))
    return bytes(data)


def _ingest(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"report{suffix}"
        path.write_bytes(data)
        try:
            for _ in parse_report(path):
                pass
        except JupiterError:
            count("fuzz inputs refused with one sentence")
        count("fuzz trials")


def _detect(remediator: str, rel: str, data: bytes) -> None:
    plugin = load_registry().get(remediator)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_bytes(data)
        before = _tree(root)
        try:
            plugin.detect(LocalTarget(root), plugin.default_params())
        except JupiterError:
            count("fuzz inputs refused with one sentence")
        assert _tree(root) == before, "detection must never write to the target"
        count("fuzz trials")


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in root.rglob("*")
        if p.is_file()
    }


FAST = settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.name)
def test_mutated_scanner_reports(report: Path) -> None:
    @FAST
    @given(mutated(report.read_bytes()))
    def check(data: bytes) -> None:
        _ingest(data, report.suffix)

    check()


@pytest.mark.parametrize(("remediator", "rel", "sample"), CONFIGS, ids=lambda v: str(v)[-24:])
def test_mutated_config_files(remediator: str, rel: str, sample: Path) -> None:
    @FAST
    @given(mutated(sample.read_bytes()))
    def check(data: bytes) -> None:
        _detect(remediator, rel, data)

    check()


def test_saved_crashers_stay_fixed() -> None:
    """``tests/fixtures/fuzz/ingest/NAME.EXT`` is a report,
    ``tests/fixtures/fuzz/<remediator>/<path in the target>`` a config file."""
    assert (SAVED / "README.md").is_file()
    for crasher in sorted(p for p in SAVED.rglob("*") if p.is_file() and p.name != "README.md"):
        kind, _, rest = str(crasher.relative_to(SAVED)).partition("/")
        if kind == "ingest":
            _ingest(crasher.read_bytes(), crasher.suffix)
        else:
            _detect(kind, rest, crasher.read_bytes())


def _workspace_file(kind: str, data: bytes) -> None:
    """Assets YAML (``jupiter assets import``), OSV records (``jupiter
    advisories import``), workflow files and Rego policies: a result or one
    JupiterError; a refused advisory import leaves the database as it was."""
    from jupiter.advisories import AdvisoryDB
    from jupiter.engine import load_asset_file
    from jupiter.policy import PolicySet, Source
    from jupiter.workflows.loading import load_workflow_file

    names = {"assets": "assets.yaml", "osv": "GHSA-x.json", "workflow": "wf.yaml"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / names.get(kind, "policy.rego")
        path.write_bytes(data)
        try:
            if kind == "assets":
                load_asset_file(path)
            elif kind == "workflow":
                load_workflow_file(path)
            elif kind == "policy":
                text = data.decode("utf-8", errors="replace")
                PolicySet([Source("policy.rego", text)])  # a compile error is kept as .error
            else:
                db = Path(tmp) / "advisories"
                AdvisoryDB(db).import_path(path)
        except JupiterError:
            count("fuzz inputs refused with one sentence")
            if kind == "osv":
                assert not (Path(tmp) / "advisories" / "CURRENT").exists()
        count("fuzz trials")


@pytest.mark.parametrize(
    ("kind", "sample"),
    [
        ("assets", ROOT / "examples/assets.yaml"),
        ("osv", FIXTURES / "osv/GHSA-2g68-c3qc-8985.json"),
        ("workflow", ROOT / "src/jupiter/workflows/builtin/default.yaml"),
        ("policy", ROOT / "src/jupiter/policies/default.rego"),
    ],
)
def test_mutated_assets_osv_workflows_and_policies(kind: str, sample: Path) -> None:
    @FAST
    @given(mutated(sample.read_bytes()))
    def check(data: bytes) -> None:
        _workspace_file(kind, data)

    check()
