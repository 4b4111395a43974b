"""What the outbox hook costs ``audit.record``.

In one SQLite workspace in a temp dir, times ``--entries`` audit entries
(default 5,000) appended in one transaction, best of ``--repeat`` rounds,
for three kinds of action:

* ``unmapped``: an action no event maps (``finding.status``), the common case
  the hook must keep cheap (one dict lookup);
* ``mapped_unrouted``: a mapped action (``run.failed``) with no channel
  configured;
* ``mapped_2_channels``: the same with two channels routed (one outbox row
  each, written in the same transaction).

Also times the hook alone for an unmapped action (``hook_unmapped_ns``),
the robust number on a shared machine, where whole ``record`` calls vary by
±30 % between runs. Prints one JSON object: microseconds per ``record`` call
for each kind. Run it with ``PYTHONPATH=<older checkout>/src`` for "before".

    .venv/bin/python benchmarks/outbox.py --entries 5000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from jupiter import audit
from jupiter.engine import Engine


def _time_records(engine: Engine, action: str, entries: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with engine.db.transaction() as s:
            start = time.perf_counter()
            for i in range(entries):
                audit.record(s, "bench", action, f"run:{i}", {"steps": {"verified": 1}, "i": i})
            best = min(best, time.perf_counter() - start)
    return round(best / entries * 1e6, 2)


def _routed(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "integrations.yaml").write_text(
        "channels:\n"
        "  a: {type: webhook, url: 'http://127.0.0.1:9/a'}\n"
        "  b: {type: webhook, url: 'http://127.0.0.1:9/b'}\n"
        "routes:\n"
        "  - {events: ['*'], channels: [a, b]}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, object] = {
        "benchmark": "outbox",
        "python": platform.python_version(),
        "entries": args.entries,
    }
    try:
        from jupiter.integrations.events import event_for

        data = {"steps": {"verified": 1}}
        n = 200_000
        start = time.perf_counter()
        for _ in range(n):
            event_for("finding.status", data)
        out["hook_unmapped_ns"] = round((time.perf_counter() - start) / n * 1e9, 1)
    except ImportError:  # the code before the outbox (for a before/after run)
        out["hook_unmapped_ns"] = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for label, action, routed in (
            ("unmapped_us", "finding.status", False),
            ("mapped_unrouted_us", "run.failed", False),
            ("mapped_2_channels_us", "run.failed", True),
        ):
            home = base / label
            if routed:
                _routed(home)
            with Engine.open(home=home, database_url=f"sqlite:///{home / 'j.db'}") as engine:
                engine.init()
                out[label] = _time_records(engine, action, args.entries, args.repeat)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
