"""Every route of the OpenAPI document x every role: an allowed role is
never refused (not 401/403), a denied one gets 403 and the refusal is
audited as permission.denied; no token or a wrong one gets 401. On SQLite
and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from jupiter.permissions import PERMISSIONS, ROLES
from jupiter.store.tables import AuditRow
from tests.api.conftest import Served

#: The engine action each route performs (None: any authenticated user).
ROUTES: dict[tuple[str, str], str | None] = {
    ("get", "/api/v1/me"): None,
    ("get", "/metrics"): "integrations.read",
    ("get", "/api/v1/assets"): "assets.read",
    ("get", "/api/v1/assets/{asset_id}"): "assets.read",
    ("get", "/api/v1/findings"): "findings.read",
    ("get", "/api/v1/findings/{finding_id}"): "findings.read",
    ("post", "/api/v1/ingest"): "findings.ingest",
    ("post", "/api/v1/scans"): "findings.scan",
    ("post", "/api/v1/plans"): "plan.create",
    ("get", "/api/v1/runs"): "runs.read",
    ("get", "/api/v1/runs/{run_id}"): "runs.read",
    ("get", "/api/v1/snapshots"): "snapshots.read",
    ("post", "/api/v1/snapshots"): "snapshots.create",
    ("post", "/api/v1/snapshots/{snapshot_id}/restore"): "snapshots.restore",
    ("post", "/api/v1/runs/{run_id}/rollback"): "run.rollback",
    ("get", "/api/v1/remediations"): "remediations.read",
    ("post", "/api/v1/remediations"): "remediation.create",
    ("get", "/api/v1/remediations/{ref}"): "remediations.read",
    ("get", "/api/v1/remediations/{ref}/events"): "remediations.read",
    ("post", "/api/v1/remediations/{ref}/approve"): "remediation.approve",
    ("post", "/api/v1/remediations/{ref}/reject"): "remediation.approve",
    ("post", "/api/v1/remediations/{ref}/answer"): "remediation.deploy",
    ("post", "/api/v1/remediations/{ref}/resume"): "remediation.deploy",
    ("post", "/api/v1/remediations/{ref}/cancel"): "remediation.deploy",
    ("post", "/api/v1/remediations/{ref}/rollback"): "remediation.deploy",
    ("get", "/api/v1/approvals"): "remediations.read",
    ("get", "/api/v1/approvals/{ref}"): "remediations.read",
    ("get", "/api/v1/exceptions"): "exceptions.read",
    ("post", "/api/v1/exceptions"): "exceptions.request",
    ("post", "/api/v1/exceptions/{waiver_id}/approve"): "exceptions.approve",
    ("post", "/api/v1/exceptions/{waiver_id}/revoke"): "exceptions.revoke",
    ("get", "/api/v1/policies"): "policy.read",
    ("get", "/api/v1/policies/tests"): "policy.read",
    ("post", "/api/v1/policies/evaluate"): "policy.decide",
    ("get", "/api/v1/audit/verify"): "audit.verify",
    ("get", "/api/v1/audit/export"): "audit.export",
    ("get", "/api/v1/stats"): "integrations.read",
}

#: Unauthenticated by design.
PUBLIC = {("get", "/healthz")}

#: Path parameters naming nothing that exists (the check comes first).
PATH_VALUES = {
    "asset_id": "no-such-asset",
    "finding_id": "999999",
    "run_id": "999999",
    "ref": "REM-999999",
    "waiver_id": "999999",
    "snapshot_id": "SNAP-1999-01-01-001",
}

#: A well-formed body per route, so the role check (not validation) decides.
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/scans"): {"target": "/nonexistent/jupiter-api"},
    ("post", "/api/v1/plans"): {"finding": "999999"},
    ("post", "/api/v1/runs/{run_id}/rollback"): {},
    ("post", "/api/v1/snapshots"): {"asset": "no-such-asset"},
    ("post", "/api/v1/snapshots/{snapshot_id}/restore"): {},
    ("post", "/api/v1/remediations"): {"asset": "no-such-asset"},
    ("post", "/api/v1/remediations/{ref}/approve"): {},
    ("post", "/api/v1/remediations/{ref}/reject"): {"comment": "no"},
    ("post", "/api/v1/remediations/{ref}/answer"): {"fields": {}},
    ("post", "/api/v1/remediations/{ref}/rollback"): {},
    ("post", "/api/v1/exceptions"): {
        "reason": "r",
        "ticket": "T-1",
        "expires": "10d",
        "finding": "999999",
    },
    ("post", "/api/v1/exceptions/{waiver_id}/approve"): {},
    ("post", "/api/v1/exceptions/{waiver_id}/revoke"): {},
    ("post", "/api/v1/policies/evaluate"): {
        "decision": "priority",
        "input": {"finding": {"severity": "low"}},
    },
}


def operations(served: Served) -> list[tuple[str, str]]:
    doc = served.app.openapi()
    return sorted((m, p) for p, item in doc["paths"].items() for m in item)


def call(served: Served, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path
    for name, value in PATH_VALUES.items():
        url = url.replace("{" + name + "}", value)
    key = (method, path)
    if key == ("post", "/api/v1/ingest"):
        return served.client.post(url, content=b"{}", headers=headers)
    if key in BODIES:
        return served.client.request(method, url, json=BODIES[key], headers=headers)
    return served.client.request(method, url, headers=headers)


def denials(served: Served) -> int:
    with served.admin.db.reading() as s:
        q = select(func.count()).select_from(AuditRow).where(AuditRow.action == "permission.denied")
        return int(s.scalar(q) or 0)


def test_every_route_is_in_the_table(served: Served) -> None:
    ops = set(operations(served))
    assert ops - PUBLIC == set(ROUTES), "add the new route to ROUTES (and BODIES if it takes one)"
    for action in ROUTES.values():
        assert action is None or action in PERMISSIONS


def test_route_role_matrix(served_any: Served) -> None:
    served = served_any
    for method, path in operations(served):
        if (method, path) in PUBLIC:
            assert call(served, method, path, {}).status_code == 200
            continue
        action = ROUTES[(method, path)]
        anon = call(served, method, path, {})
        assert anon.status_code == 401, (method, path, anon.text)
        assert anon.json()["error"]["code"] == "unauthenticated"
        assert "REDACTED" not in anon.json()["error"]["message"]
        assert anon.headers["www-authenticate"] == "Bearer"
        for role in ROLES:
            allowed = action is None or role in PERMISSIONS[action].roles
            before = denials(served)
            resp = call(served, method, path, served.headers(role))
            where = f"{role} x {method.upper()} {path} ({action}): {resp.status_code} {resp.text}"
            if allowed:
                assert resp.status_code not in (401, 403), where
                assert resp.status_code < 500, where
            else:
                assert resp.status_code == 403, where
                body = resp.json()["error"]
                assert body["code"] == "forbidden" and action in body["message"], where
                assert denials(served) == before + 1, f"{where}: not audited"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer jpt_0000000000000000_" + "x" * 43,
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_wrong_token_is_401(served: Served, header: str) -> None:
    before = denials(served)
    resp = served.client.get("/api/v1/findings", headers={"Authorization": header})
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "unauthenticated" and "token" in err["message"]
    assert "xxxx" not in resp.text
    if header.startswith("Bearer jpt_") or header == "Bearer not-a-token":
        assert denials(served) == before + 1, "a refused token is audited"


def test_revoked_token_is_refused_at_once(served: Served) -> None:
    made = served.admin.create_token("u-viewer", label="short-lived")
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert served.client.get("/api/v1/me", headers=headers).json()["name"] == "u-viewer"
    served.admin.revoke_token(made["id"])
    resp = served.client.get("/api/v1/me", headers=headers)
    assert resp.status_code == 401, "a cached token must not outlive its revocation"
    assert "revoked" in resp.json()["error"]["message"]
