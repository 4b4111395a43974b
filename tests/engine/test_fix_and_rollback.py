"""jupiter fix / rollback end to end on a real directory target."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.errors import InputError, NotFoundError, SnapshotError
from tests.conftest import ROOT
from tests.engine import plugins


def tree_state(root: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


@pytest.fixture
def host(tmp_path: Path) -> Path:
    dst = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", dst, symlinks=True)
    return dst


def test_fix_verifies_and_rerun_changes_nothing(engine: Engine, host: Path) -> None:
    result = engine.fix(str(host))
    statuses = {s["rule_id"]: s["status"] for s in result["steps"]}
    assert result["status"] == "succeeded"
    assert statuses["SSHD-ROOT-LOGIN"] == "verified"
    assert statuses["SSHD-MATCH-OVERRIDE"] == "needs_manual"
    assert "PermitRootLogin no" in (host / "etc/ssh/sshd_config").read_text()
    after = tree_state(host)
    again = engine.fix(str(host))
    assert again["run"] is None
    assert {s["status"] for s in again["steps"]} == {"needs_manual"}
    assert tree_state(host) == after
    ids = [f["id"] for f in engine.list_findings()]
    assert len(ids) == len(set(ids)) == len(result["steps"]), "a re-run must not duplicate findings"
    assert engine.audit_verify().ok


def test_dry_run_changes_nothing_and_its_diff_is_what_apply_does(
    engine: Engine, host: Path, tmp_path: Path
) -> None:
    before = tree_state(host)
    dry = engine.fix(str(host), dry_run=True, only=["config.ssh"])
    assert tree_state(host) == before
    assert dry["run"] is None and dry["status"] == "dry_run"
    real = engine.fix(str(host), only=["config.ssh"])
    planned = [s["diff"] for s in dry["steps"] if s["diff"]]
    applied = [s["diff"] for s in real["steps"] if s["diff"]]
    assert planned == applied
    # And the diffs, applied to the original files, give exactly the new files.
    changed = {p for p, v in tree_state(host).items() if before.get(p) != v}
    assert changed == {
        line[6:].strip() for d in planned for line in d.splitlines() if line.startswith("+++ b/")
    }


def test_what_was_confirmed_is_what_is_applied(engine: Engine, host: Path) -> None:
    """Even plans that are not deterministic (a generated TLS key) land as reviewed."""
    seen: list[dict[str, object]] = []

    def confirm(preview: list[dict[str, object]]) -> bool:
        seen.extend(preview)
        return True

    result = engine.fix(str(host), confirm=confirm)
    shown = {s["finding"]: s["plan_hash"] for s in seen if s["changes"]}
    ran = {s["finding"]: s for s in engine.show_run(result["run"])["steps"]}
    assert shown and all(ran[f]["plan_hash"] == h for f, h in shown.items())
    assert any(s["remediator"] == "postgresql-conf" for s in ran.values())


def test_full_and_partial_rollback_restore_bytes_and_modes(engine: Engine, host: Path) -> None:
    os.chmod(host / "etc/ssh/sshd_config", 0o600)
    original = tree_state(host)
    run = engine.fix(str(host))["run"]
    changed = tree_state(host)
    assert changed != original

    partial = engine.rollback(run, ["etc/ssh/sshd_config.d/50-cloud-init.conf"])
    assert partial["verified"] and not partial["full"]
    now = tree_state(host)
    assert (
        now["etc/ssh/sshd_config.d/50-cloud-init.conf"]
        == original["etc/ssh/sshd_config.d/50-cloud-init.conf"]
    )
    assert now["etc/ssh/sshd_config"] == changed["etc/ssh/sshd_config"]

    full = engine.rollback(run)
    assert full["verified"] and full["full"]
    assert tree_state(host) == original
    statuses = {f["rule_id"]: f["status"] for f in engine.list_findings()}
    assert statuses["SSHD-ROOT-LOGIN"] == "rolled_back"

    with pytest.raises(InputError, match="already rolled back"):
        engine.rollback(run)
    with pytest.raises(InputError, match="cannot be rolled back"):
        engine.rollback(full["rollback_run"])
    runs = {r["id"]: r for r in engine.list_runs()}
    assert runs[run]["status"] == "rolled_back"
    assert runs[full["rollback_run"]]["rollback_of"] == run
    actions = [e["action"] for e in engine.audit_export()]
    assert actions.count("rollback.verified") == 2
    # A later scan sees the findings again and opens them.
    engine.scan(str(host))
    statuses = {f["rule_id"]: f["status"] for f in engine.list_findings()}
    assert statuses["SSHD-ROOT-LOGIN"] == "open"


def test_rollback_bad_input(engine: Engine, host: Path) -> None:
    with pytest.raises(NotFoundError, match="no run 42"):
        engine.rollback(42)
    run = engine.fix(str(host))["run"]
    with pytest.raises(InputError, match="did not change etc/passwd"):
        engine.rollback(run, ["etc/passwd"])


def test_rollback_with_deleted_blobs_refuses_and_touches_nothing(
    engine: Engine, host: Path
) -> None:
    run = engine.fix(str(host))["run"]
    changed = tree_state(host)
    shutil.rmtree(engine.workspace.blobs)
    engine.workspace.blobs.mkdir()
    with pytest.raises(SnapshotError):
        engine.rollback(run)
    assert tree_state(host) == changed
    assert engine.list_runs()[0]["status"] == "succeeded"
    assert [e["action"] for e in engine.audit_export()][-1] == "rollback.refused"


def _insecure_target(tmp_path: Path) -> Path:
    root = tmp_path / "t"
    (root / "etc").mkdir(parents=True)
    (root / "etc/app.conf").write_text("insecure\n")
    return root


@pytest.mark.parametrize(
    ("plugin", "status", "detail"),
    [
        (plugins.RejectedByValidator, "failed", "validation failed, nothing applied"),
        (plugins.DoesNotFix, "rolled_back", "still detected after the fix; rolled back"),
        # Re-planned on the current content, still stale each time: it stops
        # as a conflict with the file untouched, the finding still open.
        (plugins.StalePlan, "conflict", "changed since the plan was made"),
        (plugins.EscapesRoot, "failed", "contains '..'"),
    ],
)
def test_guards_leave_the_target_untouched(
    engine: Engine, tmp_path: Path, plugin: type, status: str, detail: str
) -> None:
    engine.registry.plugins.clear()
    engine.registry.add(plugin(), source="test")
    root = _insecure_target(tmp_path)
    before = tree_state(root)
    result = engine.fix(str(root))
    (step,) = result["steps"]
    assert step["status"] == status
    assert detail in step["detail"]
    assert result["status"] == "failed"
    assert tree_state(root) == before
    assert not (tmp_path / "outside.conf").exists()
    (finding,) = engine.list_findings()
    assert finding["status"] == ("open" if status == "conflict" else "failed")
    assert any(e["action"] == f"step.{status}" for e in engine.audit_export())
    assert engine.audit_verify().ok


def test_target_that_does_not_exist(engine: Engine, tmp_path: Path) -> None:
    from jupiter.errors import TargetError

    with pytest.raises(TargetError, match="does not exist"):
        engine.fix(str(tmp_path / "gone"))


def test_unknown_param_is_refused(engine: Engine, host: Path) -> None:
    with pytest.raises(InputError, match="no remediator named 'nope'"):
        engine.fix(str(host), raw_params=["nope.level=x"])
    with pytest.raises(InputError, match="sshd-hardening, parameter level"):
        engine.fix(str(host), raw_params=["sshd-hardening.level=extreme"])
    with pytest.raises(InputError, match=r"REMEDIATOR\.KEY=VALUE"):
        engine.fix(str(host), raw_params=["level=baseline"])


def test_baseline_level_leaves_strict_rules_alone(engine: Engine, host: Path) -> None:
    result = engine.fix(str(host), raw_params=["sshd-hardening.level=baseline"])
    rules = {s["rule_id"] for s in result["steps"]}
    assert "SSHD-ROOT-LOGIN" in rules and "SSHD-PASSWORD-AUTH" not in rules
    assert (
        "PasswordAuthentication yes"
        in (host / "etc/ssh/sshd_config.d/50-cloud-init.conf").read_text()
    )


def test_plan_command_for_a_stored_finding(engine: Engine, host: Path) -> None:
    engine.scan(str(host))
    finding = next(f for f in engine.list_findings() if f["rule_id"] == "SSHD-ROOT-LOGIN")
    out = engine.plan(str(finding["id"]))
    assert out["remediator"] == "sshd-hardening"
    assert "+PermitRootLogin no" in out["plan"]["diff"]
    assert len(out["plan"]["hash"]) == 64
    assert "PermitRootLogin yes" in (host / "etc/ssh/sshd_config").read_text()


def test_stored_finding_keeps_its_fingerprint(engine: Engine, host: Path) -> None:
    from jupiter.store import findings as repo

    engine.scan(str(host))
    with engine.db.reading() as s:
        for row in repo.list_findings(s):
            assert repo.row_to_record(row).fingerprint(row.asset_id) == row.fingerprint


def test_a_file_that_does_not_parse_is_reported_and_the_run_goes_on(
    engine: Engine, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "tests/fixtures/sqli", root / "app")
    broken = root / "app/broken.py"
    broken.write_text('import sqlite3\ndef f(cur, x):\n    cur.execute("SELECT %s" % x\n')
    (root / "k8s").mkdir()
    (root / "k8s/bad.yaml").write_text("kind: Pod\nkind: Pod\n")
    result = engine.fix(str(root), only=["code.sql_injection"])
    errors = {e["error"] for e in result["scan"]["errors"]}
    assert any("broken.py" in e and "line" in e for e in errors), errors
    assert any("bad.yaml" in e and "line" in e for e in errors), errors
    assert any(s["status"] == "verified" for s in result["steps"])
    assert broken.read_text().endswith("% x\n"), "the broken file is left untouched"


class _VanishesDuringValidation(plugins.RejectedByValidator):
    """Passes validation, but the target's root disappears meanwhile."""

    name = "test-vanishing"
    rule = "T-VANISH"
    rule_ids = frozenset({rule})

    def validate(self, plan, candidate):  # type: ignore[no-untyped-def]
        root = Path(candidate.describe().removeprefix("candidate of local:"))
        shutil.rmtree(root)
        return []


def test_a_target_that_disappears_mid_run_fails_cleanly(engine: Engine, tmp_path: Path) -> None:
    engine.registry.plugins.clear()
    engine.registry.add(_VanishesDuringValidation(), source="test")
    root = _insecure_target(tmp_path)
    result = engine.fix(str(root))
    (step,) = result["steps"]
    assert step["status"] == "failed"
    assert "nothing applied" in step["detail"]
    assert result["status"] == "failed"
    assert [e["action"] for e in engine.audit_export()][-1] == "run.failed"
    assert engine.audit_verify().ok


def test_rollback_refuses_to_discard_later_changes_unless_forced(
    engine: Engine, host: Path
) -> None:
    from jupiter.errors import ConflictError

    original = tree_state(host)
    run = engine.fix(str(host), only=["config.ssh"])["run"]
    cfg = host / "etc/ssh/sshd_config"
    cfg.write_text(cfg.read_text() + "# edited by an admin after the fix\n")
    edited = tree_state(host)
    with pytest.raises(ConflictError, match=r"etc/ssh/sshd_config changed after run \d+"):
        engine.rollback(run)
    assert tree_state(host) == edited, "nothing was restored"
    assert [e["action"] for e in engine.audit_export()][-1] == "rollback.refused"
    # Paths nobody touched can still be rolled back on their own.
    part = engine.rollback(run, ["etc/ssh/sshd_config.d/50-cloud-init.conf"])
    assert part["verified"]
    forced = engine.rollback(run, force=True)
    assert forced["verified"] and tree_state(host) == original


class _DiesAfterApplying(plugins.DoesNotFix):
    """The process 'dies' (an uncaught BaseException) right after applying."""

    name = "test-dies"
    rule = "T-DIES"
    rule_ids = frozenset({rule})
    content = "secure\n"

    def is_fixed(self, finding, view, params):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt


def test_an_interrupted_run_is_recovered_from_its_snapshot(engine: Engine, tmp_path: Path) -> None:
    engine.registry.plugins.clear()
    engine.registry.add(_DiesAfterApplying(), source="test")
    root = _insecure_target(tmp_path)
    before = tree_state(root)
    with pytest.raises(KeyboardInterrupt):
        engine.fix(str(root))
    assert tree_state(root) != before, "the crash left the fix half-done"
    (run,) = engine.list_runs()
    assert run["status"] == "running"

    result = engine.recover(run["id"])
    (step,) = result["steps"]
    assert step["status"] == "rolled_back" and "verified by hash" in step["detail"]
    assert tree_state(root) == before
    assert engine.list_runs()[0]["status"] == "interrupted"
    (finding,) = engine.list_findings()
    assert finding["status"] == "failed"
    with pytest.raises(InputError, match="not running"):
        engine.recover(run["id"])
    assert engine.audit_verify().ok


class _WithCommand(plugins._Base):
    """Writes the fix and runs a command whose effect the snapshot cannot see."""

    name = "test-command"
    rule = "T-CMD"
    rule_ids = frozenset({rule})

    def plan(self, finding, view, params):  # type: ignore[no-untyped-def]
        from jupiter.plans import RunCommand

        base = super().plan(finding, view, params)
        if not base.changes:
            return base
        cmd = RunCommand(argv=["mkdir", "enabled.d"], undo=["rmdir", "enabled.d"])
        return base.model_copy(update={"changes": [*base.changes, cmd]})


def test_full_rollback_runs_the_undo_commands(engine: Engine, tmp_path: Path) -> None:
    engine.registry.plugins.clear()
    engine.registry.add(_WithCommand(), source="test")
    root = _insecure_target(tmp_path)
    result = engine.fix(str(root))
    assert result["status"] == "succeeded", result["steps"]
    assert (root / "enabled.d").is_dir()
    rb = engine.rollback(result["run"])
    assert rb["verified"]
    assert not (root / "enabled.d").exists()
    assert (root / "etc/app.conf").read_text() == "insecure\n"
