"""Local fleets for end-to-end workflow tests: N copies of ``examples/host``,
one asset each in one group, each with its own loopback health server.

Use from a test::

    with running_fleet(tmp_path, 10, staging=1) as fleet:
        engine.import_assets(fleet.assets_file)
        target = fleet.prod[0]
        target.server.delay = 0.01                    # baseline latency
        target.server.when("etc/ssh/sshd_config", "PermitRootLogin no", status=500)
        ...                                           # deploy; this canary turns unhealthy

Each target's :class:`HealthServer` is a ``ThreadingHTTPServer`` on
127.0.0.1, port 0, in its own thread. ``GET /health`` answers ``status``
(200) after ``delay`` seconds plus up to ``jitter`` more; ``GET /metrics``
answers Prometheus text (``app_up``, ``app_requests_total``,
``app_errors_total``, ``app_error_ratio``, ``app_latency_seconds``, plus any
gauge a test puts in ``server.gauges``). A *rule* models "the change made
this target unhealthy": while the file ``path`` under the target root holds
``contains``, the server answers ``status`` instead, and/or becomes ``slow``
times slower. Rules are checked on every request, so they take effect the
moment the change lands and stop when it is rolled back.

Building is fast: ``examples/host`` is copied once into the fleet directory
and every target is a ``copytree`` of that copy (modes kept).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

EXAMPLE_HOST = Path(__file__).resolve().parent.parent / "examples" / "host"


@dataclass
class Rule:
    """While ``path`` (relative to the root) contains ``contains``: answer
    ``status`` (if set) and multiply the delay by ``slow``."""

    path: str
    contains: str
    slow: float = 1.0
    status: int | None = None

    def matches(self, root: Path) -> bool:
        try:
            text = (root / self.path).read_text(errors="replace")
        except OSError:
            return False
        return self.contains in text


class HealthServer:
    """A loopback HTTP health endpoint whose answers the test controls.

    Knobs (plain attributes, read on every request): ``status``, ``delay``,
    ``jitter`` (seconds, uniform extra), ``gauges`` (extra metrics).
    Counters: ``requests``, ``errors`` (non-2xx health answers).
    """

    def __init__(self, root: Path, name: str = "", *, delay: float = 0.0) -> None:
        self.root = Path(root)
        self.name = name or self.root.name
        self.status = 200
        self.delay = delay
        self.jitter = 0.0
        self.gauges: dict[str, float] = {}
        self.rules: list[Rule] = []
        self.requests = 0
        self.errors = 0
        self._count_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"health-{self.name}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    def when(
        self, path: str, contains: str, *, slow: float = 1.0, status: int | None = None
    ) -> Rule:
        """Add a rule (see :class:`Rule`); returns it so a test can drop it."""
        if slow < 1.0 and status is None:
            raise ValueError("a rule needs slow >= 1 or a status")
        rule = Rule(path, contains, slow, status)
        self.rules.append(rule)
        return rule

    def current(self) -> tuple[int, float]:
        """The status and delay a request made now would get."""
        status, factor = self.status, 1.0
        for rule in list(self.rules):
            if rule.matches(self.root):
                factor *= rule.slow
                if rule.status is not None:
                    status = rule.status
        delay = self.delay * factor
        if self.jitter > 0:
            delay += random.uniform(0.0, self.jitter) * factor
        return status, delay

    def answer_health(self) -> int:
        status, delay = self.current()
        if delay > 0:
            time.sleep(delay)
        with self._count_lock:
            self.requests += 1
            if not 200 <= status < 300:
                self.errors += 1
        return status

    def metrics_text(self) -> str:
        status, delay = self.current()
        with self._count_lock:
            requests, errors = self.requests, self.errors
        # A target that currently fails counts as failing everything now.
        ratio = 1.0 if not 200 <= status < 300 else (errors / requests if requests else 0.0)
        lines = [
            "# TYPE app_up gauge",
            f"app_up {1 if 200 <= status < 300 else 0}",
            "# TYPE app_requests_total counter",
            f'app_requests_total{{handler="health"}} {requests}',
            "# TYPE app_errors_total counter",
            f'app_errors_total{{handler="health"}} {errors}',
            "# TYPE app_error_ratio gauge",
            f"app_error_ratio {ratio:.6f}",
            "# TYPE app_latency_seconds gauge",
            f"app_latency_seconds {delay:.6f}",
        ]
        for name, value in sorted(self.gauges.items()):
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                status = server.answer_health()
                body = b"ok\n" if 200 <= status < 300 else b"unhealthy\n"
                ctype = "text/plain"
            elif path == "/metrics":
                status, body = 200, server.metrics_text().encode()
                ctype = "text/plain; version=0.0.4"
            else:
                status, body, ctype = 404, b"not found\n", "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@dataclass
class FleetTarget:
    """One copy of examples/host: an asset with its root and health server."""

    asset: str
    root: Path
    environment: str
    server: HealthServer | None = None

    @property
    def connection(self) -> str:
        return f"local:{self.root}"

    @property
    def live_root(self) -> Path:
        """Where the host files are: the root, or the live slot of a blue-green root."""
        current = self.root / "current"
        return current if current.is_symlink() else self.root

    def file(self, rel: str) -> Path:
        return self.live_root / rel

    def probes(self, kinds: tuple[str, ...] = ("http",)) -> list[dict[str, Any]]:
        if self.server is None:
            return []
        out: list[dict[str, Any]] = []
        if "http" in kinds:
            out.append({"kind": "http", "name": "health", "url": self.server.health_url})
        if "metric" in kinds:
            out.append(
                {
                    "kind": "metric",
                    "name": "errors",
                    "url": self.server.metrics_url,
                    "metric": "app_error_ratio",
                    "max": 0.05,
                }
            )
        return out


@dataclass
class Fleet:
    """A built fleet; :meth:`stop` stops every server (``running_fleet`` does)."""

    base: Path
    group: str
    targets: list[FleetTarget]
    assets_file: Path
    probe_kinds: tuple[str, ...] = ("http",)
    blue_green: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def prod(self) -> list[FleetTarget]:
        return [t for t in self.targets if t.environment == "prod"]

    @property
    def staging(self) -> list[FleetTarget]:
        return [t for t in self.targets if t.environment == "staging"]

    def target(self, asset: str) -> FleetTarget:
        for t in self.targets:
            if t.asset == asset:
                return t
        raise KeyError(asset)

    def servers(self) -> list[HealthServer]:
        return [t.server for t in self.targets if t.server is not None]

    def when(
        self, path: str, contains: str, *, slow: float = 1.0, status: int | None = None
    ) -> None:
        """Add the same rule to every target's server."""
        for server in self.servers():
            server.when(path, contains, slow=slow, status=status)

    def snapshot(self) -> dict[str, dict[str, bytes]]:
        """Every file of every target, for byte-for-byte comparisons."""
        return {t.asset: tree_bytes(t.root) for t in self.targets}

    def write_assets(self, path: Path | None = None, **extra: Any) -> Path:
        """(Re)write assets.yaml; ``extra`` keys go into every asset entry."""
        path = path or self.assets_file
        entries = []
        for t in self.targets:
            entry: dict[str, Any] = {
                "id": t.asset,
                "kind": "host",
                "environment": t.environment,
                "group": self.group,
                "connection": t.connection,
            }
            probes = t.probes(self.probe_kinds)
            if probes:
                entry["probes"] = probes
            if self.blue_green:
                entry["blue_green"] = {"link": "current", "slots": ["blue", "green"]}
            entry.update(extra)
            entries.append(entry)
        path.write_text(yaml.safe_dump({"assets": entries}, sort_keys=False))
        return path

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for server in self.servers():
            server.stop()


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every regular file below ``root``
    (symlinks are recorded as ``b"-> target"``; directories not descended through links)."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            p = base / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = b"-> " + os.readlink(p).encode()
            elif p.is_file():
                out[rel] = p.read_bytes()
    return out


def build_fleet(
    base: Path,
    count: int,
    *,
    group: str = "web-fleet",
    staging: int = 0,
    servers: bool = True,
    probe_kinds: tuple[str, ...] = ("http",),
    blue_green: bool = False,
    delay: float = 0.0,
    source: Path = EXAMPLE_HOST,
) -> Fleet:
    """Build ``count`` prod copies (``<group>-NN``) and ``staging`` staging
    copies (``<group>-staging-NN``) of ``source`` under ``base``, start a
    health server per target (unless ``servers=False``) and write
    ``base/assets.yaml``. With ``blue_green`` each root holds ``blue/`` (the
    host), an empty ``green/`` and ``current -> blue``."""
    base.mkdir(parents=True, exist_ok=True)
    template = base / "_template"
    if not template.exists():
        shutil.copytree(source, template, symlinks=True)
    width = max(2, len(str(max(count, staging))))
    names = [(f"{group}-{i:0{width}d}", "prod") for i in range(1, count + 1)]
    names += [(f"{group}-staging-{i:0{width}d}", "staging") for i in range(1, staging + 1)]
    fleet = Fleet(base, group, [], base / "assets.yaml", probe_kinds, blue_green)
    try:
        for asset, env in names:
            root = base / asset
            if blue_green:
                root.mkdir()
                shutil.copytree(template, root / "blue", symlinks=True)
                (root / "green").mkdir()
                os.symlink("blue", root / "current")
            else:
                shutil.copytree(template, root, symlinks=True)
            server = HealthServer(root, asset, delay=delay) if servers else None
            fleet.targets.append(FleetTarget(asset, root, env, server))
        fleet.write_assets()
    except BaseException:
        fleet.stop()
        raise
    return fleet


@contextlib.contextmanager
def running_fleet(base: Path, count: int, **options: Any) -> Iterator[Fleet]:
    """:func:`build_fleet`, stopping every server on the way out."""
    fleet = build_fleet(base, count, **options)
    try:
        yield fleet
    finally:
        fleet.stop()
