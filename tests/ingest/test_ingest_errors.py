"""Unhappy paths: every bad report is an InputError naming the file and the place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.ingest import detect_format, parse_report

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scanners"


def _error(path: Path, fmt: str = "auto") -> str:
    with pytest.raises(InputError) as info:
        list(parse_report(path, fmt))
    message = str(info.value)
    assert str(path) in message
    assert "Traceback" not in message and "orjson" not in message
    return message


def test_truncated_sarif_names_line_column_and_byte(tmp_path: Path) -> None:
    data = (FIXTURES / "codeql.sarif").read_bytes()
    path = tmp_path / "cut.sarif"
    path.write_bytes(data[: len(data) // 2])
    message = _error(path)  # still detected as SARIF from its head
    assert "invalid JSON at line" in message and "column" in message
    assert "(byte " in message and "truncated" in message


def test_malformed_json_points_at_the_bad_character(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"SchemaVersion": 2,\n  "Results": [,]}')
    message = _error(path)
    assert "line 2, column 15" in message and "(byte 35)" in message


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(InputError, match=r"matches none of the known formats.*--format"):
        detect_format(path)
    # Semgrep's own JSON is real scanner output that Jupiter reads as SARIF only.
    with pytest.raises(InputError, match=r"semgrep\.json"):
        detect_format(FIXTURES / "semgrep.json")


@pytest.mark.parametrize("content", [b"", b"   \n", b"<xml/>", b"key: value\n"])
def test_non_json_is_refused_by_detection(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=str(path)):
        list(parse_report(path))


def test_unknown_format_name_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown report format 'xml'"):
        parse_report(FIXTURES / "seed.json", "xml")
    missing = tmp_path / "nope.sarif"
    with pytest.raises(InputError, match=r"nope\.sarif: cannot read"):
        detect_format(missing)
    with pytest.raises(InputError, match=r"nope\.sarif: cannot read"):
        list(parse_report(missing, "sarif"))


def test_invalid_cvss_vector_names_the_result(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "osv-scanner.json").read_text())
    vuln = doc["results"][0]["packages"][2]["vulnerabilities"][0]
    vuln["severity"][0]["score"] = "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
    path = tmp_path / "osv.json"
    path.write_text(json.dumps(doc))
    message = _error(path)
    assert "results[0].packages[2].vulnerabilities[0].severity[0].score" in message
    assert "invalid CVSS vector" in message


def test_invalid_cvss_vector_in_trivy(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "trivy.json").read_text())
    doc["Results"][0]["Vulnerabilities"][1]["CVSS"]["ghsa"]["V3Vector"] = "CVSS:3.1/AV:N"
    path = tmp_path / "trivy.json"
    path.write_text(json.dumps(doc))
    assert "Results[0].Vulnerabilities[1].CVSS.ghsa.V3Vector" in _error(path)


@pytest.mark.parametrize("value", ["12.5", "-1", "severe"])
def test_security_severity_out_of_range(tmp_path: Path, value: str) -> None:
    doc = json.loads((FIXTURES / "codeql.sarif").read_text())
    doc["runs"][0]["results"][2]["properties"] = {"security-severity": value}
    path = tmp_path / "codeql.sarif"
    path.write_text(json.dumps(doc))
    assert "runs[0].results[2].properties.security-severity" in _error(path)


def test_trivy_score_out_of_range(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "trivy.json").read_text())
    doc["Results"][0]["Vulnerabilities"][0]["CVSS"] = {"nvd": {"V3Score": 10.5}}
    path = tmp_path / "trivy.json"
    path.write_text(json.dumps(doc))
    assert "outside 0.0-10.0" in _error(path)


@pytest.mark.parametrize(
    ("fixture", "fmt", "mutate", "where"),
    [
        ("codeql.sarif", "sarif", lambda d: d.pop("runs"), "top level"),
        ("codeql.sarif", "sarif", lambda d: d["runs"][0].update(results={}), "runs[0].results"),
        ("codeql.sarif", "sarif", lambda d: d["runs"][0]["results"][1].update(level="fatal"),
         "runs[0].results[1].level"),
        ("codeql.sarif", "sarif",
         lambda d: d["runs"][0]["results"][0]["rule"].update(toolComponent={"index": 4}),
         "runs[0].results[0].rule.toolComponent.index"),
        ("bandit.sarif", "sarif", lambda d: d["runs"][0]["results"][3].update(ruleIndex=9),
         "runs[0].results[3].ruleIndex"),
        ("bandit.json", "bandit", lambda d: d["results"][1].update(line_number="x"),
         "results[1].line_number"),
        ("bandit.json", "bandit", lambda d: d["results"][0].update(issue_severity="SEVERE"),
         "results[0].issue_severity"),
        ("bandit.json", "bandit", lambda d: d.update(generated_at="today"), "generated_at"),
        ("checkov.json", "checkov", lambda d: d[1]["results"].update(failed_checks={}),
         "[1].results.failed_checks"),
        ("pip-audit.json", "pip-audit", lambda d: d["dependencies"][2].pop("version"),
         "dependencies[2].version"),
        ("trivy.json", "trivy", lambda d: d["Results"][2]["Misconfigurations"][0].pop("ID"),
         "Results[2].Misconfigurations[0].ID"),
        ("osv-scanner.json", "osv", lambda d: d["results"][0]["packages"][1].pop("package"),
         "results[0].packages[1].package"),
    ],
)  # fmt: skip
def test_wrong_shape_names_the_field(
    tmp_path: Path, fixture: str, fmt: str, mutate, where: str
) -> None:
    doc = json.loads((FIXTURES / fixture).read_text())
    mutate(doc)
    path = tmp_path / fixture
    path.write_text(json.dumps(doc))
    message = _error(path, fmt)
    assert f": {where}: " in message, message
    assert message.endswith(".") and message.count("\n") == 0


def test_forcing_the_wrong_format_is_an_input_error() -> None:
    message = _error(FIXTURES / "bandit.json", "trivy")
    assert "Trivy" in message
    message = _error(FIXTURES / "trivy.json", "sarif")
    assert "'runs'" in message
