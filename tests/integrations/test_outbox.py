"""Mapped audited changes write outbox rows in their own transaction;
routing as data; secrets never stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter import audit
from jupiter.errors import InputError
from jupiter.integrations.config import load_routing
from jupiter.integrations.events import event_for
from tests.integrations.helpers import engine_with, outbox_rows, raise_event

TWO = """
channels:
  ops: {type: webhook, url: "http://127.0.0.1:9/ops"}
  siem: {type: syslog, url: "udp://127.0.0.1:9", format: leef}
routes:
  - {events: ["fix.*", "rollback.*"], channels: [ops], min_severity: high}
  - {events: ["*"], channels: [siem], environments: [prod]}
"""


def test_a_mapped_change_writes_one_row_per_routed_channel(engine_url_two) -> None:  # type: ignore[no-untyped-def]
    engine = engine_url_two
    raise_event(engine, "run.failed", asset={"id": "web-1", "environment": "prod"})
    rows = outbox_rows(engine)
    assert [(r.channel, r.event, r.severity, r.status) for r in rows] == [
        ("ops", "fix.failed", "high", "pending"),
        ("siem", "fix.failed", "high", "pending"),
    ]
    assert rows[0].key != rows[1].key and rows[0].audit_seq == rows[1].audit_seq
    ctx = rows[0].payload["context"]
    assert ctx["asset"] == "web-1" and ctx["environment"] == "prod"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine_url_two(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    eng = engine_with(tmp_path, TWO, url)
    yield eng
    eng.close()


def test_routes_filter_by_severity_and_environment(tmp_path: Path) -> None:
    with engine_with(tmp_path, TWO) as engine:
        raise_event(engine, "run.succeeded", asset={"id": "dev-1", "environment": "dev"})
        assert outbox_rows(engine) == []  # info is below ops' floor; siem wants prod only
        raise_event(engine, "run.succeeded", asset={"id": "web-1", "environment": "prod"})
        assert [r.channel for r in outbox_rows(engine)] == ["siem"]


def test_the_row_is_part_of_the_audited_transaction(tmp_path: Path) -> None:
    with engine_with(tmp_path, TWO) as engine:
        with pytest.raises(RuntimeError), engine.db.transaction() as s:
            audit.record(s, "tester", "rollback.failed", "run:1", {})
            raise RuntimeError("the state change failed after its audit entry")
        assert outbox_rows(engine) == []
        with engine.db.transaction() as s:
            audit.record(s, "tester", "rollback.failed", "run:1", {})
        assert len(outbox_rows(engine)) == 1  # no environment: only ops (critical) takes it
        assert engine.audit_verify().ok


def test_unmapped_actions_and_unrouted_workspaces_write_nothing(tmp_path: Path) -> None:
    assert event_for("finding.status", {}) is None
    with engine_with(tmp_path, TWO) as engine:
        with engine.db.transaction() as s:
            audit.record(s, "tester", "finding.status", "finding:1", {"to": "fixed"})
        assert outbox_rows(engine) == []
    with engine_with(tmp_path / "bare", None) as bare:
        raise_event(bare, "run.failed")
        assert outbox_rows(bare) == []


def test_notify_stage_events_carry_their_severity() -> None:
    ev = event_for("event.deploy_window_missed", {"severity": "critical"})
    assert (
        ev is not None
        and ev.name == "notify.deploy_window_missed"
        and ev.severity.label == "critical"
    )


def test_secrets_come_from_env_or_file_and_never_reach_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    secret_file = tmp_path / "hec.token"
    secret_file.write_text("hec-0123456789abcdef\n")
    monkeypatch.setenv("MY_SLACK", hook)
    config = f"""
channels:
  chat: {{type: slack, url_env: MY_SLACK}}
  hec: {{type: splunk, url: "http://127.0.0.1:9", token_file: "{secret_file}"}}
routes:
  - {{events: ["*"], channels: [chat, hec]}}
"""
    with engine_with(tmp_path, config) as engine:
        routing = engine.routing
        assert routing.channels["chat"].settings["url"] == hook
        assert routing.channels["hec"].settings["token"] == "hec-0123456789abcdef"
        assert "XXXXsecret" not in str(routing.to_json())
        raise_event(engine, "run.failed", {"note": "password=hunter22", "token": "abc123"})
        rows = outbox_rows(engine)
        assert len(rows) == 2
        assert "hunter22" not in str(rows[0].payload) and "abc123" not in str(rows[0].payload)
    raw = (tmp_path / "home" / "jupiter.db").read_bytes()
    for path in (tmp_path / "home").glob("jupiter.db*"):
        raw += path.read_bytes()
    assert (
        b"XXXXsecret" not in raw and b"hec-0123456789abcdef" not in raw and b"hunter22" not in raw
    )


HOOK = "channels:\n  c: {type: webhook, url: 'http://h/'}\n"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "channels:\n  c: {type: slack, url: 'https://hooks.slack.com/x'}\n",
            "gives its secret 'url' in the file; give url_env",
        ),
        ("channels:\n  c: {type: webhook, url: 'ftp//nowhere'}\n", "is not a valid URL"),
        ("channels:\n  c: {type: syslog, url: 'udp://h:514', format: json}\n", "use leef or cef"),
        ("channels:\n  c: {type: pager}\n", "unknown type 'pager'"),
        (
            HOOK + "routes:\n  - {events: [fix.exploded], channels: [c]}\n",
            "unknown event 'fix.exploded'; use one of:",
        ),
        (
            HOOK + "routes:\n  - {events: ['*'], channels: [d]}\n",
            "channel 'd', which is not configured",
        ),
        ("channels:\n  c: {type: jira, url: 'http://h/'}\n", "has no user, token, project"),
        (
            "channels:\n  c: {type: webhook, url_env: NOPE_NOT_SET}\n",
            "$NOPE_NOT_SET, which is not set",
        ),
        ("dispatch: {max_attempts: 0}\n", "dispatch.max_attempts must be a positive number"),
    ],
)
def test_bad_configuration_is_one_clear_sentence(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "integrations.yaml").write_text(config)
    with pytest.raises(InputError) as err:
        load_routing(tmp_path, env={})
    assert message in str(err.value)
    assert "hooks.slack.com" not in str(err.value)


def test_environment_variables_configure_the_common_case(tmp_path: Path) -> None:
    routing = load_routing(
        tmp_path,
        env={
            "JUPITER_WEBHOOK_URL": "http://127.0.0.1:9/h",
            "JUPITER_WEBHOOK_SECRET": "s3",
            "JUPITER_SPLUNK_HEC_URL": "http://127.0.0.1:9",
            "JUPITER_SPLUNK_HEC_TOKEN": "t",
            "JUPITER_OUTBOX_MIN_SEVERITY": "warning",
        },
    )
    assert sorted(routing.channels) == ["splunk", "webhook"]
    assert routing.channels["webhook"].settings["secret"] == "s3"
    from jupiter.integrations.events import Severity

    assert routing.candidates("fix.failed", Severity.HIGH)
    assert not routing.candidates("fix.succeeded", Severity.INFO)
