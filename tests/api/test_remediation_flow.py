"""A remediation driven through the API by four people, watched live over
server-sent events from a real uvicorn: the analyst creates it, the operator
runs it to its approval, the approver's approval deploys it, the operator
rolls it back."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from jupiter.plugins.registry import Registry
from tests.api.conftest import LiveServer, Served
from tests.remediations.fleetlib import AppFix, make_fleet, workflow


def _watch(url: str, headers: dict[str, str], out: list[tuple[str, Any]]) -> None:
    with (
        httpx.Client(timeout=60) as http,
        http.stream("GET", url, headers=headers) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event:
                out.append((event, json.loads(line.split(":", 1)[1])))


def test_remediation_through_the_api(served: Served, live: LiveServer, tmp_path: Path) -> None:
    roots = make_fleet(tmp_path, 2, app=True)
    served.admin.import_assets(tmp_path / "assets.yaml")
    workflow(served.home, "wf", [{"kind": "snapshot"}, {"kind": "approval"}, {"kind": "deploy"}])
    registry = Registry()
    registry.add(AppFix(), source="test")
    served.app.state.server.registry = registry

    http = httpx.Client(base_url=live.url, timeout=60)
    made = http.post(
        "/api/v1/remediations",
        json={"group": "web", "workflow": "wf"},
        headers=served.headers("analyst"),
    )
    assert made.status_code == 201, made.text
    rem = made.json()["remediation"]["id"]
    assert made.json()["status"] == "planned"
    # The analyst may plan but not deploy; the approver may not run it either.
    assert (
        http.post(
            f"/api/v1/remediations/{rem}/resume", headers=served.headers("analyst")
        ).status_code
        == 403
    )
    ran = http.post(f"/api/v1/remediations/{rem}/resume", headers=served.headers("operator"))
    assert ran.status_code == 200, ran.text
    assert ran.json()["status"] == "awaiting_approval"

    events: list[tuple[str, Any]] = []
    watcher = threading.Thread(
        target=_watch,
        args=(f"{live.url}/api/v1/remediations/{rem}/events", served.headers("viewer"), events),
        daemon=True,
    )
    watcher.start()

    inbox = http.get("/api/v1/approvals", headers=served.headers("approver")).json()
    assert [a["remediation"] for a in inbox] == [rem]
    plan_hash = inbox[0]["plan_hash"]
    # Separation of duties: the one who asked cannot approve (and has no role to).
    assert (
        http.post(
            f"/api/v1/remediations/{rem}/approve", json={}, headers=served.headers("analyst")
        ).status_code
        == 403
    )
    approved = http.post(
        f"/api/v1/remediations/{rem}/approve",
        json={"plan_hash": plan_hash, "comment": "diff reviewed"},
        headers=served.headers("approver"),
    )
    assert approved.status_code == 200, approved.text
    verdict = approved.json()
    assert verdict["status"] == "awaiting_approval" and verdict["required"] == 2, verdict
    assert verdict["counted"] == ["u-approver"], verdict
    again = http.post(
        f"/api/v1/remediations/{rem}/approve",
        json={"plan_hash": plan_hash},
        headers=served.headers("approver"),
    )
    assert again.status_code == 403, "one person counts once"
    second = http.post(
        f"/api/v1/remediations/{rem}/approve",
        json={"plan_hash": plan_hash, "comment": "second pair of eyes"},
        headers=served.headers("admin"),
    )
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "completed", second.json()
    watcher.join(timeout=60)
    assert not watcher.is_alive(), "the event stream did not end with the remediation"
    assert all((r / "etc/app.conf").read_text() == "secure\n" for r in roots)

    statuses = [data["status"] for kind, data in events if kind == "status"]
    assert statuses[0] == "awaiting_approval" and statuses[-1] == "completed"
    timeline = [data for kind, data in events if kind == "timeline"]
    shown = http.get(f"/api/v1/remediations/{rem}", headers=served.headers("viewer")).json()
    assert len(timeline) == len(shown["timeline"]) > 0
    assert [e["name"] for e in timeline] == [e["name"] for e in shown["timeline"]]

    back = http.post(
        f"/api/v1/remediations/{rem}/rollback",
        json={"target": "web-01"},
        headers=served.headers("operator"),
    )
    assert back.status_code == 200, back.text
    assert (roots[0] / "etc/app.conf").read_text() == "insecure\n"
    assert (roots[1] / "etc/app.conf").read_text() == "secure\n"
    denied = http.post(f"/api/v1/remediations/{rem}/cancel", headers=served.headers("viewer"))
    assert denied.status_code == 403
    http.close()
