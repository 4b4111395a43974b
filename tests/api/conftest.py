"""A served workspace for the API tests: users of every role with API
tokens, a few findings, on SQLite (and PostgreSQL where a test asks), and a
real uvicorn on loopback for the tests that need one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jupiter.api import create_app
from jupiter.engine import Engine
from jupiter.permissions import ROLES
from jupiter.workspace import Workspace
from tests.conftest import FIXTURES, pg_schema


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    admin: Engine
    tokens: dict[str, str] = field(default_factory=dict)
    home: Path = Path()

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build(home: Path, url: str) -> Served:
    """A workspace with one user per role (``u-ROLE``) and a token each, the
    Bandit fixture's findings on asset ``app``, and the app serving it."""
    admin = Engine(Workspace(home, url), actor="root-admin")
    admin.init()
    tokens = {"admin": admin.create_token(label="api-tests")["token"]}
    for role in ROLES:
        if role == "admin":
            continue
        admin.add_user(f"u-{role}", [role])
        tokens[role] = admin.create_token(f"u-{role}", label="api-tests")["token"]
    admin.ingest([FIXTURES / "scanners/bandit.json"], asset="app")
    app = create_app(home, url, max_body=256 * 1024)
    return Served(app, TestClient(app), admin, tokens, home)


def _close(served: Served) -> None:
    served.client.close()
    served.app.state.server.close()
    served.admin.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("api") / "home"
    s = build(home, f"sqlite:///{home / 'jupiter.db'}")
    try:
        yield s
    finally:
        _close(s)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served_any(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("api-any") / "home"
    if request.param == "sqlite":
        s = build(home, f"sqlite:///{home / 'jupiter.db'}")
        try:
            yield s
        finally:
            _close(s)
        return
    for url in pg_schema():
        s = build(home, url)
        try:
            yield s
        finally:
            _close(s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 15 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def live(served: Served) -> Iterator[LiveServer]:
    with LiveServer(served.app) as server:
        yield server
