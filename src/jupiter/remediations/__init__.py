"""Remediation workflows: one reviewed change across an asset group,
driven through registered stages by a durable runner (docs/workflows.md)."""

from jupiter.remediations.results import CreateResult, EventInfo, RemediationInfo, TargetInfo
from jupiter.remediations.service import Remediations, due

__all__ = ["CreateResult", "EventInfo", "RemediationInfo", "Remediations", "TargetInfo", "due"]
