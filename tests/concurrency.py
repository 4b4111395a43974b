"""Helpers for concurrency tests: an independent process that keeps
appending lines to a file (as an admin's script or `echo >>` would), and a
way to run Jupiter commands side by side."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

_APPENDER = r"""
import os, sys, time
path, stop, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
n = 0
while not os.path.exists(stop):
    n += 1
    # open, append, close: what `echo ... >> file` does
    with open(path, "a") as fh:
        fh.write(f"# appended line {n}\n")
    time.sleep(interval)
print(n)
"""


class Appender:
    """Appends ``# appended line N`` to ``path`` every ``interval`` seconds
    in another process until the context ends; ``count`` is how many."""

    def __init__(self, path: Path, interval: float = 0.003) -> None:
        self.path, self.interval = path, interval
        self._stop = path.parent / f".stop-appender-{time.monotonic_ns()}"
        self.count = 0

    def __enter__(self) -> Appender:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(self.path), str(self._stop), str(self.interval)],
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while b"# appended line 1\n" not in self.path.read_bytes():
            assert time.monotonic() < deadline, "the appender did not start"
            time.sleep(0.01)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.touch()
        out, _ = self._proc.communicate(timeout=30)
        self._stop.unlink()
        self.count = int(out.strip() or 0)

    def missing(self) -> list[int]:
        """Appended lines that are not (exactly once) in the file now."""
        text = self.path.read_text()
        return [n for n in range(1, self.count + 1) if text.count(f"# appended line {n}\n") != 1]
