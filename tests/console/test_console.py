"""The console over TestClient: login and sessions, CSRF refusals, the
security headers, the 403 page, and each page rendering real data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jupiter.console import mount
from jupiter.console import session as sessions
from tests.console.consolelib import Place, prepare


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Place:
    return prepare(tmp_path_factory.mktemp("console"), targets=1)


@pytest.fixture(scope="module")
def app_client(place: Place) -> Iterator[TestClient]:
    app = place.app()
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.server.close()


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    app_client.cookies.clear()
    return app_client


def login(client: TestClient, token: str) -> str:
    """Log in through the form; returns the page's CSRF token."""
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    done = client.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/audit"})
    assert done.status_code == 303, done.text
    return page_csrf(client, "/approvals")


def page_csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def actions(place: Place) -> list[str]:
    with place.engine() as eng:
        return [e["action"] for e in eng.audit_export()]


def test_no_session_redirects_to_login_with_the_page_to_return_to(client: TestClient) -> None:
    for path in ("/approvals", "/findings?severity=high", "/dashboard", "/audit"):
        r = client.get(path)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")
    r = client.post("/approvals/REM-1/approve", data={"csrf": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/dashboard"


def test_login_sets_a_strict_httponly_session_and_goes_where_asked(
    client: TestClient, place: Place
) -> None:
    form = client.get("/login?next=/findings")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None and 'value="/findings"' in form.text
    r = client.post(
        "/login", data={"token": place.tokens["bob"], "csrf": csrf.group(1), "next": "/findings"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/findings"
    cookie = next(
        v
        for k, v in r.headers.multi_items()
        if k == "set-cookie" and v.startswith("jupiter_session=")
    )
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attrs
    # The token itself never travels in the cookie.
    assert place.tokens["bob"].split("_", 2)[2] not in cookie
    page = client.get("/findings")
    assert page.status_code == 200 and '<span class="who" id="who">bob</span>' in page.text


def test_login_refuses_bad_tokens_and_forged_forms(client: TestClient, place: Place) -> None:
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    bad = client.post(
        "/login", data={"token": "jpt_" + "0" * 16 + "_" + "a" * 43, "csrf": csrf.group(1)}
    )
    assert bad.status_code == 401 and "is not valid" in bad.text
    assert "jupiter_session" not in bad.headers.get("set-cookie", "")
    assert "token.authenticate" in str(
        [e["subject"] for e in place.engine().audit_export() if e["action"] == "permission.denied"]
    )
    client.cookies.clear()  # no double-submit cookie: a forged login form
    forged = client.post("/login", data={"token": place.tokens["bob"], "csrf": "guess"})
    assert forged.status_code == 403 and "security token" in forged.text
    # Only local pages after login, never another site.
    csrf2 = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf2 is not None
    away = client.post(
        "/login",
        data={"token": place.tokens["bob"], "csrf": csrf2.group(1), "next": "//evil.example/x"},
    )
    assert away.status_code == 303 and away.headers["location"] == "/approvals"


def test_posts_without_the_sessions_csrf_token_are_refused_and_change_nothing(
    client: TestClient, place: Place
) -> None:
    good = login(client, place.tokens["bob"])
    before = actions(place)
    for data in ({}, {"csrf": ""}, {"csrf": "x" * 43}):
        r = client.post(f"/approvals/{place.rem}/approve", data=data)
        assert r.status_code == 403 and "Form refused" in r.text
    # The right token from another site's page is refused too.
    cross = client.post(
        f"/approvals/{place.rem}/approve",
        data={"csrf": good},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "Form refused" in cross.text
    assert actions(place) == before
    with place.engine() as eng:
        assert eng.show_approval(place.rem)["verdicts"] == []


def test_security_headers_on_every_page(client: TestClient, place: Place) -> None:
    pages = [client.get("/login")]
    login(client, place.tokens["vic"])
    pages += [client.get(p) for p in ("/dashboard", "/approvals", "/static/console/console.js")]
    for r in pages:
        csp = r.headers["content-security-policy"]
        scripts = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert scripts.split() == ["script-src", "'self'"], csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    # No inline script or style attribute anywhere for the CSP to block.
    for r in pages[:-1]:
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
        assert " style=" not in r.text and "javascript:" not in r.text


def test_a_role_the_engine_refuses_renders_a_clear_403_page(
    client: TestClient, place: Place
) -> None:
    csrf = login(client, place.tokens["vic"])
    r = client.post(f"/approvals/{place.rem}/approve", data={"csrf": csrf})
    assert r.status_code == 403
    assert "Not allowed" in r.text and "needs the approver or admin role" in r.text
    assert actions(place)[-1] == "permission.denied"
    # Separation of duties, from the Engine's governed approval path.
    csrf = login(client, place.tokens["ann"])
    r = client.post(f"/approvals/{place.rem}/approve", data={"csrf": csrf})
    assert r.status_code == 403 and "separation of duties" in r.text
    # A viewer may verify the audit chain but not read the entries.
    client.cookies.clear()
    login(client, place.tokens["vic"])
    audit = client.get("/audit?verify=1")
    assert audit.status_code == 200 and "The hash chain verifies" in audit.text
    assert "needs the admin or auditor role" in audit.text


def test_unknown_remediation_is_a_404_page(client: TestClient, place: Place) -> None:
    login(client, place.tokens["bob"])
    r = client.get("/approvals/REM-99")
    assert r.status_code == 404 and "REM-99 does not exist" in r.text
    bad = client.get("/remediations/nine")
    assert bad.status_code == 422 and "not a remediation id" in bad.text.replace("&#39;", "'")


def test_tampered_cookies_and_revoked_tokens_end_the_session(
    client: TestClient, place: Place
) -> None:
    login(client, place.tokens["cat"])
    cookie = client.cookies["jupiter_session"]
    flipped = cookie[:20] + ("A" if cookie[20] != "A" else "B") + cookie[21:]
    client.cookies.set("jupiter_session", flipped)
    assert client.get("/approvals").status_code == 303
    client.cookies.set("jupiter_session", cookie)
    assert client.get("/approvals").status_code == 200
    with place.engine() as eng:
        token_id = place.tokens["cat"].split("_")[1]
        new = eng.create_token(user="cat", label="spare")
        eng.revoke_token(token_id)
    try:
        assert client.get("/approvals").status_code == 303
    finally:
        place.tokens["cat"] = new["token"]


def test_logout_ends_the_session(client: TestClient, place: Place) -> None:
    csrf = login(client, place.tokens["bob"])
    r = client.post("/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "jupiter_session" not in client.cookies
    assert client.get("/approvals").status_code == 303


def test_pages_show_the_workspace(client: TestClient, place: Place) -> None:
    login(client, place.tokens["root"])
    inbox = client.get("/approvals").text
    assert f'href="/approvals/{place.rem}"' in inbox and "0 of 2" in inbox
    review = client.get(f"/approvals/{place.rem}").text
    assert 'class="diff"' in review and "PermitRootLogin" in review
    assert "all staging tests passed" in review  # the checklist
    rem = client.get(f"/remediations/{place.rem}").text
    assert "awaiting_approval" in rem and "SNAP-REM-" in rem and 'id="timeline"' in rem
    found = client.get("/findings?severity=high")
    assert found.status_code == 200
    sev = re.findall(r'class="sev sev-(\w+)"', found.text)
    assert sev and set(sev) == {"high"}
    refused = client.get("/findings?severity=urgent")
    assert refused.status_code == 422 and "unknown severity" in refused.text
    dash = client.get("/dashboard").text
    assert dash.count("<svg") == 5 and "Open findings by severity" in dash
    audit = client.get("/audit?action=remediation").text
    assert "remediation." in audit and 'id="audit"' in audit
    assert client.get("/exceptions").status_code == 200


def test_exceptions_are_requested_and_decided_by_different_people(
    client: TestClient, place: Place
) -> None:
    with place.engine() as eng:
        finding = eng.list_findings(asset="web-01", severity="high")[0]["id"]
    csrf = login(client, place.tokens["ann"])
    r = client.post(
        "/exceptions",
        data={
            "csrf": csrf,
            "finding": str(finding),
            "reason": "legacy client",
            "ticket": "SEC-1",
            "expires": (date.today() + timedelta(days=20)).isoformat(),
        },
    )
    assert r.status_code == 303, r.text
    with place.engine() as eng:
        waiver = eng.list_exceptions()[-1]
    assert waiver["requested_by"] == "ann" and waiver["status"] == "requested"
    csrf = login(client, place.tokens["root"])
    assert (
        client.post(f"/exceptions/{waiver['id']}/approve", data={"csrf": csrf}).status_code == 303
    )
    with place.engine() as eng:
        assert eng.list_exceptions()[-1]["status"] == "approved"
        assert eng.get_finding(str(finding))["status"] == "excepted"


def test_mount_is_idempotent(place: Place) -> None:
    app = place.app()
    routes = len(app.routes)
    mount(app)
    assert len(app.routes) == routes
    assert app.state.console_mounted
    app.state.server.close()


def test_session_cookie_is_sealed_not_signed_only(place: Place, tmp_path: Path) -> None:
    app = place.app()
    server = app.state.server
    _, value = sessions.issue(server, "bob", place.tokens["bob"].split("_")[1])
    assert "bob" not in value
    assert sessions.read(server, value) is not None
    assert sessions.read(server, value + "x") is None
    assert sessions.read(server, "") is None
    server.close()


def test_a_stale_plan_hash_is_refused(client: TestClient, place: Place) -> None:
    csrf = login(client, place.tokens["bob"])
    r = client.post(f"/approvals/{place.rem}/approve", data={"csrf": csrf, "plan_hash": "0" * 64})
    assert r.status_code == 403 and "plan changed" in r.text
    with place.engine() as eng:
        assert eng.show_approval(place.rem)["verdicts"] == []


@pytest.mark.postgres
def test_the_console_on_postgresql(pg_schema_url: str, tmp_path: Path) -> None:
    from jupiter.api.app import create_app
    from jupiter.engine import Engine
    from jupiter.workspace import Workspace

    home = tmp_path / "home"
    with Engine(Workspace(home, pg_schema_url), actor="root") as admin:
        admin.init()
        admin.add_user("vic", ["viewer"])
        token = admin.create_token(user="vic")["token"]
    app = create_app(home, pg_schema_url)
    mount(app)
    with TestClient(app, follow_redirects=False) as pg_client:
        csrf = login(pg_client, token)
        for path in ("/dashboard", "/findings", "/remediations", "/exceptions"):
            assert pg_client.get(path).status_code == 200, path
        assert "The hash chain verifies" in pg_client.get("/audit?verify=1").text
        assert pg_client.post("/logout", data={"csrf": csrf}).status_code == 303
    app.state.server.close()


def test_a_rejection_without_a_reason_is_refused(client: TestClient, place: Place) -> None:
    csrf = login(client, place.tokens["bob"])
    r = client.post(f"/approvals/{place.rem}/reject", data={"csrf": csrf, "comment": "  "})
    assert r.status_code == 422 and "a rejection needs a" in r.text
    with place.engine() as eng:
        assert eng.remediations.show(place.rem).status == "awaiting_approval"
    listing = client.get("/remediations").text
    assert f'href="/remediations/{place.rem}"' in listing and "awaiting_approval" in listing
