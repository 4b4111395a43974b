"""REST API benchmark: the findings list under load.

Seeds a fresh SQLite workspace with N findings through the bulk ingest path
(a generated SARIF report, as benchmarks/ingest.py), starts `jupiter serve`
(a real uvicorn) on loopback, and has C concurrent clients (keep-alive
connections, one thread each) page through `GET /api/v1/findings?limit=100`
by cursor for a fixed number of requests. Prints one JSON object: p50/p90/p99
latency, requests per second, errors. Goal (issue 12): p99 under 50 ms for a
100-item page with 100k findings stored and 10 clients.

    python benchmarks/api.py [--findings 100000] [--clients 10] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_data import write_sarif  # noqa: E402

GOAL_P99_MS = 50.0


def seed(home: Path, n: int) -> tuple[str, float]:
    """N findings through Engine.ingest (the bulk insert path); a token."""
    from jupiter.engine import Engine
    from jupiter.workspace import Workspace

    report = home.parent / "report.sarif"
    write_sarif(report, n)
    eng = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="bench-admin")
    try:
        eng.init()
        eng.add_user("bench-viewer", ["viewer"])
        t = time.perf_counter()
        stats = eng.ingest([report], asset="bench-asset").stats
        took = time.perf_counter() - t
        assert stats.new == n, f"seeded {stats.new} findings, wanted {n}"
        token = eng.create_token("bench-viewer", label="bench")["token"]
    finally:
        eng.close()
    report.unlink()
    return str(token), took


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(home: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    code = "from jupiter.cli.app import main; main()"
    argv = [sys.executable, "-c", code, "--home", str(home), "serve"]
    argv += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"jupiter serve exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    proc.kill()
    raise RuntimeError("jupiter serve did not answer /healthz within 60 s")


def cpu_seconds(root: int) -> float:
    """User + system CPU time so far of a process and its children (the
    uvicorn workers), from /proc."""
    total, parents = 0.0, {root}
    stats = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats.append(stat.read_text().rsplit(")", 1)[1].split())
            stats[-1].insert(0, stat.parent.name)
        except OSError:
            continue
    changed = True
    while changed:
        changed = False
        for f in stats:
            if int(f[0]) not in parents and int(f[2]) in parents:
                parents.add(int(f[0]))
                changed = True
    for f in stats:
        if int(f[0]) in parents:
            total += (int(f[12]) + int(f[13])) / os.sysconf("SC_CLK_TCK")
    return total


def load(base: str, token: str, clients: int, total: int) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = total // clients
    start_gate = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        mine: list[float] = []
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            http.get("/api/v1/findings?limit=1")  # connect (and verify the token) untimed
            cursor: str | None = None
            start_gate.wait()
            for _ in range(per_client):
                params = {"limit": "100"}
                if cursor:
                    params["cursor"] = cursor
                t = time.perf_counter()
                resp = http.get("/api/v1/findings", params=params)
                mine.append(time.perf_counter() - t)
                if resp.status_code != 200:
                    with lock:
                        errors.append(f"{resp.status_code} {resp.text[:200]}")
                    continue
                page = resp.json()
                if len(page["items"]) != 100:
                    with lock:
                        errors.append(f"a page of {len(page['items'])} items")
                cursor = page["next_cursor"]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    return {
        "requests": len(ms),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_ms": round(q[49], 2),
        "p90_ms": round(q[89], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(ms[-1], 2),
        "requests_per_second": round(len(ms) / wall, 1),
        "seconds": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1, help="jupiter serve --workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-api-") as tmp:
        home = Path(tmp) / "ws"
        token, seed_seconds = seed(home, args.findings)
        port = free_port()
        proc = serve(home, port, args.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            # One client alone: a page's latency without queueing behind others.
            alone = load(base, token, 1, max(100, args.requests // 10))
            cpu0 = cpu_seconds(proc.pid)
            result = load(base, token, args.clients, args.requests)
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out = {
        "benchmark": "api",
        "findings": args.findings,
        "clients": args.clients,
        "workers": args.workers,
        "page_size": 100,
        "seed_seconds": round(seed_seconds, 2),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **result,
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, int(result["requests"])), 2),  # type: ignore[call-overload]
        "single_client": {k: alone[k] for k in ("p50_ms", "p99_ms", "requests_per_second")},
        "goal_p99_ms": GOAL_P99_MS,
    }
    out["meets_goal"] = bool(out["errors"] == 0 and float(result["p99_ms"]) < GOAL_P99_MS)  # type: ignore[arg-type]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
