"""Channels: one class per protocol, built from a :class:`ChannelSpec`."""

from __future__ import annotations

from jupiter.integrations.channels.base import (
    Channel,
    ChannelDown,
    ChannelError,
    Delivery,
    PermanentError,
)
from jupiter.integrations.config import ChannelSpec, DispatchSettings

__all__ = ["Channel", "ChannelDown", "ChannelError", "Delivery", "PermanentError", "build"]


def build(spec: ChannelSpec, settings: DispatchSettings) -> Channel:
    if spec.type == "slack":
        from jupiter.integrations.channels.slack import SlackChannel

        return SlackChannel(spec, settings)
    if spec.type == "jira":
        from jupiter.integrations.channels.jira import JiraChannel

        return JiraChannel(spec, settings)
    if spec.type == "splunk":
        from jupiter.integrations.channels.splunk import SplunkHecChannel

        return SplunkHecChannel(spec, settings)
    if spec.type == "syslog":
        from jupiter.integrations.channels.syslog import SyslogChannel

        return SyslogChannel(spec, settings)
    if spec.type == "webhook":
        from jupiter.integrations.channels.webhook import WebhookChannel

        return WebhookChannel(spec, settings)
    from jupiter.integrations.channels.apprise_channel import AppriseChannel

    return AppriseChannel(spec, settings)
