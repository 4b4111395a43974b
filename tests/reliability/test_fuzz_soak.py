"""``make soak``: coverage-guided fuzzing (atheris) of each parser for a
small time budget, in a subprocess; see ``fuzz_parsers.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.reliability.counts import count
from tests.reliability.test_fuzz_inputs import CONFIGS

TARGETS = ["ingest-sarif", "ingest-json", *dict.fromkeys(c[0] for c in CONFIGS)]
BUDGET = 20  # seconds per target


@pytest.mark.soak
@pytest.mark.parametrize("target", TARGETS)
def test_atheris_finds_no_crash(target: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tests.reliability.fuzz_parsers", target, str(BUDGET)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=BUDGET + 120,
    )
    count("atheris targets fuzzed")
    assert res.returncode == 0, res.stderr[-3000:]
