"""Generic webhook: the event as JSON, signed with HMAC-SHA256.

Headers: ``X-Jupiter-Event``, ``X-Jupiter-Delivery`` (the idempotency key,
the same on every attempt), ``X-Jupiter-Timestamp`` (Unix seconds) and
``X-Jupiter-Signature: sha256=<hex>`` over ``"<timestamp>.<body>"``, so a
receiver can reject a replayed or altered request."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from jupiter.integrations.channels.base import Channel, Delivery


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(Channel):
    def deliver(self, item: Delivery) -> None:
        body = json.dumps(
            {"id": item.key, "event": item.event, "severity": item.severity, **item.payload},
            sort_keys=True,
        ).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Jupiter-Event": item.event,
            "X-Jupiter-Delivery": item.key,
            "Idempotency-Key": item.key,
            "X-Jupiter-Timestamp": stamp,
        }
        secret = self.spec.settings.get("secret")
        if secret:
            headers["X-Jupiter-Signature"] = signature(secret, stamp, body)
        self.http("POST", self.spec.settings["url"], body, headers)
