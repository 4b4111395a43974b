"""``jupiter outbox``, ``stats`` and ``metrics`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.integrations.helpers import engine_with, raise_event
from tests.integrations.servers import closed_port


def test_outbox_list_dispatch_retry_purge_stats_metrics(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"http://127.0.0.1:{closed_port()}/hook"
    config = (
        f"channels:\n  hook: {{type: webhook, url: '{url}'}}\n"
        "routes:\n  - {events: ['*'], channels: [hook]}\n"
        "dispatch: {max_attempts: 1, timeout_s: 1}\n"
    )
    with engine_with(tmp_path, config) as engine:
        raise_event(engine, "run.failed", {"password": "hunter2-secret"})
    done = run_cli("outbox", "dispatch", "--once", "--json", home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dead"] == 1
    listed = run_cli("outbox", "list", "--status", "dead", "--json", home=home)
    out = json.loads(listed.stdout)
    assert out["counts"] == {"dead": 1}
    (row,) = out["rows"]
    assert row["event"] == "fix.failed" and "cannot be reached" in row["last_error"]
    assert "hunter2" not in listed.stdout
    bad = run_cli("outbox", "retry", "99", home=home)
    assert bad.returncode == 2 and "no outbox row 99" in bad.stderr
    again = run_cli("outbox", "retry", "--dead", "--json", home=home)
    assert json.loads(again.stdout) == {"retried": [row["id"]]}
    stats = run_cli("stats", "--since", "30d", "--json", home=home)
    assert json.loads(stats.stdout)["remediations_performed"] == 1
    metrics = run_cli("metrics", home=home)
    assert 'jupiter_outbox_pending{channel="hook"} 1.0' in metrics.stdout


def test_purge_removes_old_finished_rows_only(tmp_path: Path) -> None:
    from datetime import timedelta

    import pytest

    from jupiter.errors import InputError
    from tests.integrations.helpers import outbox_rows

    config = (
        "channels:\n  hook: {type: webhook, url: 'http://127.0.0.1:9/'}\n"
        "routes:\n  - {events: ['*'], channels: [hook]}\n"
    )
    with engine_with(tmp_path, config) as engine:
        raise_event(engine, "run.failed")
        raise_event(engine, "run.failed")
        with engine.db.transaction() as s:
            first, second = outbox_rows(engine)
            s.get(type(first), first.id).status = "delivered"  # type: ignore[union-attr]
        assert engine.outbox_purge("delivered", timedelta(days=1)) == 0  # too recent
        assert engine.outbox_purge("delivered", timedelta(0)) == 1
        assert [r.id for r in outbox_rows(engine)] == [second.id]
        with pytest.raises(InputError, match="delivered or dead"):
            engine.outbox_purge("pending", timedelta(0))
        assert engine.routing.to_json()["channels"] == [
            {"name": "hook", "type": "webhook", "fields": ["url"]}
        ]
        with pytest.raises(InputError, match="neither a date"):
            engine.statistics("yesterday")
