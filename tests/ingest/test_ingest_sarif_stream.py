"""Large SARIF reports stream with bounded memory and give the same records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, ROOT

from jupiter.errors import InputError
from jupiter.ingest import parse_report

sys.path.insert(0, str(ROOT / "benchmarks"))
from ingest_data import write_sarif


def _records(path: Path) -> list[dict[str, object]]:
    return [r.model_dump(mode="json") for r in parse_report(path, "sarif")]


def test_streamed_records_equal_in_memory_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "big.sarif"
    write_sarif(report, 3000)
    whole = _records(report)
    monkeypatch.setenv("JUPITER_STREAM_BYTES", "1")
    streamed = _records(report)
    assert len(streamed) == 3000
    assert streamed == whole
    seen: list[int] = []
    list(parse_report(report, "sarif", seen.append))
    assert seen and seen[-1] == report.stat().st_size


@pytest.mark.parametrize("name", ["bandit.sarif", "semgrep.sarif", "checkov.sarif"])
def test_real_reports_stream_identically(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = FIXTURES / "scanners" / name
    whole = _records(path)
    monkeypatch.setenv("JUPITER_STREAM_BYTES", "1")
    assert _records(path) == whole


def test_truncated_large_report_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "cut.sarif"
    write_sarif(report, 200)
    data = report.read_bytes()
    report.write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("JUPITER_STREAM_BYTES", "1")
    with pytest.raises(InputError, match=r"cut\.sarif: invalid JSON near byte"):
        _records(report)


def test_several_runs_fall_back_to_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = json.loads((FIXTURES / "scanners" / "bandit.sarif").read_text())
    two = json.loads((FIXTURES / "scanners" / "semgrep.sarif").read_text())
    one["runs"] += two["runs"]
    report = tmp_path / "two-runs.sarif"
    report.write_text(json.dumps(one))
    whole = _records(report)
    monkeypatch.setenv("JUPITER_STREAM_BYTES", "1")
    assert _records(report) == whole
    assert {r["scanner"] for r in whole} == {"bandit", "semgrep"}


def test_streaming_bounds_memory(tmp_path: Path) -> None:
    """Peak RSS of a streamed parse stays far below the in-memory one."""
    report = tmp_path / "big.sarif"
    write_sarif(report, 20_000)
    code = (
        "import re, sys; from pathlib import Path; "
        "from jupiter.ingest import parse_report; "
        "n = sum(1 for _ in parse_report(Path(sys.argv[1]), 'sarif')); "
        # VmHWM, not ru_maxrss: the latter keeps the forking pytest's peak.
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print(n, hwm)"
    )

    def peak(env: dict[str, str]) -> int:
        out = subprocess.run(
            [sys.executable, "-c", code, str(report)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", **env},
        ).stdout.split()
        assert out[0] == "20000"
        return int(out[1])

    in_memory = peak({})
    streamed = peak({"JUPITER_STREAM_BYTES": "1"})
    assert streamed < in_memory * 0.75, (streamed, in_memory)
