"""Snapshot benchmark: capture/re-capture/restore of a file tree against ``cp -a``.

Builds a tree of ``--files`` files totalling about ``--mb`` MB (varied sizes,
nested directories, a few duplicate contents) in a temp dir, then times

* ``cp -a`` of the tree (a subprocess; the baseline),
* a first snapshot of every file (``capture_tree``; includes the final sync
  that makes the blobs durable, which ``cp -a`` does not do),
* a second snapshot of the unchanged tree (stat cache + dedup),
* a full restore into an empty directory (includes the blob re-hash check),
* ``verify_restored`` of the restored tree.

Prints one JSON object on stdout. Targets: snapshot/cp <= 1.5, resnapshot/cp < 0.1.

    .venv/bin/python benchmarks/snapshot.py --files 10000 --mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from jupiter.snapshots import BlobStore, ManifestEntry, capture_tree, restore, verify_restored
from jupiter.targets.local import LocalTarget


def build_tree(root: Path, files: int, total_bytes: int, seed: int = 1234) -> int:
    """Write ``files`` files of varied sizes summing to about ``total_bytes``."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 1.5) for _ in range(files)]
    scale = total_bytes / sum(weights)
    pool = os.urandom(min(total_bytes, 64 << 20) + (1 << 20))
    written = 0
    for i, weight in enumerate(weights):
        size = max(0, int(weight * scale))
        directory = root / f"d{i % 20:02d}" / f"s{(i // 20) % 25:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        if i % 97 == 0:
            data = b"duplicate content shared by several files\n"
        else:
            # Unique content: a random slice of the pool plus the index.
            start = rng.randrange(0, max(1, len(pool) - size))
            data = i.to_bytes(8, "big") + pool[start : start + size]
        path = directory / f"f{i:05d}.dat"
        path.write_bytes(data)
        path.chmod(rng.choice((0o644, 0o600, 0o755, 0o640)))
        written += len(data)
    return written


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def settle() -> None:
    os.sync()
    time.sleep(1.0)


def one_round(
    target: LocalTarget, src: Path, copy: Path, blob_dir: Path
) -> tuple[float, float, float, float, BlobStore, list[ManifestEntry]]:
    """cp -a (+ sync), then a first and a second snapshot into a fresh store.

    Before each timed step the disk is settled (sync + a pause), so neither
    side pays for the other's writeback or deletions.
    """
    settle()
    cp_s, _ = timed(lambda: subprocess.run(["cp", "-a", str(src), str(copy)], check=True))
    sync_s, _ = timed(os.sync)
    shutil.rmtree(copy)
    settle()
    blobs = BlobStore(blob_dir)
    snap_s, entries = timed(lambda: capture_tree(target, blobs))
    resnap_s, again = timed(lambda: capture_tree(target, blobs))
    assert entries == again
    return cp_s, sync_s, snap_s, resnap_s, blobs, entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: tmp)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="jupiter-snapbench-", dir=args.dir))
    try:
        src = work / "tree"
        src.mkdir()
        build_s, total = timed(lambda: build_tree(src, args.files, int(args.mb * (1 << 20))))
        os.sync()
        # Let the racy-timestamp window (2 s) pass, as it would for any real
        # tree that was not written in the last seconds.
        time.sleep(2.1)

        target = LocalTarget(src)
        cp_runs: list[float] = []
        sync_runs: list[float] = []
        snap_runs: list[float] = []
        resnap_runs: list[float] = []
        entries: list[ManifestEntry] = []
        # The machine is shared and its disk latency swings a lot: interleave
        # baseline and snapshot in each round and report medians.
        blobs = BlobStore(work / "blobs-unused")
        for _round in range(args.repeat):
            shutil.rmtree(blobs.directory)
            cp_s, sync_s, snap_s, resnap_s, blobs, entries = one_round(
                target, src, work / f"cp-copy{_round}", work / f"blobs{_round}"
            )
            cp_runs.append(cp_s)
            sync_runs.append(sync_s)
            snap_runs.append(snap_s)
            resnap_runs.append(resnap_s)
        cp_s = statistics.median(cp_runs)
        snap_s = statistics.median(snap_runs)
        resnap_s = statistics.median(resnap_runs)

        dest = work / "restored"
        dest.mkdir()
        restored = LocalTarget(dest)
        settle()
        restore_s, _ = timed(lambda: restore(restored, entries, blobs))
        verify_s, bad = timed(lambda: verify_restored(restored, entries))
        if bad:
            print(f"verify_restored found {len(bad)} mismatches", file=sys.stderr)
            return 1
        blob_count = sum(  # plain blobs, and sealed ones (the tree's 0600 files)
            1
            for top in (blobs.directory, blobs.directory / "sealed")
            if top.is_dir()
            for d in top.iterdir()
            if len(d.name) == 2
            for _ in d.iterdir()
        )
        print(
            json.dumps(
                {
                    "files": args.files,
                    "bytes": total,
                    "blobs": blob_count,
                    "build_s": round(float(build_s), 3),
                    "rounds": args.repeat,
                    "cp_a_s": round(cp_s, 3),
                    "sync_after_cp_s": round(statistics.median(sync_runs), 3),
                    "snapshot_s": round(snap_s, 3),
                    "resnapshot_s": round(resnap_s, 3),
                    "restore_s": round(restore_s, 3),
                    "verify_s": round(verify_s, 3),
                    "snapshot_over_cp": round(snap_s / cp_s, 3),
                    "resnapshot_over_cp": round(resnap_s / cp_s, 3),
                    # Each round's own ratio: robust when the machine's load
                    # swings between rounds.
                    "median_round_snapshot_over_cp": round(
                        statistics.median(a / b for a, b in zip(snap_runs, cp_runs, strict=True)),
                        3,
                    ),
                    "median_round_resnapshot_over_cp": round(
                        statistics.median(a / b for a, b in zip(resnap_runs, cp_runs, strict=True)),
                        3,
                    ),
                    "snapshot_over_cp_plus_sync": round(
                        snap_s / (cp_s + statistics.median(sync_runs)), 3
                    ),
                    "runs": {
                        "cp_a_s": [round(x, 3) for x in cp_runs],
                        "sync_after_cp_s": [round(x, 3) for x in sync_runs],
                        "snapshot_s": [round(x, 3) for x in snap_runs],
                        "resnapshot_s": [round(x, 3) for x in resnap_runs],
                    },
                    "restore_over_cp": round(restore_s / cp_s, 3),
                }
            )
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
