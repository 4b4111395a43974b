"""A loopback HTTP server whose answers a test controls: status, delay and
body per path, changeable while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    delay: float = 0.0
    body: str = "ok\n"
    content_type: str = "text/plain"


@dataclass
class Behaviour:
    routes: dict[str, Route] = field(default_factory=dict)
    hits: int = 0

    def route(self, path: str) -> Route:
        return self.routes.get(path) or self.routes.get("*") or Route()


@dataclass
class Running:
    url: str
    behaviour: Behaviour
    server: ThreadingHTTPServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def http_server(behaviour: Behaviour | None = None) -> Iterator[Running]:
    state = behaviour or Behaviour()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            route = state.route(self.path)
            if route.delay:
                time.sleep(route.delay)
            data = route.body.encode()
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    running = Running(f"http://127.0.0.1:{server.server_address[1]}", state, server)
    try:
        yield running
    finally:
        try:
            server.shutdown()
        finally:
            server.server_close()
            thread.join(timeout=5)
