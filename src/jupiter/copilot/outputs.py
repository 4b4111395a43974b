"""Intents that report or hand over: SIEM and Jira delivery through the
integrations outbox, hardened configurations, statistics, findings."""

from __future__ import annotations

from typing import Any

from jupiter.copilot.model import Response
from jupiter.copilot.turn import Refusal, Turn

SIEM_TYPES = {"splunk": ("splunk",), "qradar": ("syslog",), "syslog": ("syslog",)}


def _channels(turn: Turn, types: tuple[str, ...]) -> list[str]:
    return sorted(n for n, c in turn.engine.routing.channels.items() if c.type in types)


def _deliver(turn: Turn, channels: list[str], rem: str) -> list[dict[str, Any]]:
    """The remediation's outbox rows on ``channels``, delivered now (one
    dispatcher pass, as the worker's next round would). Workflow events
    name ``remediation:REM-n``, approval verdicts ``REM-n``."""
    subjects = {rem, f"remediation:{rem}"}

    def rows() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in channels:
            listed = turn.engine.outbox_list(channel=name, limit=10_000)["rows"]
            out += [r for r in listed if r["subject"].split("/")[0] in subjects]
        return sorted(out, key=lambda r: int(r["id"]))

    if not rows():
        return []
    turn.engine.outbox_dispatch(once=True)
    return rows()


def _events(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("id", "event", "channel", "status", "attempts", "last_error", "delivered_at")
    return [{k: r[k] for k in keep} for r in found]


def send_siem(turn: Turn) -> Response:
    text = turn.query.message.lower()
    wanted = next((w for w in SIEM_TYPES if w in text), None)
    types = SIEM_TYPES[wanted] if wanted else ("splunk", "syslog")
    channels = _channels(turn, types)
    if not channels:
        what = wanted or "SIEM"
        raise Refusal(
            f"no {what} channel is configured; add one of type {' or '.join(types)} to "
            "JUPITER_HOME/integrations.yaml (see docs/integrations.md)"
        )
    rem = turn.remediation()
    info = turn.engine.remediations.show(rem, timeline=False)
    found = _deliver(turn, channels, rem)
    if not found:
        raise Refusal(
            f"no event of {rem} is routed to {', '.join(channels)}; add a route for "
            "remediation.* events in integrations.yaml"
        )
    delivered = [r for r in found if r["status"] == "delivered"]
    data = {
        "channels": channels,
        "remediation": rem,
        "remediation_status": info.status,
        "events": _events(found),
        "delivered": len(delivered),
        "pending": len([r for r in found if r["status"] == "pending"]),
        "dead": len([r for r in found if r["status"] == "dead"]),
    }
    errors = "; ".join(sorted({r["last_error"] for r in found if r["last_error"]}))
    return Response(
        len(delivered) == len(found),
        turn.parsed.intent,
        f"{len(delivered)}/{len(found)} event(s) of {rem} ({info.status}) delivered to "
        f"{', '.join(channels)}" + (f"; {errors}" if errors else ""),
        data,
    )


def update_ticket(turn: Turn) -> Response:
    channels = _channels(turn, ("jira",))
    if not channels:
        raise Refusal(
            "no Jira channel is configured; add one of type jira to JUPITER_HOME/integrations.yaml "
            "(see docs/integrations.md)"
        )
    rem = turn.remediation()
    info = turn.engine.remediations.show(rem, timeline=False)
    text = turn.query.message.lower()
    if "resolved" in text and info.status != "completed":
        raise Refusal(
            f"{rem} is {info.status}, not completed; its Jira ticket is resolved when it completes"
        )
    found = _deliver(turn, channels, rem)
    if not found:
        raise Refusal(f"no event of {rem} is routed to {', '.join(channels)}")
    delivered = [r for r in found if r["status"] == "delivered"]
    resolving = [r for r in delivered if r["event"] == "remediation.completed"]
    data = {
        "channels": channels,
        "remediation": rem,
        "remediation_status": info.status,
        "ticket_status": "resolved" if resolving else "updated" if delivered else "pending",
        "events": _events(found),
        "delivered": len(delivered),
    }
    errors = "; ".join(sorted({r["last_error"] for r in found if r["last_error"]}))
    return Response(
        len(delivered) == len(found),
        turn.parsed.intent,
        f"Jira ticket of {rem}: {data['ticket_status']} ({len(delivered)}/{len(found)} event(s) "
        "delivered)" + (f"; {errors}" if errors else ""),
        data,
    )


# The seed's metadata keys → ``jupiter generate`` parameters, per kind.
_PARAMS: dict[str, dict[str, str]] = {
    "ssh": {"hardening_level": "level", "port": "port", "allow_users": "allow_users"},
    "firewall": {
        "asset_type": "asset_type",
        "allowed_ports": "allow",
        "allowed_udp_ports": "allow_udp",
        "admin_ports": "admin_ports",
        "admin_cidr": "admin_cidr",
    },
    "postgresql": {
        "environment": "environment",
        "version": "version",
        "max_connections": "max_connections",
        "allowed_cidrs": "allowed_cidrs",
    },
}


def generate_config(turn: Turn) -> Response:
    ctype = turn.first("config_type")
    if ctype is None:
        raise Refusal("which configuration? say ssh, firewall or database (config_type)")
    kind = {"ssh": "ssh", "firewall": "firewall", "database": "postgresql"}.get(str(ctype))
    if kind is None:
        raise Refusal(f"config_type {ctype!r} is not available; use ssh, firewall or database")
    database = str(turn.meta.get("database", "postgresql")).lower()
    if kind == "postgresql" and database not in ("postgresql", "postgres"):
        raise Refusal(f"a hardened {database} configuration is not available; only PostgreSQL")
    params: dict[str, object] = {}
    for key, name in _PARAMS[kind].items():
        if key in turn.meta:
            params[name] = turn.meta[key]
    if kind == "firewall" and "asset_type" not in params and turn.parsed.params.get("asset_ref"):
        phrase = str(turn.parsed.params["asset_ref"]).lower().replace(" ", "_")
        if phrase in ("web_server", "database", "bastion"):
            params["asset_type"] = phrase
    if (
        kind == "postgresql"
        and "environment" not in params
        and turn.parsed.params.get("environment")
    ):
        params["environment"] = turn.parsed.params["environment"]
    report = turn.engine.generate_config(kind, params)
    out = report.to_json()
    return turn.ok(
        f"Hardened {kind} configuration: {', '.join(report.files)}",
        {"config_type": str(ctype), "kind": kind, "params": params, "config": out},
    )


def statistics(turn: Turn) -> Response:
    since = turn.meta.get("since")
    group = turn.meta.get("group")
    stats = turn.engine.statistics(since=since, group=group)
    rate = stats.get("remediation_success_rate")
    return turn.ok(
        f"{stats['remediations_performed']} remediation(s) performed, success rate "
        f"{rate if rate is not None else 'n/a'}%, {stats['rollbacks_performed']} rollback(s), "
        f"{stats['vulnerabilities_fixed']} vulnerabilit(y/ies) fixed",
        stats,
    )


def list_findings(turn: Turn) -> Response:
    filters: dict[str, Any] = {}
    for key in ("severity", "status", "category"):
        value = turn.first(key)
        if value is not None:
            filters[key] = value
    if turn.first("asset_id", "asset", "asset_ref") is not None:
        filters["asset"] = turn.asset()
    rows = turn.engine.list_findings(**filters)
    limit = int(turn.meta.get("limit", 50))
    shown = [
        {k: f[k] for k in ("id", "asset", "rule_id", "category", "severity", "status", "title")}
        | {"path": f["location"].get("path")}
        for f in rows[:limit]
    ]
    said = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all"
    return turn.ok(
        f"{len(rows)} finding(s) ({said})",
        {"findings": shown, "count": len(rows), "filters": filters},
    )
