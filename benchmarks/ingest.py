"""Ingest benchmark: a generated N-result SARIF file, end to end.

Measures, each in a fresh subprocess (so peak memory is that step's alone):
  * ``json.load`` of the file — the floor any ingest must pay;
  * parse only (``parse_report``);
  * ``jupiter ingest`` end to end through the engine into a fresh SQLite
    workspace (parse, dedup, bulk insert, audit) — first ingest and a
    re-ingest of the same file (every finding already known).

Prints one JSON object. Targets (issue #2): 100k findings end to end under
10 s, and (issue 13) within 3x of ``json.load`` alone; CPU seconds are
reported too, for the ratio on a machine other work shares.

    python benchmarks/ingest.py [--results 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_data import write_sarif  # noqa: E402

STEPS = {
    "json_load": """
import json, sys
with open(sys.argv[1], "rb") as fh:
    json.load(fh)
""",
    "parse_only": """
import sys
from pathlib import Path
from jupiter.ingest import parse_report
n = sum(1 for _ in parse_report(Path(sys.argv[1]), "sarif"))
print(n, file=sys.stderr)
""",
    "ingest": """
import sys
from pathlib import Path
from jupiter.engine import Engine
from jupiter.workspace import Workspace
home = Path(sys.argv[2])
eng = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="bench")
eng.db  # migrate outside the timed part
import time
t, c = time.perf_counter(), time.process_time()
report = eng.ingest([Path(sys.argv[1])], asset="bench-asset")
took, cpu = time.perf_counter() - t, time.process_time() - c
print(took, cpu, report.stats.new, report.stats.seen_again, file=sys.stderr)
""",
    # The same through PostgreSQL (COPY into staging tables), into a fresh
    # schema dropped afterwards.
    "ingest_postgres": """
import sys, time, uuid
from pathlib import Path
import psycopg
from jupiter.engine import Engine
from jupiter.workspace import Workspace
url = sys.argv[3]
dsn = url.replace("postgresql+psycopg://", "postgresql://")
schema = "bench_" + uuid.uuid4().hex[:10]
with psycopg.connect(dsn, autocommit=True) as conn:
    conn.execute(f'CREATE SCHEMA "{schema}"')
try:
    sep = "&" if "?" in url else "?"
    eng = Engine(Workspace(Path(sys.argv[2]), f"{url}{sep}options=-csearch_path%3D{schema}"),
                 actor="bench")
    eng.db
    # The time spent writing new findings and sources (COPY + INSERT … SELECT).
    from jupiter.store.finding_writer import FindingWriter
    spent = [0.0]
    def timed(f):
        def wrapper(*args):
            t = time.perf_counter()
            try:
                return f(*args)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapper
    FindingWriter._insert_returning = timed(FindingWriter._insert_returning)
    FindingWriter._insert_sources = timed(FindingWriter._insert_sources)
    t, c = time.perf_counter(), time.process_time()
    report = eng.ingest([Path(sys.argv[1])], asset="bench-asset")
    took, cpu = time.perf_counter() - t, time.process_time() - c
    print("WRITE", spent[0], file=sys.stderr)
    print(took, cpu, report.stats.new, report.stats.seen_again, file=sys.stderr)
    eng.close()
finally:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
""",
}

# Peak memory from VmHWM: ru_maxrss would keep the peak of the forking
# benchmark process (which generated the report in memory).
_RUNNER = """
import re, sys, time
code = sys.argv.pop(1)
t, c = time.perf_counter(), time.process_time()
exec(compile(code, "<step>", "exec"))
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
with open("/proc/self/status") as fh:
    peak_kib = int(re.search(r"VmHWM:\\s+(\\d+)", fh.read()).group(1))
print(f"RESULT {elapsed} {peak_kib} {cpu}")
"""


def run_step(name: str, *args: str, env: dict[str, str] | None = None) -> dict[str, float | str]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, STEPS[name], *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    _, elapsed, peak, cpu = line.split()
    out: dict[str, float | str] = {
        "seconds": round(float(elapsed), 3),
        "cpu_seconds": round(float(cpu), 3),
        "peak_rss_mib": round(int(peak) / 1024, 1),
    }
    write = [x for x in proc.stderr.splitlines() if x.startswith("WRITE ")]
    if write:
        out["write_seconds"] = round(float(write[-1].split()[1]), 3)
    if name.startswith("ingest"):
        inner, inner_cpu, new, seen = proc.stderr.split()[-4:]
        out["ingest_seconds"] = round(float(inner), 3)
        out["ingest_cpu_seconds"] = round(float(inner_cpu), 3)
        out["new"], out["seen_again"] = float(new), float(seen)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "JUPITER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL for the COPY ingest step ('' to skip it)",
    )
    parser.add_argument("--only-ingest", action="store_true", help="skip the parse-only steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-") as tmp:
        report = Path(tmp) / "report.sarif"
        t = time.perf_counter()
        write_sarif(report, args.results)
        generate = time.perf_counter() - t
        size_mib = report.stat().st_size / 2**20
        home = Path(tmp) / "ws"
        load = run_step("json_load", str(report))
        parse = streamed = load
        if not args.only_ingest:
            parse = run_step("parse_only", str(report))
            # The streaming path large reports take (forced here by a 1-byte threshold).
            streamed = run_step("parse_only", str(report), env={"JUPITER_STREAM_BYTES": "1"})
        first = run_step("ingest", str(report), str(home))
        again = run_step("ingest", str(report), str(home))
        pg = None
        if args.pg_url:
            pg = run_step("ingest_postgres", str(report), str(Path(tmp) / "pg"), args.pg_url)
    n = args.results
    result = {
        "benchmark": "ingest",
        "results": n,
        "file_mib": round(size_mib, 1),
        "generate_seconds": round(generate, 3),
        "json_load": load,
        "parse_only": parse,
        "parse_streamed": streamed,
        "ingest_first": first,
        "ingest_again": again,
        "findings_per_second": round(n / float(first["ingest_seconds"])),
        "ratio_ingest_to_json_load": round(
            float(first["ingest_seconds"]) / float(load["seconds"]), 2
        ),
        # CPU time: what the ratio is when other work shares the machine.
        "cpu_ratio_ingest_to_json_load": round(
            float(first["ingest_cpu_seconds"]) / float(load["cpu_seconds"]), 2
        ),
        "ratio_parse_to_json_load": round(float(parse["seconds"]) / float(load["seconds"]), 2),
        "targets": {
            "ingest_seconds_max": 10.0,
            "ratio_to_json_load_max": 3.0,
            "postgres_findings_per_second_min": 50_000,
        },
    }
    if pg is not None:
        result["ingest_postgres"] = pg
        result["postgres_findings_per_second"] = round(n / float(pg["ingest_seconds"]))
        result["postgres_findings_per_cpu_second"] = round(n / float(pg["ingest_cpu_seconds"]))
        # The database's part alone: new findings and their sources written.
        result["postgres_write_findings_per_second"] = round(n / float(pg["write_seconds"]))
    result["meets_targets"] = (
        float(first["ingest_seconds"]) <= 10.0 and result["ratio_ingest_to_json_load"] <= 3.0
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
