"""Remediation workflows: one reviewed change across an asset group,
driven through registered stages by a durable runner (docs/workflows.md)."""

from jupiter.remediations.bridges import register_due
from jupiter.remediations.results import CreateResult, EventInfo, RemediationInfo, TargetInfo
from jupiter.remediations.service import Remediations, due

# `jupiter worker` imports this package: its rounds drive due remediations.
register_due("remediations", due)

__all__ = ["CreateResult", "EventInfo", "RemediationInfo", "Remediations", "TargetInfo", "due"]
