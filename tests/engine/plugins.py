"""Small remediators that misbehave on purpose, to test the engine's guards."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.targets.base import TargetView

FILE = "etc/app.conf"


def _record(rule: str) -> FindingRecord:
    return FindingRecord(
        scanner="test",
        rule_id=rule,
        category=Category.OTHER,
        title=f"{rule} present",
        severity=Severity.HIGH,
        location=Location(path=FILE, start_line=1),
        identity="x",
    )


class _Base(Remediator):
    """Detects 'insecure' in etc/app.conf; fixes by writing 'secure'."""

    rule: ClassVar[str]
    content: ClassVar[str] = "secure\n"
    path: ClassVar[str] = FILE

    def detect(self, view: TargetView, params: BaseModel | None = None) -> list[FindingRecord]:
        try:
            data = view.read_bytes(FILE)
        except FileNotFoundError:
            return []
        return [_record(self.rule)] if b"insecure" in data else []

    def plan(self, finding: FindingRecord, view: TargetView, params: BaseModel) -> Plan:
        if not self.detect(view):
            return Plan(remediator=self.name, rule_id=self.rule, title="fixed")
        before = view.read_bytes(FILE)
        return Plan(
            remediator=self.name,
            rule_id=self.rule,
            title="fix it",
            changes=[
                WriteFile(path=self.path, content=self.content, before_sha256=self._before(before))
            ],
        )

    def _before(self, before: bytes) -> str | None:
        return sha256_bytes(before)


class RejectedByValidator(_Base):
    name = "test-rejected"
    rule = "T-REJECT"
    rule_ids = frozenset({rule})

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        return [ValidationResult("fake-daemon -t", "failed", "line 1: bad keyword")]


class DoesNotFix(_Base):
    name = "test-does-not-fix"
    rule = "T-NOFIX"
    rule_ids = frozenset({rule})
    content = "still insecure\n"


class StalePlan(_Base):
    name = "test-stale"
    rule = "T-STALE"
    rule_ids = frozenset({rule})

    def _before(self, before: bytes) -> str | None:
        return sha256_bytes(b"what the file looked like yesterday")


class EscapesRoot(_Base):
    name = "test-escape"
    rule = "T-ESCAPE"
    rule_ids = frozenset({rule})
    path = "../outside.conf"

    def _before(self, before: bytes) -> str | None:
        return None
