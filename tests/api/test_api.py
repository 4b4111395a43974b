"""The REST API's behaviour: paging, filters, uploads, the error shape for
each kind of bad input, redaction, metrics and the committed OpenAPI
document."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jupiter.api import create_app
from jupiter.api.models import FindingPage
from jupiter.api.openapi import render
from tests.api.conftest import Served
from tests.conftest import ROOT

SECRET = "AKIAABCDEFGHIJKLMNOP"
SARIF = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {"driver": {"name": "leakcheck", "rules": []}},
            "results": [
                {
                    "ruleId": f"LEAK{i}",
                    "level": "error",
                    "message": {"text": f"key {SECRET} leaked in config {i}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": f"conf/{i}.ini"},
                                "region": {"startLine": i + 1},
                            }
                        }
                    ],
                }
                for i in range(7)
            ],
        }
    ],
}


def _error(resp: object, status: int, code: str, field: str | None = None) -> dict[str, str]:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    err: dict[str, str] = body["error"]
    assert err["code"] == code, err
    assert err["field"] == field, err
    assert err["message"].strip(), err
    return err


def test_ingest_raw_and_multipart_then_page_through(served: Served) -> None:
    h = served.headers("analyst")
    raw = served.client.post(
        "/api/v1/ingest?asset=leaky&filename=leak.sarif",
        content=orjson.dumps(SARIF),
        headers={**h, "Content-Type": "application/json"},
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["files"][0]["format"] == "sarif"
    assert raw.json()["files"][0]["path"] == "leak.sarif"
    assert raw.json()["new_findings"] == 7
    assert SECRET not in raw.text
    multi = served.client.post(
        "/api/v1/ingest?asset=leaky",
        files={"file": ("again.sarif", orjson.dumps(SARIF), "application/octet-stream")},
        headers=h,
    )
    assert multi.status_code == 200, multi.text
    assert multi.json()["new_findings"] == 0 and multi.json()["existing_findings"] == 7

    v = served.headers("viewer")
    everything = served.client.get("/api/v1/findings?asset=leaky&limit=1000", headers=v).json()
    assert len(everything["items"]) == 7 and everything["next_cursor"] is None
    # The listing is sent without response validation: it must match its model.
    assert FindingPage.model_validate(everything).model_dump(mode="json") == everything
    for sort in ("-priority", "id", "-id", "severity", "-last_seen", "first_seen"):
        seen: list[int] = []
        cursor = None
        while True:
            url = f"/api/v1/findings?asset=leaky&limit=3&sort={sort}"
            page = served.client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=v)
            assert page.status_code == 200, page.text
            seen += [f["id"] for f in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(f["id"] for f in everything["items"]), sort
        # Paged by cursor (ties read as their own range): the one-page order.
        url = f"/api/v1/findings?asset=leaky&limit=1000&sort={sort}"
        whole = served.client.get(url, headers=v).json()["items"]
        assert seen == [f["id"] for f in whole], sort
        assert len(seen) == len(set(seen)), f"{sort}: a finding appeared on two pages"
        if sort == "id":
            assert seen == sorted(seen)
        if sort == "-id":
            assert seen == sorted(seen, reverse=True)
    assert SECRET not in json.dumps(everything), "a secret in a finding left through the API"
    # A page's findings (read as plain rows) are what one finding's route
    # (the ORM row through finding_to_json) shows, timestamps included.
    for item in everything["items"]:
        assert served.client.get(f"/api/v1/findings/{item['id']}", headers=v).json() == item
    one = everything["items"][0]
    got = served.client.get(f"/api/v1/findings/{one['id']}", headers=v)
    assert got.status_code == 200 and got.json()["fingerprint"] == one["fingerprint"]
    high = served.client.get("/api/v1/findings?severity=high", headers=v).json()["items"]
    assert high and all(f["severity"] == "high" for f in high)


def test_bad_input_has_one_error_shape(served: Served) -> None:
    h = served.headers("analyst")
    c = served.client
    _error(c.get("/api/v1/findings?limit=0", headers=h), 422, "invalid", "limit")
    _error(c.get("/api/v1/findings?sort=title", headers=h), 422, "invalid", "sort")
    _error(c.get("/api/v1/findings?cursor=bm9wZQ", headers=h), 422, "invalid", "cursor")
    first = c.get("/api/v1/findings?limit=1&sort=id", headers=h).json()["next_cursor"]
    err = _error(
        c.get(f"/api/v1/findings?limit=1&sort=-id&cursor={first}", headers=h),
        422,
        "invalid",
        "cursor",
    )
    assert "sort" in err["message"]
    err = _error(c.get("/api/v1/findings?status=nope", headers=h), 422, "invalid")
    assert "unknown status" in err["message"]
    _error(c.get("/api/v1/findings/999999", headers=h), 404, "not_found")
    # "¹" is a digit to str.isdigit() but not to int() (schemathesis found a 500).
    assert c.get("/api/v1/findings/%C2%B9", headers=h).status_code in (404, 422)
    _error(c.get("/api/v1/remediations/REM-424242", headers=h), 404, "not_found")
    _error(c.get("/api/v1/assets/nope", headers=h), 404, "not_found")
    _error(c.get("/api/v1/nowhere", headers=h), 404, "not_found")
    bad_json = c.post(
        "/api/v1/plans",
        content=b'{"finding": ',
        headers={**h, "Content-Type": "application/json"},
    )
    _error(bad_json, 422, "invalid", "12")
    _error(c.post("/api/v1/plans", json={"finding": 1}, headers=h), 422, "invalid", "finding")
    _error(c.post("/api/v1/plans", json={"nope": "1"}, headers=h), 422, "invalid", "finding")
    err = _error(
        c.post("/api/v1/ingest", content=b"this is not a report", headers=h),
        422,
        "invalid",
        "file",
    )
    assert "JSON" in err["message"] and "jupiter-upload" not in err["message"]
    _error(c.post("/api/v1/ingest", content=b'{"a": 1}', headers=h), 422, "invalid", "file")
    _error(c.post("/api/v1/ingest", content=b"", headers=h), 422, "invalid", "file")
    _error(
        c.post("/api/v1/ingest", files={"other": ("x", b"{}")}, headers=h), 422, "invalid", "file"
    )
    err = _error(
        c.post("/api/v1/policies/evaluate", json={"decision": "nope", "input": {}}, headers=h),
        422,
        "invalid",
        "decision",
    )
    assert "priority" in err["message"]


def test_oversized_upload_is_413_and_writes_nothing(served: Served) -> None:
    h = served.headers("analyst")
    before = served.client.get("/api/v1/findings?limit=1000", headers=h).json()["items"]
    big = b'{"version": "2.1.0", "runs": [], "pad": "' + b"x" * (300 * 1024) + b'"}'
    err = _error(served.client.post("/api/v1/ingest", content=big, headers=h), 413, "too_large")
    assert "JUPITER_API_MAX_BODY" in err["message"]
    chunks = (big[i : i + 4096] for i in range(0, len(big), 4096))  # no Content-Length
    _error(served.client.post("/api/v1/ingest", content=chunks, headers=h), 413, "too_large")
    multi = served.client.post("/api/v1/ingest", files={"file": ("big.json", big)}, headers=h)
    _error(multi, 413, "too_large")
    after = served.client.get("/api/v1/findings?limit=1000", headers=h).json()["items"]
    assert after == before


def test_reads_and_metrics(served: Served) -> None:
    v = served.headers("viewer")
    c = served.client
    me = c.get("/api/v1/me", headers=v).json()
    assert me == {"name": "u-viewer", "roles": ["viewer"], "grants": ["viewer"]}
    assets = c.get("/api/v1/assets", headers=v).json()
    assert "app" in {a["id"] for a in assets}
    assert c.get("/api/v1/assets/app", headers=v).json()["id"] == "app"
    verify = c.get("/api/v1/audit/verify", headers=v).json()
    assert verify["ok"] is True and verify["entries"] > 5
    export = c.get("/api/v1/audit/export", headers=served.headers("auditor"))
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert "api-tests" not in export.text or "jpt_" not in export.text
    metrics = c.get("/metrics", headers=v)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'jupiter_open_findings{severity="high"}' in metrics.text
    stats = c.get("/api/v1/stats", headers=v)
    assert stats.status_code == 200 and isinstance(stats.json(), dict)
    _error(c.get("/api/v1/stats?since=yesterday-ish", headers=v), 422, "invalid")
    pol = c.get("/api/v1/policies", headers=v).json()
    assert len(pol["policy_hash"]) == 64 and "priority" in pol["decisions"]
    decided = c.post(
        "/api/v1/policies/evaluate",
        json={"decision": "priority", "input": {"finding": {"severity": "critical"}}},
        headers=served.headers("analyst"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["policy_hash"] == pol["policy_hash"]
    assert c.get("/healthz").json()["status"] == "ok"


def test_no_token_secret_in_any_response(served: Served) -> None:
    """The tokens' secrets appear in no answer (audit export included)."""
    h = served.headers("admin")
    texts = [
        served.client.get(p, headers=h).text
        for p in ("/api/v1/audit/export", "/api/v1/me", "/api/v1/findings", "/metrics")
    ]
    for token in served.tokens.values():
        secret = token.split("_", 2)[2]
        assert all(secret not in t for t in texts)


def test_openapi_document_is_committed_and_current() -> None:
    committed = (ROOT / "docs/openapi.json").read_text()
    assert committed == render(), (
        "docs/openapi.json is out of date: regenerate it with "
        "`.venv/bin/python -m jupiter.api.openapi > docs/openapi.json`"
    )
    doc = json.loads(committed)
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("summary") or op.get("description"), f"{method} {path} undocumented"


def test_console_is_mounted_when_it_provides_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupiter.console as console

    mounted: list[FastAPI] = []

    def mount(app: FastAPI) -> None:
        mounted.append(app)

        @app.get("/console-probe", include_in_schema=False)
        def probe() -> dict[str, str]:
            return {"console": "here"}

    monkeypatch.setattr(console, "mount", mount, raising=False)
    app = create_app(tmp_path / "home", f"sqlite:///{tmp_path / 'j.db'}")
    try:
        assert mounted == [app]
        with TestClient(app) as client:
            assert client.get("/console-probe").json() == {"console": "here"}
    finally:
        app.state.server.close()


def test_pages_by_cursor_match_the_whole_list_on_each_database(served_any: Served) -> None:
    """The page query (plain rows, ties after a cursor read as their own
    range) on SQLite and PostgreSQL: every sort pages to the one-page order,
    and each finding is what its own route shows."""
    c, v = served_any.client, served_any.headers("viewer")
    ingested = c.post(
        "/api/v1/ingest?asset=paged&filename=p.sarif",
        content=orjson.dumps(SARIF),
        headers={**served_any.headers("analyst"), "Content-Type": "application/json"},
    )
    assert ingested.status_code == 200, ingested.text
    for sort in ("-priority", "priority", "severity", "-severity", "-last_seen", "first_seen"):
        url = f"/api/v1/findings?asset=paged&sort={sort}"
        whole = c.get(url + "&limit=1000", headers=v).json()["items"]
        assert len(whole) == 7
        seen, cursor = [], None
        while True:
            page = c.get(url + "&limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=v)
            assert page.status_code == 200, page.text
            seen += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == whole, sort
    for item in whole:
        assert c.get(f"/api/v1/findings/{item['id']}", headers=v).json() == item
