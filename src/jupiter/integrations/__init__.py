"""Integrations: audited state changes become outbox rows (same transaction),
a dispatcher delivers them to channels (Slack, Jira, Splunk HEC, syslog
LEEF/CEF, signed webhooks, apprise) at least once. See docs/integrations.md."""
