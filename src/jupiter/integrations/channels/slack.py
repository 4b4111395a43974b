"""Slack incoming webhook: a Block Kit message (header, fields, steps)."""

from __future__ import annotations

from typing import Any

from jupiter.integrations.channels.base import Channel, ChannelError, Delivery, summary_line

_EMOJI = {
    "info": ":white_check_mark:",
    "warning": ":warning:",
    "high": ":x:",
    "critical": ":rotating_light:",
}
_FIELDS = (("Asset", "asset_name"), ("Environment", "environment"), ("Target", "target"))


def blocks(item: Delivery) -> list[dict[str, Any]]:
    ctx = item.payload.get("context") or {}
    fields = [
        ("Event", item.event),
        ("Severity", item.severity),
        ("Subject", item.subject),
        ("Actor", str(item.payload.get("actor", ""))),
    ]
    for label, key in _FIELDS:
        if ctx.get(key):
            fields.append((label, str(ctx[key])))
    out: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Jupiter: {item.event}"[:150]},
        },
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in fields[:10]],
        },
    ]
    steps = ctx.get("steps") or []
    if steps:
        lines = [
            f"• `{s.get('rule_id')}` finding {s.get('finding')}: {s.get('status')}" for s in steps
        ]
        text = {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}
        out.append({"type": "section", "text": text})
    out.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"audit entry {item.payload.get('seq')} · {item.key}"}
            ],
        }
    )
    return out


class SlackChannel(Channel):
    def deliver(self, item: Delivery) -> None:
        emoji = _EMOJI.get(item.severity, "")
        message = {"text": f"{emoji} {summary_line(item)}".strip(), "blocks": blocks(item)}
        _, answer = self.post_json(self.spec.settings["url"], message)
        if isinstance(answer, str) and answer.strip() not in ("", "ok"):
            raise ChannelError(f"Slack refused the message: {answer[:200]}")
