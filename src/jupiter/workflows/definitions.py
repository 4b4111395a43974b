"""Workflow definitions: typed stages a remediation walks through.

A workflow is data (YAML, built in per category or in
``JUPITER_HOME/workflows/``); each stage kind has its own model, so a bad
file fails with "stage 'deploy', field 'batch': ..." (see
:mod:`jupiter.workflows.loading`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupiter.health.model import HealthConfig
from jupiter.workflows.windows import check_window

_COUNT = re.compile(r"^(\d+)(%?)$")


def parse_count(value: int | str, total: int, *, at_least: int = 0) -> int:
    """``3`` or ``"25%"`` of ``total`` → a count (percent rounds up)."""
    if isinstance(value, int):
        return max(at_least, value)
    m = _COUNT.match(value.strip())
    if m is None:
        raise ValueError(f"{value!r} is not a count or a percentage such as 25%")
    n = int(m.group(1))
    if m.group(2):
        n = -(-n * total // 100)
    return max(at_least, n)


def _count(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be 0 or more")
        return value
    if _COUNT.match(value.strip()) is None:
        raise ValueError(f"{value!r} is not a count or a percentage such as 25%")
    return value.strip()


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    kind: str

    @property
    def label(self) -> str:
        return self.name or self.kind


# Targets deployed at a time (the thread pool's bound); `--forks` overrides it.
FORKS = 20


class Rolling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["rolling"] = "rolling"
    batch: int | str = 1
    max_fail: int | str = 0
    pause: float = Field(default=0.0, ge=0)
    _check = field_validator("batch", "max_fail")(_count)


class Canary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["canary"] = "canary"
    percent: float = Field(default=10, gt=0, le=100)
    bake: float = Field(default=60.0, ge=0)
    batch: int | str = 1
    max_fail: int | str = 0
    pause: float = Field(default=0.0, ge=0)
    _check = field_validator("batch", "max_fail")(_count)


class BlueGreen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["blue-green"] = "blue-green"
    bake: float = Field(default=0.0, ge=0)


Strategy = Annotated[Rolling | Canary | BlueGreen, Field(discriminator="type")]


class SnapshotStage(_Stage):
    """Record the rollback point of every production target before anything runs."""

    kind: Literal["snapshot"] = "snapshot"


TestCheck = Literal[
    "validator",
    "dry_run_matches",
    "finding_gone",
    "no_new_findings",
    "asset_tests",
    "health",
    "rollback_rehearsal",
]
ALL_CHECKS: tuple[TestCheck, ...] = (
    "validator",
    "dry_run_matches",
    "finding_gone",
    "no_new_findings",
    "asset_tests",
    "health",
    "rollback_rehearsal",
)


class TestStage(_Stage):
    """Apply the plan to staging (or a throw-away copy) and run checks."""

    __test__ = False  # not a pytest class
    kind: Literal["test"] = "test"
    checks: list[TestCheck] = Field(default_factory=lambda: list(ALL_CHECKS))
    timeout: float = Field(default=600.0, gt=0)


class ApprovalStage(_Stage):
    kind: Literal["approval"] = "approval"


ManualFieldType = Literal["bool", "int", "str"]


class ManualStage(_Stage):
    """A typed question a person must answer before the workflow goes on."""

    kind: Literal["manual"] = "manual"
    question: str = Field(min_length=1)
    fields: dict[str, ManualFieldType] = Field(min_length=1)
    # An answer that does not equal these (e.g. keys_deployed: true) stops the remediation.
    expect: dict[str, bool | int | str] = Field(default_factory=dict)


class PullRequestDelivery(BaseModel):
    """Where ``deliver: pull_request`` sends the fix (see docs/pull-requests.md)."""

    model_config = ConfigDict(extra="forbid")

    forge: Literal["github", "gitlab", "gitea"]
    repo: str = Field(min_length=3, pattern=r"^[^/\s]+(/[^/\s]+)+$")
    branch: str = Field(default="jupiter/remediation", min_length=1)
    group: Literal["finding", "rule", "directory", "run"] = "run"
    remote: str = "origin"
    base: str | None = None


class DeployStage(_Stage):
    kind: Literal["deploy"] = "deploy"
    strategy: Strategy = Field(default_factory=Rolling)
    concurrency: int = Field(default=FORKS, ge=1, le=256)
    window: str | None = None
    _check_window = field_validator("window")(check_window)
    # "apply" writes to the targets; "pull_request" commits the reviewed
    # plans on a branch, pushes it and opens a pull/merge request: merging
    # it is the deployment (the worker completes the remediation then).
    deliver: Literal["apply", "pull_request"] = "apply"
    pull_request: PullRequestDelivery | None = None

    @model_validator(mode="after")
    def _delivery(self) -> DeployStage:
        if self.deliver == "pull_request" and self.pull_request is None:
            raise ValueError(
                "deliver: pull_request needs a 'pull_request:' mapping with forge and repo"
            )
        if self.deliver == "apply" and self.pull_request is not None:
            raise ValueError("'pull_request:' is only read with deliver: pull_request")
        return self


class MitigateStage(_Stage):
    """Staged remediation: a first, low-risk change (a subset of rules or
    other parameters) deployed and verified before the full fix."""

    kind: Literal["mitigate"] = "mitigate"
    only: list[str] = Field(default_factory=list)
    params: list[str] = Field(default_factory=list)
    strategy: Strategy = Field(default_factory=Rolling)
    concurrency: int = Field(default=FORKS, ge=1, le=256)


class VerifyStage(_Stage):
    """Re-detect on every deployed target: the finding is gone."""

    kind: Literal["verify"] = "verify"


class HealthStage(_Stage):
    """Sample the probes after the deploy and judge against the baseline."""

    kind: Literal["health"] = "health"
    samples: int | None = Field(default=None, ge=1)


class NotifyStage(_Stage):
    """Emit an event (delivered by the integrations' outbox)."""

    kind: Literal["notify"] = "notify"
    event: str = "remediation.completed"


Stage = Annotated[
    SnapshotStage
    | TestStage
    | ApprovalStage
    | ManualStage
    | DeployStage
    | MitigateStage
    | VerifyStage
    | HealthStage
    | NotifyStage,
    Field(discriminator="kind"),
]
STAGE_KINDS = (
    "snapshot",
    "test",
    "approval",
    "manual",
    "deploy",
    "mitigate",
    "verify",
    "health",
    "notify",
)


class Workflow(BaseModel):
    """A named sequence of stages for the categories it applies to."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    # Finding categories it is the default for; fnmatch patterns (iac.*).
    categories: list[str] = Field(default_factory=list)
    auto_start: bool = False
    window: str | None = None
    _check_window = field_validator("window")(check_window)
    health: HealthConfig = Field(default_factory=HealthConfig)
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_deploy(self) -> Workflow:
        deploys = [s for s in self.stages if s.kind == "deploy"]
        if len(deploys) != 1:
            raise ValueError("a workflow has exactly one 'deploy' stage")
        names = [s.label for s in self.stages]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stage names must be unique; give 'name:' to: {', '.join(dup)}")
        return self

    def deploy(self) -> DeployStage:
        return next(s for s in self.stages if isinstance(s, DeployStage))
