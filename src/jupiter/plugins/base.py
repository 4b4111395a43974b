"""The remediator contract.

A remediator is a small class with declarative attributes and a fixed
lifecycle: ``detect`` (the built-in check, also used to verify a fix) →
``plan`` (pure: reads a :class:`TargetView`, returns a :class:`Plan`) → the
engine applies → ``validate`` the candidate before it reaches the real
target → ``detect`` again to verify.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from jupiter.models import FindingRecord
from jupiter.plans import Plan
from jupiter.plugins.configs import TakenFile
from jupiter.targets.base import Target, TargetView
from jupiter.workspace import Workspace


class RunGate(Protocol):
    """A whole-target check around one fix run: ``before`` runs once before
    the first change, ``after`` once after the last. A scanner's full rescan
    lives here (Checkov costs seconds to start: once per run, not per
    finding). A failed ``after`` rolls the whole run back."""

    name: str

    def before(self) -> None: ...

    def after(self) -> ValidationResult: ...


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of one validator on a candidate (before apply)."""

    validator: str
    status: Literal["passed", "failed", "skipped"]
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"validator": self.validator, "status": self.status, "detail": self.detail}


class Remediator(ABC, Generic[P]):
    """Base class of every remediation plugin, generic over its parameters.

    A plugin names its parameter model twice, once for the type checker and
    once at run time: ``class SshdHardening(Remediator[SshdParams])`` with
    ``params_model = SshdParams``. The engine validates the user's raw
    parameters through :meth:`parse_params` once; every other method receives
    an instance of that model (or ``None`` in ``detect``: the defaults), so no
    plugin validates its own parameters again.

    Class attributes:
      * ``name`` — stable kebab-case name used in CLI, YAML, docs and audit;
      * ``summary`` — one line for ``jupiter remediators list``;
      * ``categories`` — finding categories it can fix;
      * ``rule_ids`` — rule ids it handles: its own detector's and those of
        external scanners that mean the same thing (e.g. Bandit ``B608``);
      * ``params_model`` — pydantic model of its parameters (``P``).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    categories: ClassVar[frozenset[str]] = frozenset()
    rule_ids: ClassVar[frozenset[str]] = frozenset()
    params_model: ClassVar[type[BaseModel]] = NoParams

    def bind(self, workspace: Workspace) -> None:
        """Called once by the engine with its workspace, before any other
        method; plugins that keep data there (advisories) find it here."""
        return None  # an optional hook: most plugins keep no data

    def handles(self, finding: FindingRecord) -> bool:
        """Whether this remediator can plan a fix for ``finding``."""
        return finding.rule_id in self.rule_ids

    def parse_params(self, raw: dict[str, object] | None) -> P:
        """The plugin's parameters from raw values (pydantic's ValidationError
        when they are invalid; the engine turns it into one sentence)."""
        return cast(P, self.params_model.model_validate(raw or {}))

    def default_params(self) -> P:
        return self.parse_params(None)

    @abstractmethod
    def detect(self, view: TargetView, params: P | None = None) -> list[FindingRecord]:
        """Run the built-in checks over ``view``; paths are target-relative.

        ``params`` are the remediator's parameters (``None``: its defaults),
        so that verification checks what the fix was asked to achieve (an
        sshd fix at level ``baseline`` is verified at ``baseline``).
        """

    def survey(
        self, view: TargetView, params: P | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        """``detect`` plus the files it had to skip, each as one sentence
        naming file and line (a manifest that does not parse, say). The
        engine reports them and goes on with everything else."""
        return self.detect(view, params), []

    def config_files(self, view: TargetView, params: P | None = None) -> list[TakenFile]:
        """The configuration files this remediator took from a repository
        target, each with why (``evidence``), and those it reported and left
        alone (ambiguous, refused); empty for a host-shaped target and for
        remediators that do not read daemon configurations. ``jupiter scan``
        lists them."""
        return []

    @abstractmethod
    def plan(self, finding: FindingRecord, view: TargetView, params: P) -> Plan:
        """Compute the changes that fix ``finding``; empty if already fixed."""

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: P) -> bool:
        """Verification: whether ``finding`` is gone from ``view``.

        The default detects again and looks for the finding's issue key.
        Override when findings ingested from other scanners locate the issue
        differently from the built-in detector (e.g. Bandit reports the line
        that builds a query, the detector the line that executes it).
        """
        key = finding.issue_key()
        return all(r.issue_key() != key for r in self.detect(view, params))

    def run_gate(self, target: Target) -> RunGate | None:
        """A check of the whole target around a fix run that applies this
        remediator's plans (see :class:`RunGate`); ``None``: no such check."""
        return None

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Check the candidate state (target + plan) before it is applied.

        ``candidate`` shows the target as it will be after the plan. The
        default has no validator; config remediators run the daemon's own
        syntax check here.
        """
        return []


#: A remediator of any parameter model, as the engine and registry hold them.
AnyRemediator = Remediator[Any]
