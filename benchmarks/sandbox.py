"""What the custom-script sandbox costs per run.

Times, ``--runs`` times each (median and worst, milliseconds):

* ``bare``: the script run directly (``/bin/sh script``), no wrapper;
* ``wrapper_unconfined``: the wrapper with limits and scrubbed environment
  but no bubblewrap (what ``sandbox: none`` does on a host without bwrap);
* ``sandboxed``: the full sandbox as a fix run uses it (bubblewrap, switch to
  ``nobody``, one declared file staged and copied back);
* ``probe``: the host check made once per host before planning.

Prints one JSON object on stdout. Needs bwrap, and root to switch users.

    .venv/bin/python benchmarks/sandbox.py --runs 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SANDBOX = [sys.executable, "-I", "-m", "jupiter.custom.sandbox"]
SCRIPT = '#!/bin/sh\necho fixed > "$1"\n'


def _time(
    argv: list[str], cwd: Path, runs: int, env: dict[str, str] | None = None
) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True, timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    if shutil.which("bwrap") is None:
        sys.exit("bubblewrap (bwrap) is not installed; run scripts/services.sh")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "target"
        root.mkdir()
        (root / "out.txt").write_text("before\n")
        script = Path(tmp) / "fix.sh"
        script.write_text(SCRIPT)
        script.chmod(0o755)
        common = ["--script", str(script), "--script-name", "fix.sh"]
        result = {
            "benchmark": "custom_script_sandbox",
            "runs": runs,
            "python": platform.python_version(),
            "bwrap": subprocess.run(
                ["bwrap", "--version"], capture_output=True, text=True, check=True
            ).stdout.strip(),
            "euid": os.geteuid(),
            "bare": _time(["/bin/sh", str(script), "out.txt"], root, runs),
            "wrapper_unconfined": _time(
                [*SANDBOX, *common, "--allow-unconfined", "--bwrap", "no-bwrap", "--", "out.txt"],
                root,
                runs,
            ),
            "sandboxed": _time(
                [*SANDBOX, *common, "--write", "out.txt", "--", "out.txt"], root, runs
            ),
            "probe": _time([*SANDBOX, "--probe"], root, runs),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
