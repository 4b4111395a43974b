"""A small local fleet for the remediation tests: copies of examples/host,
each its own asset in group ``web`` (production), plus one staging copy."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel

from jupiter.engine import Engine
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.targets.base import TargetView
from tests.conftest import ROOT


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its content hash (plus mode)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = (
                hashlib.sha256(p.read_bytes()).hexdigest() + f":{p.stat().st_mode & 0o7777:o}"
            )
    return out


def make_fleet(
    tmp: Path,
    n: int,
    *,
    staging: int = 0,
    extra: dict[str, dict[str, Any]] | None = None,
    app: bool = False,
) -> list[Path]:
    """``n`` production copies (web-01...) and ``staging`` staging copies;
    writes ``assets.yaml`` beside them and returns the production roots."""
    assets = []
    roots = []
    for i in range(1, n + staging + 1):
        name = f"web-{i:02d}" if i <= n else f"stage-{i - n:02d}"
        root = tmp / "fleet" / name
        if app:
            (root / "etc").mkdir(parents=True)
            (root / "etc/app.conf").write_text("insecure\n")
        else:
            shutil.copytree(ROOT / "examples/host", root, symlinks=True)
        spec: dict[str, Any] = {
            "id": name,
            "group": "web",
            "environment": "prod" if i <= n else "staging",
            "connection": f"local:{root}",
        }
        spec.update((extra or {}).get(name, {}))
        assets.append(spec)
        if i <= n:
            roots.append(root)
    (tmp / "assets.yaml").write_text(yaml.safe_dump({"assets": assets}))
    return roots


def workflow(home: Path, name: str, stages: list[dict[str, Any]], **extra: Any) -> None:
    (home / "workflows").mkdir(parents=True, exist_ok=True)
    (home / "workflows" / f"{name}.yaml").write_text(
        yaml.safe_dump({"name": name, "stages": stages, **extra})
    )


FILE = "etc/app.conf"


class AppFix(Remediator):
    """Detects 'insecure' in etc/app.conf and writes 'secure'; its validator
    rejects a file that also says 'reject-me' (a deploy failure on demand)."""

    name = "test-app"
    rule: ClassVar[str] = "T-APP"
    rule_ids = frozenset({"T-APP"})

    def detect(self, view: TargetView, params: BaseModel | None = None) -> list[FindingRecord]:
        try:
            data = view.read_bytes(FILE)
        except FileNotFoundError:
            return []
        if b"insecure" not in data:
            return []
        return [
            FindingRecord(
                scanner="test",
                rule_id=self.rule,
                category=Category.OTHER,
                title="insecure app",
                severity=Severity.HIGH,
                location=Location(path=FILE, start_line=1),
                identity="x",
            )
        ]

    def plan(self, finding: FindingRecord, view: TargetView, params: BaseModel) -> Plan:
        if not self.detect(view):
            return Plan(remediator=self.name, rule_id=self.rule, title="fixed")
        before = view.read_bytes(FILE)
        after = before.replace(b"insecure", b"secure")
        return Plan(
            remediator=self.name,
            rule_id=self.rule,
            title="secure the app",
            changes=[
                WriteFile(path=FILE, content=after.decode(), before_sha256=sha256_bytes(before))
            ],
        )

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        if b"reject-me" in candidate.read_bytes(FILE):
            return [ValidationResult("app -t", "failed", "line 1: rejected")]
        return [ValidationResult("app -t", "passed", "")]


def use_app_plugin(engine: Engine) -> None:
    """Only AppFix (and without loading the built-in plugins: quick)."""
    from jupiter.plugins.registry import Registry

    registry = Registry()
    registry.add(AppFix(), source="test")
    engine._registry = registry


def applies(engine: Engine) -> dict[str, int]:
    """How many times a fix was applied (step.verified) per asset."""
    out: dict[str, int] = {}
    runs = {r["id"]: r["asset"] for r in engine.list_runs()}
    for e in engine.audit_export():
        if e["action"] == "step.verified":
            run = int(e["subject"].split("/")[0].split(":")[1])
            out[runs[run]] = out.get(runs[run], 0) + 1
    return out
