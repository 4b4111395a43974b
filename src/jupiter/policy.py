"""The policy engine: every governance decision comes from Rego policies
evaluated in process (regopy), compiled once, with a decision cache.

Policies are data: ``JUPITER_HOME/policies/*.rego`` (package ``jupiter``)
replace the built-in ``jupiter/policies/default.rego`` whole when present.
Each decision is one rule of package ``jupiter`` (:data:`DECISIONS`); its
result is checked against a typed model, and any error (the policy does not
compile, gives no value, or the wrong type) yields the decision's deny value
with the error said plainly. The policy version is the sha256 of its
sources, recorded with every logged decision.

Why Rego (measured on this 2-core machine, shared): regopy ~0.6 ms per
uncached decision, cedarpy ~0.4 ms but only allow/deny (it cannot compute a
priority or a number of approvers), cel-python ~20 ms. Rego is the one
language here that expresses every decision; the cache makes repeated
inputs (the common case: findings share their risk facts) cost microseconds.
Known regopy 1.5 limits: ``with ... as`` crashes the interpreter (refused
at load, tests are data instead: ``*.tests.yaml``) and ``min``/``max``
misorder mixed int/float lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from jupiter.errors import InputError

BUILTIN = Path(__file__).parent / "policies"
CACHE_SIZE = 65536


class PolicyError(InputError):
    """A policy does not compile or cannot be used: every decision is deny."""


class RemediationDecision(BaseModel):
    model_config = ConfigDict(extra="allow")

    automatic: bool
    auto_approve: bool
    required_approvals: int
    approver_roles: list[str]
    strategies: list[str]
    max_batch_targets: int
    max_batch_percent: int
    windows: list[dict[str, Any]]
    reasons: list[str] = []


class ExceptionDecision(BaseModel):
    allowed: bool
    max_days: int


class PriorityDecision(BaseModel):
    value: float


DECISIONS: dict[str, type[BaseModel]] = {
    "priority": PriorityDecision,
    "remediation": RemediationDecision,
    "exception": ExceptionDecision,
}

DENY: dict[str, Any] = {
    "priority": None,
    "remediation": {
        "automatic": False,
        "auto_approve": False,
        "required_approvals": 99,
        "approver_roles": ["admin"],
        "strategies": [],
        "max_batch_targets": 0,
        "max_batch_percent": 0,
        "windows": [],
        "reasons": ["denied: the policy failed"],
    },
    "exception": {"allowed": False, "max_days": 0},
}


@dataclass(frozen=True)
class Decision:
    name: str
    input: dict[str, Any]
    result: Any
    policy_hash: str
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.name,
            "result": self.result,
            "policy_hash": self.policy_hash,
            "error": self.error,
            "cached": self.cached,
        }


@dataclass(frozen=True)
class Source:
    name: str
    text: str


@dataclass
class PolicySet:
    """Compiled policies and their decision cache."""

    sources: list[Source]
    hash: str = ""
    error: str | None = None
    _rego: Any = None
    _bundles: dict[str, Any] = field(default_factory=dict)
    _cache: OrderedDict[bytes, Any] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        for s in sorted(self.sources, key=lambda s: s.name):
            digest.update(s.name.encode() + b"\0" + s.text.encode() + b"\0")
        self.hash = digest.hexdigest()
        try:
            self._compile()
        except PolicyError as exc:
            self.error = exc.message

    def _compile(self) -> None:
        import regopy

        for src in self.sources:
            _refuse_with(src)
        rego = regopy.Interpreter()
        with _quiet():
            try:
                for src in self.sources:
                    rego.add_module(src.name, src.text)
                self._bundles = {name: rego.build(f"data.jupiter.{name}") for name in DECISIONS}
            except regopy.RegoError as exc:
                raise PolicyError(_compile_message(str(exc), self.sources)) from None
        self._rego = rego

    def check(self) -> None:
        """Raise the compile error, if any."""
        if self.error is not None:
            raise PolicyError(self.error)

    def evaluate(self, name: str, data: dict[str, Any]) -> Decision:
        """The decision ``name`` for ``data``; never raises for a policy
        problem: the result is then the deny value and ``error`` says why."""
        if name not in DECISIONS:
            raise InputError(f"unknown decision {name!r}; use one of: {', '.join(DECISIONS)}")
        if self.error is not None:
            return Decision(name, data, DENY[name], self.hash, f"denied: {self.error}")
        key = name.encode() + b"\0" + orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return Decision(name, data, hit, self.hash, cached=True)
        result, error = self._run(name, data)
        if error is not None:
            return Decision(name, data, DENY[name], self.hash, error)
        self._cache[key] = result
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return Decision(name, data, result, self.hash)

    def _run(self, name: str, data: dict[str, Any]) -> tuple[Any, str | None]:
        import regopy

        try:
            self._rego.set_input(regopy.Input(data))
            out = str(self._rego.query_bundle(self._bundles[name]))
        except (regopy.RegoError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None, f"denied: the policy failed on decision {name}: {first}"
        if out.strip() == "undefined":
            return None, (
                f"denied: the policy gives no value for decision {name} on this input "
                f"(rule data.jupiter.{name} is undefined)"
            )
        value = orjson.loads(out)["expressions"][0]
        model = DECISIONS[name]
        try:
            if name == "priority":
                return PriorityDecision(value=value).value, None
            return model.model_validate(value).model_dump(), None
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or name
            return None, (
                f"denied: the policy returned the wrong type for decision {name} "
                f"({loc}: {err['msg']}, got {orjson.dumps(value).decode()[:80]})"
            )


def policy_dir(home: Path) -> Path:
    return home / "policies"


def load(home: Path | None) -> PolicySet:
    """The workspace's policies, else the built-in default."""
    folder = policy_dir(home) if home is not None else None
    files = sorted(folder.glob("*.rego")) if folder is not None and folder.is_dir() else []
    if not files:
        files = sorted(BUILTIN.glob("*.rego"))
    return PolicySet([Source(str(p), p.read_text(encoding="utf-8")) for p in files])


def test_files(home: Path | None) -> list[Path]:
    folder = policy_dir(home) if home is not None else None
    if folder is not None and folder.is_dir() and any(folder.glob("*.rego")):
        return sorted(folder.glob("*.tests.yaml"))
    return sorted(BUILTIN.glob("*.tests.yaml"))


def run_tests(policies: PolicySet, files: list[Path]) -> list[dict[str, Any]]:
    """Run the policies' own test cases (``*.tests.yaml``)."""
    from jupiter.yamlfile import read_yaml

    policies.check()
    results = []
    for path in files:
        cases = read_yaml(path, "", "fix the test file")
        if not isinstance(cases, list):
            raise InputError(f"{path} must hold a list of test cases (name, decision, input)")
        for i, case in enumerate(cases, 1):
            if not isinstance(case, dict) or not {"name", "decision", "input"} <= case.keys():
                raise InputError(f"{path}: case #{i} needs name, decision, input and expect")
            d = policies.evaluate(str(case["decision"]), case["input"])
            want = case.get("expect")
            if d.error is not None:
                ok, why = False, d.error
            elif isinstance(want, dict) and isinstance(d.result, dict):
                wrong = {k: d.result.get(k) for k, v in want.items() if d.result.get(k) != v}
                ok, why = not wrong, f"got {wrong}" if wrong else ""
            else:
                ok, why = d.result == want, f"got {d.result!r}"
            results.append(
                {"file": str(path), "name": case["name"], "passed": ok, "detail": "" if ok else why}
            )
    return results


_WITH = re.compile(r"\bwith\s+(input|data)\b")


def _refuse_with(src: Source) -> None:
    for number, line in enumerate(src.text.splitlines(), 1):
        if _WITH.search(line.split("#", 1)[0]):
            raise PolicyError(
                f"policy {src.name}:{number}: `with ... as` is not supported by the embedded "
                "Rego engine; write policy tests as *.tests.yaml cases instead"
            )


_ERR = re.compile(r"\(error \d+:([^|]*)\|(\d+)\|")
_MSG = re.compile(r"\(errormsg \d+:([^)\n]*)")


def _compile_message(raw: str, sources: list[Source]) -> str:
    loc, msg = _ERR.search(raw), _MSG.search(raw)
    what = msg.group(1).strip() if msg else raw.strip().splitlines()[0]
    where = "the policies"
    if loc:
        name, offset = loc.group(1), int(loc.group(2))
        text = next((s.text for s in sources if s.name == name), "")
        where = f"{name}:{text.count(chr(10), 0, offset) + 1}" if text else name
    return f"policy {where} does not compile: {what}; fix it, until then every decision is deny"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """rego-cpp prints compile errors on stdout itself: keep them off the
    user's output (the error is raised as one sentence instead)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
