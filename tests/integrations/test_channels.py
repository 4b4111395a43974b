"""Each channel against a local server that checks the real request shape."""

from __future__ import annotations

import base64
import re
import ssl
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.integrations.dispatch import Dispatcher, PassResult
from jupiter.store.tables import utcnow
from tests.integrations.helpers import engine_with, outbox_rows, raise_event
from tests.integrations.servers import (
    FakeHec,
    FakeJira,
    http_server,
    syslog_tcp,
    syslog_udp,
    wait_for,
)

WEB = {"id": "web-1", "environment": "prod", "group_name": "payments"}


def dispatch(engine: Engine, later: timedelta = timedelta(0)) -> PassResult:
    return Dispatcher(engine.db, engine.routing).dispatch_once(utcnow() + later)


def route(channel: str, body: str) -> str:
    return (
        f"channels:\n  {channel}: {body}\nroutes:\n  - {{events: ['*'], channels: [{channel}]}}\n"
    )


def test_slack_gets_a_block_kit_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_server(lambda _r: (200, b"ok")) as rec:
        monkeypatch.setenv("JUPITER_SLACK_WEBHOOK_URL", rec.url + "/services/T0/B0/abcdef")
        with engine_with(tmp_path, None) as engine:  # the environment alone configures it
            raise_event(engine, "run.failed", asset=WEB)
            assert dispatch(engine).delivered == 1
    (req,) = rec.requests
    assert (
        req.path == "/services/T0/B0/abcdef" and req.headers["content-type"] == "application/json"
    )
    msg = req.json()
    assert msg["text"].startswith(":x: [HIGH] fix.failed run:")
    kinds = [b["type"] for b in msg["blocks"]]
    assert kinds[0] == "header" and "section" in kinds and kinds[-1] == "context"
    fields = " ".join(f["text"] for f in msg["blocks"][1]["fields"])
    assert "*Asset*\nweb-1" in fields and "*Environment*\nprod" in fields


def jira_config(url: str, version: str = "2", resolve: str = "Resolved") -> str:
    return route(
        "jira",
        f"{{type: jira, url: '{url}', user: bot@example.com, token_env: JIRA_TOKEN, "
        f"project: SEC, api_version: '{version}', resolve_transition: '{resolve}'}}",
    )


@pytest.mark.parametrize("version", ["2", "3"])
def test_jira_ticket_is_created_commented_resolved_and_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "jira-api-token-1")
    jira = FakeJira()
    with http_server(jira) as rec, engine_with(tmp_path, jira_config(rec.url, version)) as engine:
        run = raise_event(engine, "run.failed", asset=WEB)  # creates the change ticket
        assert dispatch(engine).delivered == 1
        (key,) = jira.issues
        issue = jira.issues[key]
        assert issue["project"] == {"key": "SEC"} and issue["issuetype"] == {"name": "Task"}
        assert issue["status"] == "Open" and len(issue["comments"]) == 1
        if version == "3":
            assert issue["description"]["type"] == "doc"  # Atlassian document format
        # The same subject's later events land on the same ticket.
        from jupiter import audit

        with engine.db.transaction() as s:
            audit.record(s, "tester", "run.succeeded", f"run:{run}", {})
        assert dispatch(engine).delivered == 1
        assert list(jira.issues) == [key] and issue["status"] == "Resolved"
        with engine.db.transaction() as s:
            audit.record(s, "tester", "run.rolled_back", f"run:{run}", {})
        assert dispatch(engine).delivered == 1
        assert issue["status"] == "Reopened" and len(issue["comments"]) == 3
    expected = "Basic " + base64.b64encode(b"bot@example.com:jira-api-token-1").decode()
    assert jira.auth == {expected}
    assert all(r.path.startswith(f"/rest/api/{version}/") for r in rec.requests)


def test_jira_redelivery_adds_no_second_comment_or_ticket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "t")
    jira = FakeJira()
    with http_server(jira) as rec, engine_with(tmp_path, jira_config(rec.url)) as engine:
        raise_event(engine, "run.succeeded", asset=WEB)
        row = outbox_rows(engine)[0]
        from jupiter.integrations.channels import Delivery, build

        channel = build(engine.routing.channels["jira"], engine.routing.dispatch)
        item = Delivery(row.id, row.key, row.event, row.severity, row.subject, row.payload, 1)
        channel.deliver(item)
        channel.deliver(item)  # the dispatcher died before it recorded the first
        (issue,) = jira.issues.values()
        assert len(issue["comments"]) == 1 and issue["status"] == "Resolved"


def test_jira_unknown_transition_is_dead_at_once_naming_the_available_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "t")
    jira = FakeJira()
    config = jira_config("{url}", resolve="Done")
    with (
        http_server(jira) as rec,
        engine_with(tmp_path, config.replace("{url}", rec.url)) as engine,
    ):
        raise_event(engine, "run.succeeded", asset=WEB)
        assert dispatch(engine).dead == 1
        row = outbox_rows(engine)[0]
        assert row.attempts == 1
        assert "has no transition named 'Done'; available: In Progress, Resolved" in (
            row.last_error or ""
        )


def hec_config(url: str, ack: bool = False) -> str:
    return route(
        "hec", f"{{type: splunk, url: '{url}', token_env: HEC_TOKEN, ack: {str(ack).lower()}}}"
    )


@pytest.mark.parametrize("ack", [False, True])
def test_splunk_hec_batches_events_with_the_token_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ack: bool
) -> None:
    monkeypatch.setenv("HEC_TOKEN", "11111111-2222-3333-4444-555555555555")
    hec = FakeHec("11111111-2222-3333-4444-555555555555")
    with http_server(hec) as rec, engine_with(tmp_path, hec_config(rec.url, ack)) as engine:
        raise_event(engine, "run.failed", asset=WEB)
        raise_event(engine, "rollback.verified")
        assert dispatch(engine).delivered == 2
    posts = [r for r in rec.requests if r.path == "/services/collector/event"]
    assert len(posts) == 1  # one batch
    assert [e["event"]["event"] for e in hec.events] == ["fix.failed", "rollback.verified"]
    assert {e["sourcetype"] for e in hec.events} == {"jupiter:remediation"}
    assert ("x-splunk-request-channel" in posts[0].headers) is ack
    assert any(r.path == "/services/collector/ack" for r in rec.requests) is ack


def test_splunk_refused_token_goes_dead_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEC_TOKEN", "wrong-token")
    config = hec_config("{url}") + "dispatch: {max_attempts: 2}\n"
    with (
        http_server(FakeHec("right-token")) as rec,
        engine_with(tmp_path, config.replace("{url}", rec.url)) as engine,
    ):
        raise_event(engine, "run.failed")
        dispatch(engine)
        dispatch(engine, timedelta(hours=2))
        row = outbox_rows(engine)[0]
    assert row.status == "dead" and row.attempts == 2
    assert "HTTP 401" in (row.last_error or "") and "Invalid token" in (row.last_error or "")
    assert "wrong-token" not in (row.last_error or "")


LEEF = re.compile(
    r"^<(\d+)>1 \S+ \S+ jupiter - (\S+) - LEEF:2\.0\|Jupiter\|Jupiter\|[^|]+\|(\S+)\|x09\|(.*)$"
)


def test_syslog_udp_carries_leef(tmp_path: Path) -> None:
    with syslog_udp() as (port, got):
        config = route("qradar", f"{{type: syslog, url: 'udp://127.0.0.1:{port}', format: leef}}")
        with engine_with(tmp_path, config) as engine:
            raise_event(engine, "rollback.failed", asset=WEB)
            assert dispatch(engine).delivered == 1
        wait_for(lambda: len(got) == 1)
    m = LEEF.match(got[0].decode())
    assert m, got[0]
    assert int(m.group(1)) == 20 * 8 + 2  # local4.crit
    assert m.group(2) == m.group(3) == "rollback.failed"
    attrs = dict(kv.split("=", 1) for kv in m.group(4).split("\t"))
    assert attrs["sev"] == "10" and attrs["usrName"] == "tester" and attrs["asset"] == "web-1"
    assert attrs["resource"].startswith("run:") and len(attrs["hash"]) == 64


def test_syslog_tcp_carries_cef_with_octet_counting(tmp_path: Path) -> None:
    with syslog_tcp() as (port, got):
        config = route("siem", f"{{type: syslog, url: 'tcp://127.0.0.1:{port}', format: cef}}")
        with engine_with(tmp_path, config) as engine:
            raise_event(engine, "run.failed")
            raise_event(engine, "run.succeeded")
            assert dispatch(engine).delivered == 2
        wait_for(lambda: len(got) == 2)
    texts = [g.decode() for g in got]
    assert all(" - CEF:0|Jupiter|Jupiter|" in t for t in texts)
    assert "|fix.failed|fix failed|" in texts[0] and "suser=tester" in texts[0]


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_syslog_over_tls_checks_the_server_certificate(tmp_path: Path) -> None:
    import socket

    cert, key = _self_signed(tmp_path, "localhost")
    other, _ = _self_signed(tmp_path, "someone-else")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    got: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    data = b""
                    while chunk := tls.recv(65536):
                        data += chunk
                    got.append(data)
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for ca, ok in ((other, False), (cert, True)):
            home = tmp_path / ("good" if ok else "bad")
            config = route(
                "siem", f"{{type: syslog, url: 'tcp+tls://localhost:{port}', ca_file: '{ca}'}}"
            )
            with engine_with(home, config) as engine:
                raise_event(engine, "run.failed")
                result = dispatch(engine)
                row = outbox_rows(engine)[0]
            if ok:
                assert result.delivered == 1
                wait_for(lambda: len(got) == 1)
                assert b"LEEF:2.0|Jupiter" in got[0]
            else:
                assert result.retrying == 1 and row.status == "pending"
                assert "failed the TLS handshake" in (row.last_error or "")
                assert "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")
    finally:
        listener.close()


def test_apprise_urls_reach_their_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_server(lambda _r: (200, {"ok": True})) as rec:
        target = rec.url.replace("http://", "json://") + "/notify"
        monkeypatch.setenv("JUPITER_APPRISE_URLS", target)
        with engine_with(tmp_path, None) as engine:
            raise_event(engine, "run.failed", asset=WEB)
            assert dispatch(engine).delivered == 1
    (req,) = rec.requests
    body = req.json()
    assert req.path == "/notify" and body["title"] == "Jupiter: fix.failed"
    assert "[HIGH] fix.failed" in body["message"] and body["type"] == "failure"
