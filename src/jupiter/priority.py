"""The default priority score (0-100) of a finding. Deterministic; policy
may override it later. Documented in docs/findings.md.

    base        = CVSS base score if known, else the severity's default
                  (critical 9.5, high 8.0, medium 5.5, low 3.0, info 0.5)
    criticality = 0.6 + 0.1 * asset criticality        (1 → 0.7 … 5 → 1.1)
    environment = prod 1.0, staging 0.8, dev 0.6
    score       = min(100, round(base * 10 * criticality * environment / 1.1, 1))

So a CVSS 10 finding on a criticality-5 production asset scores 100, and
the same finding on a criticality-1 dev asset scores 38.2.
"""

from __future__ import annotations

from jupiter.models import Environment, Severity

SEVERITY_BASE = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 3.0,
    Severity.INFO: 0.5,
}
ENVIRONMENT_WEIGHT = {Environment.PROD: 1.0, Environment.STAGING: 0.8, Environment.DEV: 0.6}


def priority_score(
    severity: Severity, cvss: float | None, criticality: int, environment: Environment
) -> float:
    base = cvss if cvss is not None else SEVERITY_BASE[severity]
    weight = (0.6 + 0.1 * criticality) * ENVIRONMENT_WEIGHT[environment]
    return min(100.0, round(base * 10 * weight / 1.1, 1))
