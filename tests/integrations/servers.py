"""Real servers on loopback that record what Jupiter's channels send: a
generic HTTP receiver (can fail the first N requests, or hang), a fake Jira
(search, create, comment, transitions with the REST API's JSON shapes), a
Splunk HEC receiver (checks the token, acknowledges) and syslog listeners
(UDP, TCP with octet counting)."""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, Any]
Handler = Callable[[Request], Answer]


@dataclass
class Recorder:
    handler: Handler
    requests: list[Request] = field(default_factory=list)
    url: str = ""


@contextmanager
def http_server(handler: Handler) -> Iterator[Recorder]:
    rec = Recorder(handler)

    class H(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            rec.requests.append(req)
            status, body = rec.handler(req)
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except OSError:
                pass  # the client is gone (killed mid-request): nothing to answer

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def failing_first(n: int, then: Answer = (200, b"ok")) -> Handler:
    """Answers 503 to the first ``n`` requests, then ``then``."""
    seen = {"n": 0}

    def handle(_req: Request) -> Answer:
        seen["n"] += 1
        return (503, {"error": "down for maintenance"}) if seen["n"] <= n else then

    return handle


class FakeJira:
    """Just enough of Jira's REST API v2/v3, with its JSON shapes."""

    TRANSITIONS = {
        "Open": [("21", "In Progress"), ("31", "Resolved")],
        "In Progress": [("31", "Resolved")],
        "Resolved": [("41", "Reopen")],
        "Reopened": [("31", "Resolved")],
    }
    TARGET = {"21": "In Progress", "31": "Resolved", "41": "Reopened"}

    def __init__(self) -> None:
        self.issues: dict[str, dict[str, Any]] = {}
        self.auth: set[str] = set()

    def __call__(self, req: Request) -> Answer:
        self.auth.add(req.headers.get("authorization", ""))
        parts = urlsplit(req.path)
        m = re.match(r"^/rest/api/(2|3)(/.*)$", parts.path)
        if not m:
            return 404, {"errorMessages": ["not found"]}
        path = m.group(2)
        if path == "/search" and req.method == "GET":
            jql = parse_qs(parts.query)["jql"][0]
            label = re.search(r'labels = "([^"]+)"', jql).group(1)  # type: ignore[union-attr]
            found = [{"key": k} for k, i in self.issues.items() if label in i["labels"]]
            return 200, {"issues": found, "total": len(found)}
        if path == "/issue" and req.method == "POST":
            fields = req.json()["fields"]
            key = f"{fields['project']['key']}-{len(self.issues) + 1}"
            self.issues[key] = {
                **fields,
                "status": "Open",
                "comments": [],
                "labels": fields["labels"],
            }
            return 201, {
                "id": str(len(self.issues)),
                "key": key,
                "self": f"/rest/api/2/issue/{key}",
            }
        m2 = re.match(r"^/issue/([A-Z]+-\d+)(/comment|/transitions)?$", path)
        if not m2 or m2.group(1) not in self.issues:
            return 404, {"errorMessages": ["Issue does not exist"]}
        issue = self.issues[m2.group(1)]
        if m2.group(2) is None:
            return 200, {"key": m2.group(1), "fields": {"status": {"name": issue["status"]}}}
        if m2.group(2) == "/comment":
            if req.method == "GET":
                return 200, {"comments": [{"body": c} for c in issue["comments"]]}
            issue["comments"].append(req.json()["body"])
            return 201, {"id": str(len(issue["comments"]))}
        if req.method == "GET":
            return 200, {
                "transitions": [
                    {"id": i, "name": n, "to": {"name": self.TARGET[i]}}
                    for i, n in self.TRANSITIONS[issue["status"]]
                ]
            }
        wanted = req.json()["transition"]["id"]
        if wanted not in {i for i, _ in self.TRANSITIONS[issue["status"]]}:
            return 400, {"errorMessages": ["Transition id is not valid for this issue."]}
        issue["status"] = self.TARGET[wanted]
        return 204, b""


class FakeHec:
    """Splunk HEC: checks ``Authorization: Splunk <token>``, splits the batch,
    acknowledges (``/services/collector/ack``) when a channel header is sent."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.next_ack = 0
        self.acked: set[int] = set()

    def __call__(self, req: Request) -> Answer:
        if req.headers.get("authorization") != f"Splunk {self.token}":
            return 401, {"text": "Invalid token", "code": 4}
        if req.path == "/services/collector/event":
            decoder, text, pos = json.JSONDecoder(), req.body.decode(), 0
            while pos < len(text):
                obj, end = decoder.raw_decode(text, pos)
                self.events.append(obj)
                pos = end
                while pos < len(text) and text[pos].isspace():
                    pos += 1
            if "x-splunk-request-channel" in req.headers:
                ack, self.next_ack = self.next_ack, self.next_ack + 1
                self.acked.add(ack)
                return 200, {"text": "Success", "code": 0, "ackId": ack}
            return 200, {"text": "Success", "code": 0}
        if req.path == "/services/collector/ack":
            ids = req.json()["acks"]
            return 200, {"acks": {str(i): i in self.acked for i in ids}}
        return 404, {"text": "not found", "code": 404}


@contextmanager
def syslog_udp() -> Iterator[tuple[int, list[bytes]]]:
    got: list[bytes] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                got.append(sock.recv(65535))
            except TimeoutError:
                continue

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], got
    finally:
        stop.set()
        thread.join()
        sock.close()


@contextmanager
def syslog_tcp() -> Iterator[tuple[int, list[bytes]]]:
    """Octet-counted frames (RFC 6587): ``LEN SP MSG``."""
    got: list[bytes] = []

    class H(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            while chunk := self.request.recv(65536):
                data += chunk
            while data:
                length, _, rest = data.partition(b" ")
                n = int(length)
                got.append(rest[:n])
                data = rest[n:]

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], got
    finally:
        server.shutdown()
        server.server_close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
