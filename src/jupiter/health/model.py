"""Health probes, samples and verdicts: the data the deploy stages and the
health judge share. Probes are declared per asset (``assets.yaml``) or per
workflow (``health.probes``); see docs/workflows.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    timeout: float = Field(default=2.0, gt=0, le=60)

    @property
    def label(self) -> str:
        """The metric this probe feeds: its name, else its kind. Every target
        has its own URL, so the judge compares targets by this key, never by
        the URL (``http`` on web-01 against ``http`` on web-02)."""
        return self.name or str(getattr(self, "kind"))  # noqa: B009

    def kind_label(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


class HttpProbe(_Probe):
    """GET ``url`` (``{asset}``/``{root}`` placeholders allowed): healthy when
    the status is ``expect_status``; its latency is measured."""

    kind: Literal["http"] = "http"
    url: str
    expect_status: int = Field(default=200, ge=100, le=599)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"probe url {value!r} is not http(s)://")
        return value

    def kind_label(self) -> str:
        return f"http {self.url}"


class CommandProbe(_Probe):
    """Run ``argv`` (never a shell; ``{root}``/``{asset}`` placeholders):
    healthy on exit 0."""

    kind: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1)

    def kind_label(self) -> str:
        return f"command {self.argv[0]}"


class MetricProbe(_Probe):
    """Read one sample of ``metric`` (optionally with ``labels``) from a
    Prometheus text endpoint; healthy while within ``min``/``max``."""

    kind: Literal["metric"] = "metric"
    url: str
    metric: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    max: float | None = None
    min: float | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"metric url {value!r} is not http(s)://")
        return value

    def kind_label(self) -> str:
        return f"metric {self.metric}"


Probe = Annotated[HttpProbe | CommandProbe | MetricProbe, Field(discriminator="kind")]


def unique_probe_keys(probes: list[Any]) -> list[Any]:
    """Two probes of one list must feed two metrics: refuse a duplicate key."""
    seen: set[str] = set()
    for probe in probes:
        if probe.label in seen:
            raise ValueError(
                f"two probes feed the metric {probe.label!r}; give each one its own 'name:'"
            )
        seen.add(probe.label)
    return probes


class HealthConfig(BaseModel):
    """How a workflow judges health during and after a deploy."""

    model_config = ConfigDict(extra="forbid")

    probes: list[Probe] = Field(default_factory=list)
    _unique = field_validator("probes")(lambda v: unique_probe_keys(v))
    interval: float = Field(default=1.0, gt=0, le=3600)
    baseline_samples: int = Field(default=5, ge=1, le=1000)
    samples: int = Field(default=5, ge=1, le=1000)
    # Roll back when the share of failing samples exceeds the baseline's by more than this.
    error_rate: float = Field(default=0.05, ge=0, le=1)
    # Roll back when p95 latency exceeds this multiple of the baseline (the brief's 20%).
    latency_ratio: float = Field(default=1.2, gt=1)
    # The statistical judge (issue 20) reads these; the threshold rule ignores them.
    judge: Literal["threshold", "statistical"] = "statistical"
    confidence: float = Field(default=0.98, gt=0.5, lt=1)
    min_samples: int = Field(default=5, ge=3)
    consecutive: int = Field(default=2, ge=1)
    max_bake: float = Field(default=600, gt=0)
    # Which probes (by label) the judge reads; empty means every probe.
    metrics: list[str] = Field(default_factory=list)
    # The smallest rise in error rate (a share: 0.005 = half a point) the
    # statistical judge rolls back for, once it is also significant.
    error_margin: float = Field(default=0.005, ge=0, le=1)


#: Why a sample is not ok: the endpoint answered badly (``status``, ``exit``,
#: ``range``), or gave no usable answer (``timeout``, ``unreachable``,
#: ``invalid``, ``missing``). The judge fails on the first kind and waits on
#: the second.
Cause = Literal["status", "exit", "range", "timeout", "unreachable", "invalid", "missing"]


@dataclass(frozen=True)
class Sample:
    """One probe reading on one target."""

    probe: str
    ok: bool
    at: float
    latency: float | None = None
    status: int | None = None
    value: float | None = None
    error: str | None = None
    cause: Cause | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "ok": self.ok,
            "at": self.at,
            "latency": self.latency,
            "status": self.status,
            "value": self.value,
            "error": self.error,
            "cause": self.cause,
        }


@dataclass
class Verdict:
    """``pass``, ``fail`` (roll back) or ``inconclusive`` (wait, then ask a
    person), with the rule that decided and the numbers it saw."""

    status: Literal["pass", "fail", "inconclusive"]
    reason: str
    target: str | None = None
    measured: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "target": self.target,
            "measured": self.measured,
        }
