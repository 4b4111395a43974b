"""Helpers shared by the custom-script tests (imported by name: pytest puts
this folder on sys.path because it has no __init__.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupiter.custom.remediator import CustomScriptRemediator
from jupiter.models import FindingRecord, Location, Severity
from jupiter.plans import RunCommand
from jupiter.targets.base import CommandResult
from jupiter.targets.local import LocalTarget

MakeScript = Callable[..., CustomScriptRemediator]
"""The ``make_script`` fixture: register a script, get its remediator."""

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "custom"


def finding(
    rule_id: str = "TEST-001", path: str | None = "app/config.ini", **loc: Any
) -> FindingRecord:
    return FindingRecord(
        scanner="test",
        rule_id=rule_id,
        title="test finding",
        severity=Severity.HIGH,
        location=Location(path=path, **loc),
    )


def write_manifest(folder: Path, body: str, **fields: Any) -> Path:
    """A manifest (JSON is YAML) and its script ``script.sh`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.sh").write_text(body)
    (folder / "script.sh").chmod(0o755)
    data: dict[str, Any] = {
        "name": "test-script",
        "description": "a test script",
        "script": "script.sh",
        "rule_ids": ["TEST-001"],
        "paths": ["out.txt"],
        "verify": {"command": ["true"]},
        "timeout": 20,
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    path = folder / "manifest.yaml"
    path.write_text(json.dumps(data, indent=2))
    return path


def run_plan(
    remediator: CustomScriptRemediator, target: LocalTarget, record: FindingRecord | None = None
) -> CommandResult:
    """Plan ``record`` and apply the plan's one RunCommand the way the engine does."""
    plan = remediator.plan(record or finding(), target, remediator.parse_params(None))
    assert plan.needs_manual is None, plan.needs_manual
    (command,) = plan.changes
    assert isinstance(command, RunCommand)
    return target.run(command.argv, command.timeout)
