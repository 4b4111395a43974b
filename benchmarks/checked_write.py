"""What the lost-update protection and the target lock cost.

Times, on a LocalTarget in a temp dir:

* a plain atomic write (temp file, fsync, rename, directory fsync) of a
  ``--kb`` KiB file, the baseline;
* the same write with an expectation (descriptor pinned, hashed before,
  lease probe and re-hash after the rename);
* taking and releasing the target lock (lease row in a SQLite workspace +
  ``flock`` on the root), the fixed cost per run.

Prints one JSON object. Target: a checked write within 2x of a plain one.

    .venv/bin/python benchmarks/checked_write.py --writes 200 --kb 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

from jupiter.locks import Holder, TargetLock
from jupiter.store.db import Database
from jupiter.targets.base import Expected
from jupiter.targets.local import LocalTarget


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--kb", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        target = LocalTarget(root)
        payloads = [bytes([65 + i % 26]) * (args.kb * 1024) for i in range(2)]
        (root / "f").write_bytes(payloads[0])
        plain: list[float] = []
        checked: list[float] = []
        for i in range(args.writes):
            data = payloads[(i + 1) % 2]
            start = time.perf_counter()
            target.write_bytes("f", data)
            plain.append(time.perf_counter() - start)
        for i in range(args.writes):
            current, data = payloads[i % 2], payloads[(i + 1) % 2]
            expect = Expected(hashlib.sha256(current).hexdigest())
            start = time.perf_counter()
            target.write_bytes("f", data, expect=expect)
            checked.append(time.perf_counter() - start)
        db = Database(f"sqlite:///{tmp}/ws.db")
        db.migrate()
        locking: list[float] = []
        for _ in range(max(args.writes // 4, 10)):
            start = time.perf_counter()
            with TargetLock(db, target, Holder.current("bench", "bench")):
                pass
            locking.append(time.perf_counter() - start)
        db.dispose()
    result = {
        "benchmark": "checked_write",
        "writes": args.writes,
        "kb": args.kb,
        "plain_write_ms": _median_ms(plain),
        "checked_write_ms": _median_ms(checked),
        "checked_over_plain": round(statistics.median(checked) / statistics.median(plain), 2),
        "lock_acquire_release_ms": _median_ms(locking),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
