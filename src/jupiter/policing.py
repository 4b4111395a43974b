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
    def policy_show(self) -> dict[str, Any]:
        """The workspace's policies: their sources, hash, the decisions they
        answer and the compile error, if any."""
        ps = self.policies
        return {
            "policy_hash": ps.hash,
            "error": ps.error,
            "decisions": sorted(policy.DECISIONS),
            "sources": [{"name": src.name, "text": src.text} for src in ps.sources],
        }

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

    @requires("findings.prioritise", scope="asset", kind="asset")
    def prioritise(self, asset: str | None = None) -> dict[str, Any]:
        """Set every finding's priority from the policy's ``priority``
        decision (one transaction, one audit entry). Each distinct input is
        logged once; a policy error changes nothing and says why."""
        from jupiter import audit
        from jupiter.store.tables import AssetRow, FindingRow

        self.policies.check()
        changed = 0
        seen: dict[str, list[Any]] = {}
        with self.db.transaction() as s:
            assets = {a.id: a for a in s.scalars(select(AssetRow))}
            q = select(FindingRow)
            if asset is not None:
                q = q.where(FindingRow.asset_id == asset)
            rows = list(s.scalars(q))
            for row in rows:
                facts = _priority_facts(row, assets.get(row.asset_id))
                decision = self.policies.evaluate("priority", facts)
                if decision.error is not None:
                    raise policy.PolicyError(decision.error.removeprefix("denied: "))
                key = repr(sorted(facts["finding"].items()) + sorted(facts["asset"].items()))
                seen.setdefault(key, [facts, decision.result, 0])[2] += 1
                if row.priority != decision.result:
                    row.priority = float(decision.result)
                    changed += 1
            now = utcnow()
            for facts, result, count in seen.values():
                s.add(
                    PolicyDecisionRow(
                        decided_at=now,
                        query="priority",
                        subject=f"prioritise: {count} finding(s)",
                        actor=self.actor,
                        policy_hash=self.policies.hash,
                        input=facts,
                        result={"value": result},
                        error=None,
                    )
                )
            data = {"findings": len(rows), "changed": changed, "policy_hash": self.policies.hash}
            audit.record(s, self.actor, "findings.prioritised", f"asset:{asset or '*'}", data)
        return {**data, "distinct_inputs": len(seen)}

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


def _priority_facts(row: Any, asset: Any) -> dict[str, Any]:
    """The risk facts the ``priority`` decision sees for one finding."""
    extra = row.extra or {}
    tags = list(asset.tags or []) if asset is not None else []
    return {
        "finding": {
            "severity": row.severity,
            "cvss": row.cvss_score,
            "kev": bool(extra.get("kev")),
            "category": row.category,
        },
        "asset": {
            "environment": asset.environment if asset is not None else "dev",
            "criticality": asset.criticality if asset is not None else 3,
            "internet_facing": "internet-facing" in tags,
        },
    }
