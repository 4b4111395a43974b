"""The staging test (the remediation runner's ``test`` stage) on real
copies of examples/host: sshd fixes validated by the real ``sshd -t``."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.health.model import CommandProbe, HealthConfig
from jupiter.models import AssetSpec, Environment
from jupiter.plugins.sshd.validate import find_sshd
from jupiter.store import assets as asset_repo
from jupiter.workflows.definitions import ALL_CHECKS
from jupiter.workflows.staging import StagingReport, run_staging_test
from tests.conftest import ROOT, need_service
from tests.engine.test_fix_and_rollback import tree_state

SSHD = ["config.ssh"]
# One rule where the whole sshd set is not the point: fewer sshd -t runs.
ROOT_LOGIN = ["SSHD-ROOT-LOGIN"]


def _host(path: Path) -> Path:
    shutil.copytree(ROOT / "examples/host", path, symlinks=True)
    return path


def _asset(engine: Engine, asset_id: str, root: Path, env: Environment) -> AssetSpec:
    spec = AssetSpec(id=asset_id, environment=env, group="web", connection=f"local:{root}")
    with engine.db.transaction() as s:
        asset_repo.upsert_asset(s, spec)
    return spec


def _test(engine: Engine, prod: list[str], stg: list[str], **kw: object) -> StagingReport:
    args: dict[str, object] = {
        "production_assets": prod,
        "staging_assets": stg,
        "finding_rules": SSHD,
        "raw_params": [],
        "checks": list(ALL_CHECKS),
        "health": HealthConfig(interval=0.01, baseline_samples=1, samples=1),
        "timeout": 120.0,
        "subject": "REM-1",
    }
    args.update(kw)
    return run_staging_test(engine, **args)  # type: ignore[arg-type]


def _test_one_rule(engine: Engine, prod: list[str], stg: list[str], **kw: object) -> StagingReport:
    return _test(engine, prod, stg, **{"finding_rules": ROOT_LOGIN, **kw})


def _by_name(report: StagingReport) -> dict[str, dict[str, object]]:
    return {c.name: c.to_json() for c in report.checks}


@pytest.fixture
def need_sshd() -> None:
    need_service(find_sshd() is not None, "sshd is not installed; run scripts/services.sh")


def test_on_a_staging_asset_every_check_passes_and_the_change_stays(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    stg = _host(tmp_path / "stg")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    spec = _asset(sqlite_engine, "web-stg", stg, Environment.STAGING)
    spec = spec.model_copy(
        update={"tests": ["grep", "-q", "^PermitRootLogin no", "etc/ssh/sshd_config"]}
    )
    prod_before = tree_state(prod)

    report = _test(sqlite_engine, ["web1"], ["web-stg"], asset_specs={"web-stg": spec})

    checks = _by_name(report)
    assert report.ready_for_production, report.to_json()
    assert report.target == "web-stg"
    assert report.tests_passed == report.tests_run == 6  # health: no probes declared
    assert checks["health"]["outcome"] == "skipped"
    assert "sshd -t" in str(checks["validator"]["evidence"])
    assert checks["asset_tests"]["outcome"] == "passed"
    assert "SSHD-ROOT-LOGIN" in str(checks["finding_gone"]["evidence"])
    # The change stays applied on staging (it mirrors production) ...
    assert "PermitRootLogin no" in (stg / "etc/ssh/sshd_config").read_text()
    assert report.runs[0]["run"] != report.runs[0]["rehearsed_run"]
    # ... and production was never touched.
    assert tree_state(prod) == prod_before
    entries = [e for e in list(sqlite_engine.audit_export()) if e["action"] == "test.check"]
    assert [e["data"]["name"] for e in entries] == [c.name for c in report.checks]
    assert all(e["subject"] == "REM-1" for e in entries)
    assert sqlite_engine.audit_verify().ok
    assert report.to_json()["checks"][0]["outcome"] in ("passed", "failed", "skipped")


def test_without_staging_a_throw_away_copy_is_tested_and_deleted(
    engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    _asset(engine, "web1", prod, Environment.PROD)
    prod_before = tree_state(prod)

    report = _test(engine, ["web1"], [])

    assert report.ready_for_production, report.to_json()
    assert report.target == "throw-away copy of web1"
    assert tree_state(prod) == prod_before, "production must stay byte-identical"
    assert not list((engine.workspace.home / "staging").glob("copy-*")), "copy not deleted"
    # Rehearsal: rolled back to the snapshot, which is production's own bytes.
    rehearsal = _by_name(report)["rollback_rehearsal"]
    assert rehearsal["outcome"] == "passed"
    paths = rehearsal["details"]["paths"]  # type: ignore[index]
    assert "etc/ssh/sshd_config" in paths
    for path, h in paths.items():
        original = hashlib.sha256((prod / path).read_bytes()).hexdigest()
        assert h["snapshot"] == h["after_rollback"] == original
        assert h["applied"] == h["after_reapply"] != original
    # The copy's findings are its own asset's, never production's.
    assert {f["asset"] for f in engine.list_findings(status="verified")} == {"web1.staging-copy"}


def test_a_failing_asset_test_makes_it_not_ready(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    spec = _asset(sqlite_engine, "web1", prod, Environment.PROD)
    spec = spec.model_copy(update={"tests": ["false"]})

    report = _test_one_rule(
        sqlite_engine,
        ["web1"],
        [],
        asset_specs={"web1": spec},
        checks=["validator", "asset_tests"],
    )

    checks = _by_name(report)
    assert checks["asset_tests"]["outcome"] == "failed"
    assert checks["asset_tests"]["evidence"] == "'false' exited 1"
    assert (report.tests_run, report.tests_passed) == (2, 1)
    assert not report.ready_for_production
    assert "asset_tests" in report.reason


def test_a_plan_the_validator_rejects_fails_and_staging_keeps_its_config(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    stg = _host(tmp_path / "stg")
    # Staging's config carries a line sshd -t refuses: every candidate fails.
    extra = stg / "etc/ssh/sshd_config.d/50-cloud-init.conf"
    extra.write_text(extra.read_text() + "NoSuchSshdOption yes\n")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    _asset(sqlite_engine, "web-stg", stg, Environment.STAGING)
    stg_before = tree_state(stg)

    report = _test_one_rule(sqlite_engine, ["web1"], ["web-stg"])

    checks = _by_name(report)
    assert checks["validator"]["outcome"] == "failed"
    assert "NoSuchSshdOption" in str(checks["validator"]["evidence"])
    assert checks["rollback_rehearsal"]["outcome"] == "skipped"
    assert checks["finding_gone"]["outcome"] == "failed"
    assert not report.ready_for_production
    assert tree_state(stg) == stg_before, "a rejected plan must not reach staging"


def test_health_probes_on_staging_are_judged_or_reported_unavailable(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    stg = _host(tmp_path / "stg")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    spec = _asset(sqlite_engine, "web-stg", stg, Environment.STAGING)
    # Healthy before the change, unhealthy after it (the fix removes the line).
    spec = spec.model_copy(
        update={
            "probes": [
                CommandProbe(name="alive", argv=["true"]),
                CommandProbe(
                    name="root-login",
                    argv=["grep", "-q", "^PermitRootLogin yes", "{root}/etc/ssh/sshd_config"],
                ),
            ]
        }
    )
    # Latency is not what this test judges: a loaded machine varies a lot.
    config = HealthConfig(
        interval=0.01, baseline_samples=3, samples=3, judge="threshold", latency_ratio=1000
    )

    report = _test_one_rule(
        sqlite_engine,
        ["web1"],
        ["web-stg"],
        asset_specs={"web-stg": spec},
        checks=["health"],
        health=config,
    )

    health = _by_name(report)["health"]
    assert health["outcome"] == "failed", health
    assert "root-login" in str(health["evidence"])
    assert len(health["details"]["baseline"]) == 6  # type: ignore[index]
    assert not report.ready_for_production


def test_healthy_probes_pass_under_the_default_statistical_judge(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    stg = _host(tmp_path / "stg")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    spec = _asset(sqlite_engine, "web-stg", stg, Environment.STAGING)
    probe = CommandProbe(name="config", argv=["test", "-f", "{root}/etc/ssh/sshd_config"])
    spec = spec.model_copy(update={"probes": [probe]})

    report = _test_one_rule(
        sqlite_engine,
        ["web1"],
        ["web-stg"],
        asset_specs={"web-stg": spec},
        checks=["health"],
        health=HealthConfig(interval=0.01),
    )

    health = _by_name(report)["health"]
    assert health["outcome"] == "passed", health
    assert report.ready_for_production


def test_a_probe_that_cannot_work_is_refused_before_anything_changes(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    prod = _host(tmp_path / "prod")
    stg = _host(tmp_path / "stg")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    spec = _asset(sqlite_engine, "web-stg", stg, Environment.STAGING)
    spec = spec.model_copy(update={"probes": [CommandProbe(argv=["no-such-program-xyz"])]})
    before = tree_state(stg)
    with pytest.raises(InputError, match="no-such-program-xyz"):
        _test(sqlite_engine, ["web1"], ["web-stg"], asset_specs={"web-stg": spec})
    assert tree_state(stg) == before


def test_bad_input_is_refused_before_anything_changes(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    prod = _host(tmp_path / "prod")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    _asset(sqlite_engine, "web2", tmp_path, Environment.PROD)
    before = tree_state(prod)
    with pytest.raises(InputError, match="production asset"):
        _test(sqlite_engine, ["web1"], ["web2"])
    with pytest.raises(InputError, match="unknown staging check"):
        _test(sqlite_engine, ["web1"], [], checks=["validator", "vibes"])
    with sqlite_engine.db.transaction() as s:
        asset_repo.upsert_asset(s, AssetSpec(id="bare", environment=Environment.STAGING))
    with pytest.raises(InputError, match="no connection"):
        _test(sqlite_engine, ["web1"], ["bare"])
    _asset(sqlite_engine, "twin", prod, Environment.STAGING)
    _asset(sqlite_engine, "inside", prod / "etc", Environment.STAGING)
    os.symlink(prod, tmp_path / "link")
    _asset(sqlite_engine, "linked", tmp_path / "link", Environment.STAGING)
    for name in ("twin", "inside", "linked"):
        with pytest.raises(InputError, match="shares files with a production asset"):
            _test(sqlite_engine, ["web1"], [name])
    assert tree_state(prod) == before
    assert not [e for e in list(sqlite_engine.audit_export()) if e["action"] == "test.check"]


def test_the_rehearsal_rehashes_instead_of_trusting_the_rollback(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)

    def claims_success(run_id: int, **kw: object) -> dict[str, object]:
        return {"rollback_run": 0, "verified": True, "mismatches": [], "restored": []}

    monkeypatch.setattr(sqlite_engine, "rollback", claims_success)
    report = _test_one_rule(sqlite_engine, ["web1"], [], checks=["rollback_rehearsal"])

    rehearsal = _by_name(report)["rollback_rehearsal"]
    assert rehearsal["outcome"] == "failed"
    assert "etc/ssh/sshd_config" in str(rehearsal["evidence"])
    assert not report.ready_for_production


def test_checks_reached_after_the_timeout_fail(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    report = _test_one_rule(sqlite_engine, ["web1"], [], checks=["validator"], timeout=0.001)
    check = _by_name(report)["validator"]
    assert check["outcome"] == "failed" and "timeout" in str(check["evidence"])


def test_a_throw_away_copy_of_an_ssh_target(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, need_sshd: None
) -> None:
    from tests.sshserver import running_server

    remote = _host(tmp_path / "remote-root")
    before = tree_state(remote)
    with running_server(tmp_path / "server") as server:
        monkeypatch.setenv("JUPITER_SSH_KEY", str(server.client_key))
        monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(server.known_hosts))
        connection = f"ssh:{server.username}@{server.host}:{server.port}{remote}"
        with sqlite_engine.db.transaction() as s:
            asset_repo.upsert_asset(
                s, AssetSpec(id="far", environment=Environment.PROD, connection=connection)
            )
        report = _test_one_rule(
            sqlite_engine, ["far"], [], checks=["validator", "finding_gone", "rollback_rehearsal"]
        )
    assert report.ready_for_production, report.to_json()
    assert report.target == "throw-away copy of far"
    assert report.runs[0]["asset"] == "far.staging-copy"
    assert tree_state(remote) == before, "the SSH production target must stay byte-identical"


def test_production_findings_are_carried_to_the_copy_and_stay_open(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    sqlite_engine.scan(str(prod), asset="web1")
    open_before = {f["id"] for f in sqlite_engine.list_findings(asset="web1", status="open")}
    assert open_before

    first = _test_one_rule(sqlite_engine, ["web1"], [], checks=["finding_gone"])
    # A second test re-opens what the first one fixed on the copy and tries again.
    second = _test_one_rule(sqlite_engine, ["web1"], [], checks=["finding_gone"])

    assert first.ready_for_production and second.ready_for_production
    assert second.runs[0]["applied"] == first.runs[0]["applied"] > 0
    carried = [
        e["data"]["findings_carried"]
        for e in sqlite_engine.audit_export()
        if e["action"] == "asset.staging_copy"
    ]
    assert carried == [len(open_before)] * 2
    still = {f["id"] for f in sqlite_engine.list_findings(asset="web1", status="open")}
    assert still == open_before, "a test on a copy must not change production's findings"


def test_every_staging_asset_of_the_group_is_tested(
    sqlite_engine: Engine, tmp_path: Path, need_sshd: None
) -> None:
    prod = _host(tmp_path / "prod")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    for name in ("stg-a", "stg-b"):
        _asset(sqlite_engine, name, _host(tmp_path / name), Environment.STAGING)

    report = _test_one_rule(
        sqlite_engine,
        ["web1"],
        ["stg-a", "stg-b"],
        checks=["validator", "finding_gone"],
        raw_params={"sshd-hardening": {"level": "baseline"}},
    )

    assert report.ready_for_production, report.to_json()
    assert report.target == "stg-a, stg-b"
    assert [(c.name, c.target) for c in report.checks] == [
        ("validator", "stg-a"),
        ("finding_gone", "stg-a"),
        ("validator", "stg-b"),
        ("finding_gone", "stg-b"),
    ]
    assert (report.tests_run, report.tests_passed) == (4, 4)
    for name in ("stg-a", "stg-b"):
        assert "PermitRootLogin no" in (tmp_path / name / "etc/ssh/sshd_config").read_text()


def test_an_unreachable_staging_asset_fails_the_test(sqlite_engine: Engine, tmp_path: Path) -> None:
    prod = _host(tmp_path / "prod")
    gone = tmp_path / "gone"
    gone.mkdir()
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    _asset(sqlite_engine, "stg", gone, Environment.STAGING)
    gone.rmdir()

    report = _test(sqlite_engine, ["web1"], ["stg"], checks=["validator", "finding_gone"])

    outcomes = [(c.name, c.outcome) for c in report.checks]
    assert outcomes == [("validator", "failed"), ("finding_gone", "skipped")]
    assert "could not be opened" in report.checks[0].evidence
    assert not report.ready_for_production and report.runs[0]["status"] == "error"


@pytest.mark.soak
def test_postgres_fixes_with_generated_keys_on_a_throw_away_copy(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """The PostgreSQL validator starts a real server; a generated TLS key is
    compared by existence (new bytes on every apply), everything else by hash."""
    from jupiter.plugins.postgres.server import find_postgres, server_account

    account = server_account()
    why = account if isinstance(account, str) else "no postgres binary found"
    need_service(
        find_postgres() is not None and not isinstance(account, str),
        f"no PostgreSQL server to run here ({why})",
    )
    prod = _host(tmp_path / "prod")
    _asset(sqlite_engine, "db1", prod, Environment.PROD)
    before = tree_state(prod)

    report = _test(sqlite_engine, ["db1"], [], finding_rules=["config.database"])

    checks = _by_name(report)
    assert report.ready_for_production, report.to_json()
    assert "postgres" in str(checks["validator"]["evidence"])
    dry = checks["dry_run_matches"]["details"]["steps"]  # type: ignore[index]
    assert any(step["generated"] for step in dry)
    paths = checks["rollback_rehearsal"]["details"]["paths"]  # type: ignore[index]
    generated = [p for p, h in paths.items() if h.get("generated")]
    assert generated and all(paths[p]["snapshot"] is None for p in generated)
    assert tree_state(prod) == before


@pytest.mark.soak
def test_an_ssh_staging_asset_keeps_the_change_and_runs_its_tests_there(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, need_sshd: None
) -> None:
    from tests.sshserver import running_server

    prod = _host(tmp_path / "prod")
    remote = _host(tmp_path / "remote-stg")
    _asset(sqlite_engine, "web1", prod, Environment.PROD)
    with running_server(tmp_path / "server") as server:
        monkeypatch.setenv("JUPITER_SSH_KEY", str(server.client_key))
        monkeypatch.setenv("JUPITER_KNOWN_HOSTS", str(server.known_hosts))
        spec = AssetSpec(
            id="stg-far",
            environment=Environment.STAGING,
            connection=f"ssh:{server.username}@{server.host}:{server.port}{remote}",
            tests=["grep", "-q", "^PermitRootLogin no", "etc/ssh/sshd_config"],
        )
        with sqlite_engine.db.transaction() as s:
            asset_repo.upsert_asset(s, spec)
        report = _test_one_rule(
            sqlite_engine,
            ["web1"],
            ["stg-far"],
            checks=["validator", "rollback_rehearsal", "finding_gone", "asset_tests"],
            asset_specs={"stg-far": spec},
        )
    assert report.ready_for_production, report.to_json()
    assert _by_name(report)["asset_tests"]["outcome"] == "passed"
    assert "PermitRootLogin no" in (remote / "etc/ssh/sshd_config").read_text()
