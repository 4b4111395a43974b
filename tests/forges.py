"""Small local fakes of the GitHub, GitLab and Gitea REST APIs (threaded
http.server on 127.0.0.1:0). Each checks the auth header and the repository
path, keeps pull requests in memory, records every request (method, path,
headers, JSON) for the tests to assert on, and reads a branch's head sha from
a real bare git remote."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"  # open | closed | merged
    labels: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


class FakeForge:
    def __init__(self, kind: str, repo: str, token: str, remote: Path) -> None:
        self.kind, self.repo, self.token, self.remote = kind, repo, token, remote
        self.seen: list[Seen] = []
        self.pulls: dict[int, Pull] = {}
        self.statuses: dict[str, list[tuple[str, str]]] = {}
        self.script: list[tuple[int, dict[str, str]]] = []  # forced answers, first first
        self.labels = {"security": 1, "high": 2, "critical": 3, "medium": 4, "low": 5}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _do(self) -> None:
                fake.handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = _do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str, suffix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.endswith(suffix)]

    # -- the API ---------------------------------------------------------------

    def _prefix(self) -> str:
        if self.kind == "github":
            return f"/repos/{self.repo}"
        if self.kind == "gitlab":
            return f"/api/v4/projects/{quote(self.repo, safe='')}"
        return f"/api/v1/repos/{self.repo}"

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.kind == "github":
            return headers.get("authorization") == f"Bearer {self.token}"
        if self.kind == "gitlab":
            return headers.get("private-token") == self.token
        return headers.get("authorization") == f"token {self.token}"

    def _sha(self, branch: str) -> str | None:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.remote), "rev-parse", "--verify", "-q", branch],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return proc.stdout.strip() or None

    def _pull_json(self, p: Pull) -> dict[str, Any]:
        sha = self._sha(p.head)
        if self.kind == "gitlab":
            state = {"open": "opened"}.get(p.state, p.state)
            return {"iid": p.number, "web_url": f"{self.url}/mr/{p.number}", "state": state,
                    "sha": sha, "labels": p.labels}  # fmt: skip
        state = "closed" if p.state == "merged" else p.state
        return {"number": p.number, "html_url": f"{self.url}/pull/{p.number}", "state": state,
                "merged": p.state == "merged", "head": {"ref": p.head, "sha": sha}}  # fmt: skip

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            self.seen.append(Seen(h.command, split.path, split.query, headers, body))
            if self.script:
                status, extra = self.script.pop(0)
                return self._send(h, status, {"message": "scripted"}, extra)
            if not self._authorised(headers):
                return self._send(h, 401, {"message": "Bad credentials"})
            prefix = self._prefix()
            if split.path == prefix and h.command == "GET":
                return self._send(h, 200, {"id": 1, "full_name": self.repo})
            if not split.path.startswith(prefix + "/"):
                return self._send(h, 404, {"message": "Not Found"})
            rest = split.path[len(prefix) :]
            status, out = self._route(h.command, rest, split.query, body)
            return self._send(h, status, out)

    def _route(self, method: str, rest: str, query: str, body: Any) -> tuple[int, Any]:
        parts = rest.strip("/").split("/")
        pulls = "merge_requests" if self.kind == "gitlab" else "pulls"
        if parts == [pulls] and method == "POST":
            if self.kind == "gitlab":
                assert set(body) == {"source_branch", "target_branch", "title", "description"}
                head, base, text = body["source_branch"], body["target_branch"], body["description"]
            else:
                assert set(body) == {"title", "head", "base", "body"}
                head, base, text = body["head"], body["base"], body["body"]
            assert self._sha(head) is not None, "the branch was pushed before the PR was opened"
            if any(p.head == head and p.state == "open" for p in self.pulls.values()):
                return 422, {"message": "A pull request already exists"}
            n = len(self.pulls) + 1
            self.pulls[n] = Pull(n, head, base, body["title"], text)
            return 201, self._pull_json(self.pulls[n])
        if len(parts) == 2 and parts[0] == pulls:
            p = self.pulls.get(int(parts[1]))
            if p is None:
                return 404, {"message": "Not Found"}
            if method == "GET":
                return 200, self._pull_json(p)
            if method in ("PATCH", "PUT"):
                if "title" in body:
                    p.title = body["title"]
                if "body" in body or "description" in body:
                    p.body = body.get("body", body.get("description"))
                if body.get("state") == "closed" or body.get("state_event") == "close":
                    p.state = "closed"
                if "add_labels" in body:
                    p.labels += body["add_labels"].split(",")
                return 200, self._pull_json(p)
        kind_comments = {"github": "comments", "gitea": "comments", "gitlab": "notes"}
        thread = "merge_requests" if self.kind == "gitlab" else "issues"
        if len(parts) == 3 and parts[0] == thread and parts[2] == kind_comments[self.kind]:
            self.pulls[int(parts[1])].comments.append(body["body"])
            return 201, {"id": 1}
        if len(parts) == 3 and parts[0] == "issues" and parts[2] == "labels":
            p = self.pulls[int(parts[1])]
            names = {v: k for k, v in self.labels.items()}
            for item in body["labels"]:
                p.labels.append(names[item] if self.kind == "gitea" else item)
            return 200, [{"name": n} for n in p.labels]
        if parts == ["labels"] and method == "GET":
            return 200, [{"id": i, "name": n} for n, i in self.labels.items()]
        if len(parts) == 3 and parts[0] == "commits" and parts[2] == "status":
            sts = self.statuses.get(parts[1], [])
            key = "status" if self.kind == "gitea" else "state"
            return 200, {"statuses": [{key: st, "context": c} for c, st in sts]}
        if len(parts) == 3 and parts[0] == "commits" and parts[2] == "check-runs":
            return 200, {"check_runs": []}
        if parts == ["pipelines"] and method == "GET":
            sha = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv).get("sha", "")
            sts = self.statuses.get(sha, [])
            if not sts:
                return 200, []
            status = "failed" if any(st == "failure" for _, st in sts) else "success"
            return 200, [{"id": 7, "status": status}]
        return 404, {"message": f"no route {method} {rest}"}

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, out: Any, extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(out).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
