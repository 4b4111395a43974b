"""Audit checkpoints and sealed snapshot blobs: what they cost.

In one SQLite workspace in a temp dir, appends ``--entries`` audit entries
(default 100,000), then times

* ``checkpoint``: ``Engine.audit_checkpoint`` (walk + verify the chain,
  sign, write the file with every entry hash) and the file's size,
* ``verify_plain`` / ``verify_checkpoint``: ``audit verify`` without and with
  the checkpoint (parse, check the signature, compare every entry),

and, for sealing, captures and restores ``--secret-mib`` MiB (default 64) of
0600 files once plain (mode 0644) and once sealed (mode 0600).

Prints one JSON object on stdout.

    .venv/bin/python benchmarks/audit_keys.py --entries 100000 --secret-mib 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from jupiter import audit
from jupiter.engine import Engine
from jupiter.snapshots import BlobStore, capture, restore
from jupiter.targets.local import LocalTarget


def _timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - start, out


def bench_checkpoint(base: Path, entries: int) -> dict[str, object]:
    home = base / "ws"
    with Engine.open(home=home, database_url=f"sqlite:///{home / 'jupiter.db'}") as engine:
        with engine.db.transaction() as s:
            for i in range(entries):
                audit.record(s, "bench", "bench.event", f"thing:{i}", {"i": i, "note": "x" * 40})
        cp_s, done = _timed(lambda: engine.audit_checkpoint(base))
        path = done.files[-1]  # type: ignore[attr-defined]
        plain_s, plain = _timed(engine.audit_verify)
        check_s, checked = _timed(lambda: engine.audit_verify(path))
        assert plain.ok and checked.ok  # type: ignore[attr-defined]
        return {
            "entries": entries,
            "checkpoint_s": round(cp_s, 3),
            "checkpoint_bytes": path.stat().st_size,
            "bytes_per_entry": round(path.stat().st_size / entries, 1),
            "verify_plain_s": round(plain_s, 3),
            "verify_checkpoint_s": round(check_s, 3),
        }


def bench_sealing(base: Path, mib: int) -> dict[str, object]:
    out: dict[str, object] = {"mib": mib}
    for label, mode in (("sealed", 0o600), ("plain", 0o644)):
        root = base / f"root-{label}"
        root.mkdir()
        names = []
        for i in range(mib):
            path = root / f"f{i:04d}"
            path.write_bytes(os.urandom(1 << 20))
            path.chmod(mode)
            names.append(path.name)
        blobs = BlobStore(base / f"home-{label}" / "blobs")
        target = LocalTarget(root)
        os.sync()  # don't charge the capture's final sync for writing the inputs
        cap_s, entries = _timed(lambda: capture(target, names, blobs))  # noqa: B023
        for name in names:
            (root / name).write_bytes(b"changed")
        res_s, _ = _timed(lambda: restore(target, entries, blobs))  # noqa: B023
        out[f"{label}_capture_mib_s"] = round(mib / cap_s, 1)
        out[f"{label}_restore_mib_s"] = round(mib / res_s, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--secret-mib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-") as tmp:
        base = Path(tmp)
        result = {
            "benchmark": "audit_keys",
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "checkpoint": bench_checkpoint(base, args.entries),
            "sealing": bench_sealing(base, args.secret_mib),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
