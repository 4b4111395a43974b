"""schemathesis generates requests from the OpenAPI document and sends them
to the app served by a real uvicorn on loopback: no answer is a 500, every
error has the one JSON shape. Bounded here; the soak variant tries more."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import LiveServer, Served

#: Operations that would act on any path of this machine the generator
#: names (a scan of `/`): fuzzed as a role that may not, so they answer 403.
AS_VIEWER = {("POST", "/api/v1/scans"), ("POST", "/api/v1/remediations")}


def fuzz(served: Served, live: LiveServer, examples: int) -> int:
    schema = schemathesis.openapi.from_dict(served.app.openapi())
    calls = 0
    for result in schema.get_all_operations():
        op = result.ok()
        role = "viewer" if (op.method.upper(), op.path) in AS_VIEWER else "admin"
        headers = served.headers(role)

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            resp = case.call(base_url=live.url, headers=headers, timeout=30)  # noqa: B023
            where = f"{case.method} {case.formatted_path}: {resp.status_code} {resp.text[:300]}"
            assert resp.status_code < 500, where
            if resp.status_code >= 400:
                body = resp.json()
                assert set(body) == {"error"}, where
                assert set(body["error"]) == {"code", "message", "field"}, where

        run()
    return calls


def test_schemathesis_finds_no_500(served: Served, live: LiveServer) -> None:
    assert fuzz(served, live, examples=12) > 200


@pytest.mark.soak
def test_schemathesis_soak(served: Served, live: LiveServer) -> None:
    assert fuzz(served, live, examples=200) > 3000
