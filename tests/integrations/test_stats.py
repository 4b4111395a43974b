"""Statistics and metrics match a hand-built history exactly, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jupiter.engine import Engine
from jupiter.stats import statistics
from jupiter.store.tables import AssetRow, FindingRow, RunRow, RunStepRow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)


def build_history(engine: Engine) -> None:
    engine.init()
    with engine.db.transaction() as s:
        s.add(
            AssetRow(
                id="a1",
                name="a1",
                kind="host",
                environment="prod",
                criticality=3,
                owner=None,
                tags=[],
                group_name=None,
                connection=None,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        findings = {
            "F1": ("critical", 10 * D, "verified"),
            "F2": ("high", 2 * D, "fixed"),
            "F3": ("high", 40 * D, "open"),
            "F4": ("medium", 5 * D, "open"),
            "F5": ("critical", 8 * D, "open"),
            "F6": ("low", 100 * D, "open"),
        }
        ids = {}
        for name, (severity, age, status) in findings.items():
            row = FindingRow(
                fingerprint=name * 8,
                asset_id="a1",
                rule_id=name,
                category="config",
                title=name,
                severity=severity,
                cvss_score=None,
                cvss_vector=None,
                aliases=[],
                cwe=[],
                fixed_versions=[],
                path=None,
                start_line=None,
                end_line=None,
                package=None,
                version=None,
                evidence=None,
                extra={},
                identity=None,
                first_seen=NOW - age,
                last_seen=NOW,
                status=status,
                priority=1.0,
            )
            s.add(row)
            s.flush()
            ids[name] = row.id

        def run(kind: str, status: str, started: datetime, seconds: float | None) -> int:
            r = RunRow(
                kind=kind,
                status=status,
                asset_id="a1",
                target="/t",
                actor="t",
                params={},
                summary={},
                rollback_of=None,
                started_at=started,
                finished_at=started + timedelta(seconds=seconds) if seconds is not None else None,
            )
            s.add(r)
            s.flush()
            return r.id

        r1 = run("fix", "succeeded", NOW - H, 60)
        r2 = run("fix", "failed", NOW - 2 * H, 120)
        run("fix", "running", NOW - 10 * timedelta(minutes=1), None)
        run("rollback", "verified", NOW - 30 * timedelta(minutes=1), 5)
        done = NOW - H + timedelta(seconds=60)
        for seq, (rid, finding, status) in enumerate(
            [(r1, "F1", "verified"), (r1, "F2", "verified"), (r2, "F4", "rolled_back")]
        ):
            s.add(
                RunStepRow(
                    run_id=rid,
                    seq=seq,
                    finding_id=ids[finding],
                    remediator="x",
                    rule_id=finding,
                    status=status,
                    detail="",
                    plan={},
                    plan_hash="",
                    validations=[],
                    output="",
                    commit=None,
                    started_at=done - H,
                    finished_at=done,
                )
            )


def test_statistics_match_a_hand_built_history(engine: Engine) -> None:
    build_history(engine)
    with engine.db.reading() as s:
        out = statistics(s, NOW)
    assert out["remediations_performed"] == 2
    assert out["remediation_success_rate"] == 50.0
    assert out["fix_runs"] == {"finished": 2, "succeeded": 1, "failed": 1}
    assert out["avg_run_duration_s"] == 90.0
    assert out["rollbacks_performed"] == 2
    assert out["rollbacks"] == {"manual": 1, "automatic": 1}
    assert out["vulnerabilities_fixed"] == 2
    assert out["avg_remediation_time"] == round((12 * 86400 - 2 * 3540) / 2 / 60, 2)
    assert out["mttr_hours_by_severity"] == {
        "critical": round((10 * 86400 - 3540) / 3600, 3),
        "high": round((2 * 86400 - 3540) / 3600, 3),
    }
    assert out["open_findings"] == 4
    assert out["open_by_age"] == {"0-7d": 1, "7-30d": 1, "30-90d": 1, ">90d": 1}
    assert out["sla_breaches"] == {"critical": 1, "high": 1}
    assert out["source"] == "runs"


def test_since_limits_runs_rollbacks_and_fixes(engine: Engine) -> None:
    build_history(engine)
    with engine.db.reading() as s:
        out = statistics(s, NOW, since=NOW - timedelta(minutes=90))
    assert out["fix_runs"] == {"finished": 1, "succeeded": 1, "failed": 0}
    assert out["remediation_success_rate"] == 100.0
    assert out["rollbacks"] == {"manual": 1, "automatic": 1}  # the step ended at NOW-59min
    assert out["vulnerabilities_fixed"] == 2
    with engine.db.reading() as s:
        later = statistics(s, NOW, since=NOW - timedelta(minutes=20))
    assert later["remediations_performed"] == 0 and later["remediation_success_rate"] is None
    assert later["vulnerabilities_fixed"] == 0 and later["rollbacks"]["automatic"] == 0


def test_group_limits_everything_to_its_assets(engine: Engine) -> None:
    build_history(engine)
    with engine.db.transaction() as s:
        asset = s.get(AssetRow, "a1")
        assert asset is not None
        asset.group_name = "payments"
    with engine.db.reading() as s:
        mine = statistics(s, NOW, group="payments")
        other = statistics(s, NOW, group="web")
    assert mine["remediations_performed"] == 2 and mine["open_findings"] == 4
    assert mine["vulnerabilities_fixed"] == 2 and mine["group"] == "payments"
    assert (other["remediations_performed"], other["open_findings"]) == (0, 0)
    assert other["vulnerabilities_fixed"] == 0 and other["rollbacks_performed"] == 0


def test_metrics_are_the_workspace_totals(engine: Engine) -> None:
    build_history(engine)
    text = engine.metrics_text()
    assert 'jupiter_fix_runs_total{status="succeeded"} 1.0' in text
    assert 'jupiter_fix_runs_total{status="running"} 1.0' in text
    assert 'jupiter_fix_run_duration_seconds_bucket{le="60.0"} 1.0' in text
    assert 'jupiter_fix_run_duration_seconds_bucket{le="300.0"} 2.0' in text
    assert "jupiter_fix_run_duration_seconds_sum 180.0" in text
    assert 'jupiter_rollbacks_total{kind="manual"} 1.0' in text
    assert "jupiter_vulnerabilities_fixed_total 2.0" in text
    assert 'jupiter_open_findings{severity="critical"} 1.0' in text


def test_ended_remediations_count_beside_the_runs_made_outside_them(
    sqlite_engine: Engine,
) -> None:
    from jupiter.store.tables import RemediationRow

    build_history(sqlite_engine)
    with sqlite_engine.db.transaction() as s:
        for status in ("completed", "completed", "completed", "rolled_back", "awaiting_approval"):
            s.add(
                RemediationRow(
                    status=status,
                    workflow="w",
                    definition={},
                    group_name="g",
                    findings=[],
                    params={},
                    plan_hash="",
                    actor="t",
                    facts={},
                    created_at=NOW - H,
                    updated_at=NOW - H,
                )
            )
    with sqlite_engine.db.reading() as s:
        out = statistics(s, NOW)
    # 2 finished fix runs (1 succeeded) + 4 ended remediations (3 completed).
    assert out["source"] == "runs and remediations"
    assert out["remediations_performed"] == 6 and out["remediation_success_rate"] == 66.7
    assert out["remediations"]["awaiting_approval"] == 1


def test_metrics_are_served_over_http(sqlite_engine: Engine) -> None:
    import urllib.request

    from prometheus_client import start_http_server

    from jupiter.metrics import registry

    build_history(sqlite_engine)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry(sqlite_engine.db))
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert 'jupiter_rollbacks_total{kind="automatic"} 1.0' in text
