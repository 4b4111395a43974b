"""Policy decisions on the engine: evaluate, test, simulate, and the
decision log. :class:`jupiter.engine.Engine` inherits it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from jupiter import policy
from jupiter.errors import InputError
from jupiter.permissions import requires
from jupiter.store.tables import PolicyDecisionRow, utcnow
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from jupiter.store.db import Database


class Policing:
    """Mixed into :class:`jupiter.engine.Engine`."""

    workspace: Workspace
    actor: str
    _policies: policy.PolicySet | None = None

    if TYPE_CHECKING:

        @property
        def db(self) -> Database: ...

    @property
    def policies(self) -> policy.PolicySet:
        """The workspace's compiled policies (loaded once per engine)."""
        if self._policies is None:
            self._policies = policy.load(self.workspace.home)
        return self._policies

    def _decide(self, name: str, data: dict[str, Any], subject: str = "") -> policy.Decision:
        """Evaluate and log one decision (input, policy hash, result)."""
        decision = self.policies.evaluate(name, data)
        with self.db.transaction() as s:
            s.add(
                PolicyDecisionRow(
                    decided_at=utcnow(),
                    query=name,
                    subject=subject[:500],
                    actor=self.actor,
                    policy_hash=decision.policy_hash,
                    input=data,
                    result={"value": decision.result},
                    error=decision.error,
                )
            )
        return decision

    @requires("policy.decide")
    def decide(self, name: str, data: dict[str, Any], subject: str = "") -> policy.Decision:
        """The policy's decision ``name`` on ``data``, logged."""
        return self._decide(name, data, subject)

    @requires("policy.read")
    def policy_eval(self, path: Path, name: str | None = None) -> dict[str, Any]:
        """Evaluate an input file (JSON or YAML): either the input itself
        (with ``name``) or ``{decision: NAME, input: {...}}``; logged."""
        from jupiter.yamlfile import read_yaml

        if not path.is_file():
            raise InputError(f"input file {path} does not exist; give a JSON or YAML file")
        data = read_yaml(path, "", "fix the input file")
        if name is None:
            if not isinstance(data, dict) or "decision" not in data or "input" not in data:
                raise InputError(
                    f"{path} must hold {{decision: NAME, input: {{...}}}}, or pass --decision"
                )
            name, data = str(data["decision"]), data["input"]
        if not isinstance(data, dict):
            raise InputError(f"the input in {path} must be a mapping of facts")
        self.policies.check()
        return self._decide(name, data, f"policy eval {path}").to_json()

    @requires("policy.read")
    def policy_test(self) -> dict[str, Any]:
        """Run the policies' own test cases (``*.tests.yaml``)."""
        files = policy.test_files(self.workspace.home)
        results = policy.run_tests(self.policies, files)
        return {
            "policy_hash": self.policies.hash,
            "passed": sum(r["passed"] for r in results),
            "failed": sum(not r["passed"] for r in results),
            "cases": results,
        }

    @requires("policy.read")
    def policy_simulate(self, limit: int = 10000) -> dict[str, Any]:
        """Replay the logged decisions under the current policy: which would
        now be decided differently. Nothing is logged."""
        self.policies.check()
        with self.db.reading() as s:
            rows = s.scalars(
                select(PolicyDecisionRow).order_by(PolicyDecisionRow.id.desc()).limit(limit)
            ).all()
        changed = []
        for row in rows:
            now = self.policies.evaluate(row.query, row.input)
            before = row.result.get("value")
            if now.result != before or now.error != row.error:
                changed.append(
                    {
                        "id": row.id,
                        "decision": row.query,
                        "subject": row.subject,
                        "policy_hash": row.policy_hash,
                        "before": before,
                        "now": now.result,
                        "error": now.error,
                    }
                )
        return {
            "policy_hash": self.policies.hash,
            "replayed": len(rows),
            "changed": len(changed),
            "decisions": changed,
        }
