"""Severity, CVSS, CWE and category rules shared by the parsers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.ingest import detect_format, parse_report
from jupiter.ingest.common import (
    cvss_base,
    cwe_ids,
    report_path,
    score,
    severity_from_score,
    severity_word,
)
from jupiter.models import Category, Severity
from jupiter.plugins.domains import category_for

HERE = Path("report.json")
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(9.0, Severity.CRITICAL), (8.9, Severity.HIGH), (7.0, Severity.HIGH),
     (6.9, Severity.MEDIUM), (4.0, Severity.MEDIUM), (3.9, Severity.LOW), (0.1, Severity.LOW),
     (0.0, Severity.INFO)],
)  # fmt: skip
def test_severity_from_score_uses_cvss_bands(value: float, expected: Severity) -> None:
    assert severity_from_score(value) is expected


def test_severity_words() -> None:
    assert severity_word("MODERATE") is Severity.MEDIUM
    assert severity_word("error") is Severity.HIGH
    assert severity_word("note") is Severity.LOW
    assert severity_word("none") is Severity.INFO
    assert severity_word("UNDEFINED") is None and severity_word(None) is None


def test_cvss_vectors_of_every_version() -> None:
    v31 = cvss_base(HERE, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "x")
    assert v31 == ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)
    v4 = cvss_base(HERE, "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "x")
    assert v4[1] == 9.3
    assert cvss_base(HERE, "AV:N/AC:L/Au:N/C:P/I:P/A:P", "x")[1] == 7.5
    with pytest.raises(InputError, match=r"report\.json: vulns\[3\]\.cvss: invalid CVSS vector"):
        cvss_base(HERE, "CVSS:3.1/AV:N/AC:L", "vulns[3].cvss")
    with pytest.raises(InputError, match="invalid CVSS vector"):
        cvss_base(HERE, "CVSS:4.0/AV:N", "x")


def test_score_validation() -> None:
    assert score(HERE, "8.8", "x") == 8.8 and score(HERE, None, "x") is None
    with pytest.raises(InputError, match=r"outside 0\.0-10\.0"):
        score(HERE, 10.1, "x")
    with pytest.raises(InputError, match="expected a score"):
        score(HERE, [1], "x")


def test_cwe_normalisation() -> None:
    assert cwe_ids([89, "CWE-89: Improper Neutralization", "external/cwe/cwe-089", "security",
                    "CWE-022", "79"]) == ["CWE-89", "CWE-22", "CWE-79"]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "cwes", "text", "expected"),
    [
        ("B608", [], "", Category.CODE_SQL_INJECTION),
        ("python.lang.security.audit.formatted-query", ["CWE-89"], "", Category.CODE_SQL_INJECTION),
        ("custom.sqli-rule", [], "", Category.CODE_SQL_INJECTION),
        ("x", [], "Possible SQL injection vector", Category.CODE_SQL_INJECTION),
        ("CKV_K8S_16", [], "", Category.IAC_KUBERNETES),
        ("CKV2_K8S_6", [], "", Category.IAC_KUBERNETES),
        ("KSV017", [], "", Category.IAC_KUBERNETES),
        ("AVD-KSV-0017", [], "", Category.IAC_KUBERNETES),
        ("CKV_DOCKER_3", [], "", Category.IAC_DOCKER),
        ("DS002", [], "", Category.IAC_DOCKER),
        ("B103", [], "", Category.PERMISSIONS),
        ("x", ["CWE-732"], "", Category.PERMISSIONS),
        ("sshd-permit-root-login", [], "", Category.CONFIG_SSH),
        ("x", [], "PermitRootLogin enabled in sshd_config", Category.CONFIG_SSH),
        ("x", [], "pg_hba.conf trusts all hosts", Category.CONFIG_DATABASE),
        ("x", [], "nftables policy accepts everything", Category.CONFIG_FIREWALL),
        ("B201", ["CWE-94"], "Flask debug", "code.debug"),
        ("DSA-1234", [], "", Category.OTHER),
    ],
)  # fmt: skip
def test_category_mapping(rule: str, cwes: list[str], text: str, expected: str) -> None:
    assert category_for(rule, cwes, text) == expected


def test_report_path() -> None:
    assert report_path("file:///src/app/x.py") == "/src/app/x.py"
    assert report_path("./app/x.py") == "app/x.py"


def test_detection_prefers_structure_over_quoted_keys(tmp_path: Path) -> None:
    # A Bandit report whose code snippet quotes a seed key is still Bandit.
    doc = json.loads((ROOT / "tests/fixtures/scanners/bandit.json").read_text())
    doc["results"][0]["code"] = '14 x = {"vulnerability_id": 1, "check_type": 2}\n'
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    assert detect_format(path) == "bandit"
    assert len(list(parse_report(path))) == 4


def _bench_module():
    spec = importlib.util.spec_from_file_location("ingest_data", ROOT / "benchmarks/ingest_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ingest_data"] = module
    spec.loader.exec_module(module)
    return module


def test_benchmark_generator_writes_parseable_varied_sarif(tmp_path: Path) -> None:
    path = tmp_path / "bench.sarif"
    _bench_module().write_sarif(path, 500)
    assert detect_format(path) == "sarif"
    records = list(parse_report(path))
    assert len(records) == 500
    assert len({r.rule_id for r in records}) >= 6
    assert len({r.severity for r in records}) >= 3
    assert len({r.location.path for r in records}) > 100
    assert {r.category for r in records} >= {
        Category.CODE_SQL_INJECTION,
        Category.IAC_KUBERNETES,
        Category.IAC_DOCKER,
        Category.OTHER,
    }
    assert all(r.location.path and not r.location.path.startswith("/") for r in records)


def test_collector_state_is_restored_after_full_early_and_failed_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from jupiter.ingest import common

    monkeypatch.setattr(common, "FREEZE_EVERY", 100)
    path = tmp_path / "bench.sarif"
    _bench_module().write_sarif(path, 450)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert len(list(parse_report(path))) == 450
    assert gc.isenabled() and gc.get_freeze_count() == 0

    records = parse_report(path)
    for _, _record in zip(range(250), records, strict=False):
        pass
    assert gc.get_freeze_count() > 0  # frozen while the parse is under way
    records.close()  # a caller that stops early
    assert gc.isenabled() and gc.get_freeze_count() == 0

    broken = tmp_path / "broken.sarif"
    broken.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError):
        list(parse_report(broken))
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_benchmark_results_are_distinct_issues(tmp_path: Path) -> None:
    path = tmp_path / "bench.sarif"
    _bench_module().write_sarif(path, 20_000)  # more results than distinct paths (19,600)
    keys = {r.issue_key() for r in parse_report(path)}
    assert len(keys) == 20_000
