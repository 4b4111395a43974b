"""The console in a real browser: Debian's Chromium driven by Playwright
against a real uvicorn server on loopback.

The scenario of issue 12: the requester logs in and sees the pending
approval, opens the diff and is refused by separation of duties; two
approvers approve (the policy wants two for prod) and the deployment
completes; the operator rolls back one path on one target. A screenshot of
each page is saved under tests/artifacts/console/ (gitignored).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_service
from tests.console.consolelib import Place, prepare

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
SSHD = "etc/ssh/sshd_config"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Place, str]]:
    need_service(
        CHROMIUM.exists(),
        f"Chromium is not installed at {CHROMIUM}; run scripts/services.sh (apt chromium)",
    )
    import uvicorn

    place = prepare(tmp_path_factory.mktemp("browser"), targets=2)
    port = free_port()
    config = uvicorn.Config(place.app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield place, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_approve_deploy_and_roll_back_one_path_in_chromium(served: tuple[Place, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    place, base = served
    rem = place.rem
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = (ROOT / "examples/host" / SSHD).read_text()
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            # Our own script must run under our CSP: any violation or script
            # error shows up here.
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            t0 = time.monotonic()
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("dialog", lambda d: d.accept())

            def shot(name: str) -> None:
                print(f"{time.monotonic() - t0:6.2f}s {name}")
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

            def log_in(user: str, start: str) -> None:
                page.goto(base + start)
                expect(page).to_have_url(f"{base}/login?next={start}")
                page.fill("#token", place.tokens[user])
                page.click("#login")
                expect(page.locator("#who")).to_have_text(user)

            def log_out() -> None:
                page.click("form.logout button")
                expect(page.locator("#token")).to_be_visible()

            # 1. The requester sees the pending approval and its diff...
            log_in("ann", "/approvals")
            row = page.locator("#approvals tbody tr", has_text=rem)
            expect(row).to_contain_text("0 of 2")
            shot("01-approvals-inbox")
            row.locator("a").click()
            expect(page.locator("pre.diff").first).to_be_visible()
            step = page.locator("details.step", has_text="SSHD-ROOT-LOGIN").first
            if step.get_attribute("open") is None:
                step.locator("summary").click()
            expect(step.locator("pre.diff")).to_be_visible()
            expect(step.locator("pre.diff")).to_contain_text("-PermitRootLogin yes")
            step.scroll_into_view_if_needed()
            expect(page.locator("#checklist")).to_contain_text("all staging tests passed")
            shot("02-approval-diff")
            # ...but may not approve what she requested.
            page.click("#approve")
            expect(page.locator("#problem")).to_contain_text("separation of duties")
            shot("03-separation-of-duties")
            log_out()

            # 2. A first approver: one of the two the policy wants for prod.
            log_in("bob", f"/approvals/{rem}")
            page.fill("#approve-form input[name=comment]", "diff reviewed")
            page.click("#approve")
            expect(page.locator("#verdicts")).to_contain_text("approve by bob")
            expect(page.locator("main")).to_contain_text("1 of 2 approval(s)")
            shot("04-first-approval")
            log_out()
            assert (place.roots[0] / SSHD).read_text() == original

            # 3. The second approval: the deployment runs and completes.
            log_in("cat", f"/approvals/{rem}")
            page.click("#approve")
            expect(page).to_have_url(f"{base}/remediations/{rem}")
            expect(page.locator("#rem-status")).to_have_text("completed")
            for asset in ("web-01", "web-02"):
                expect(page.locator(f'#targets tr[data-asset="{asset}"]')).to_contain_text(
                    "deployed"
                )
            expect(page.locator("#timeline")).to_contain_text("applied and verified")
            # The check results: the real validators ran on each candidate.
            checks = page.locator("table.checks")
            expect(checks).to_have_count(2)
            expect(checks.first).to_contain_text("sshd -t")
            expect(checks.first).to_contain_text("fixed and verified by re-detection")
            shot("05-deployment-completed")
            log_out()
            fixed = [(r / SSHD).read_text() for r in place.roots]
            assert all(text != original for text in fixed)

            # 4. The operator rolls back one path on one target.
            log_in("ann", f"/remediations/{rem}")
            page.select_option("#rollback select[name=target]", "web-01")
            page.check(f'#rollback input[name=path][value="{SSHD}"]')
            page.click("#rollback-button")
            expect(page).to_have_url(f"{base}/remediations/{rem}")
            expect(page.locator("#rollback-button")).to_be_enabled()
            shot("06-rolled-back-one-path")
            assert (place.roots[0] / SSHD).read_text() == original
            assert (place.roots[1] / SSHD).read_text() == fixed[1]
            assert "PermitRootLogin" in (place.roots[0] / SSHD).read_text()
            log_out()

            # 5. The other pages, as the admin.
            log_in("root", "/dashboard")
            expect(page.locator("svg.chart")).to_have_count(5)
            shot("07-dashboard")
            page.goto(base + "/findings?severity=high")
            expect(page.locator("#findings tbody tr").first).to_be_visible()
            shot("08-findings")
            page.goto(base + "/audit")
            page.click("#verify")
            expect(page.locator("#verified")).to_contain_text("The hash chain verifies")
            expect(page.locator("#audit")).to_contain_text("remediation.partially_rolled_back")
            shot("09-audit")
            page.goto(base + "/exceptions")
            shot("10-exceptions")
        finally:
            browser.close()

    print(f"console screenshots: {ARTIFACTS}")
    # HTTP statuses are asserted above (the 403 page is expected); what
    # must not appear is a blocked or failing script.
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []
    with place.engine() as eng:
        acts = [e["action"] for e in eng.audit_export()]
    assert acts.count("remediation.approve_recorded") == 2
    assert "remediation.partially_rolled_back" in acts
