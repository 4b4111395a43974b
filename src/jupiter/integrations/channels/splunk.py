"""Splunk HTTP Event Collector: ``POST /services/collector/event`` with
``Authorization: Splunk <token>``, every due event of a pass in one batched
request; with ``ack: true`` the request carries ``X-Splunk-Request-Channel``
and is only counted delivered once ``/services/collector/ack`` confirms it
was indexed."""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from jupiter.integrations.channels.base import Channel, ChannelError, Delivery

#: How long to wait for the indexer acknowledgement (seconds, polled).
ACK_WAIT_S = 10.0


class SplunkHecChannel(Channel):
    def _url(self, path: str) -> str:
        base = self.spec.settings["url"].rstrip("/")
        if urlsplit(base).path.startswith("/services/collector"):
            base = base[: base.index("/services/collector")]
        return base + path

    def _event(self, item: Delivery) -> dict[str, Any]:
        settings = self.spec.settings
        ts = item.payload.get("ts")
        try:
            from datetime import datetime

            when = datetime.fromisoformat(str(ts)).timestamp()
        except ValueError:
            when = time.time()
        event: dict[str, Any] = {
            "time": round(when, 3),
            "host": socket.gethostname(),
            "source": "jupiter",
            "sourcetype": settings.get("sourcetype", "jupiter:remediation"),
            "event": {"id": item.key, **item.payload},
        }
        if settings.get("index"):
            event["index"] = settings["index"]
        return event

    def deliver(self, item: Delivery) -> None:
        failed = self.deliver_batch([item])[item.id]
        if failed is not None:
            raise failed

    def deliver_batch(self, items: list[Delivery]) -> dict[int, Exception | None]:
        headers = {"Authorization": f"Splunk {self.spec.settings['token']}"}
        ack = self.spec.settings.get("ack", "false").lower() in ("1", "true", "yes")
        if ack:
            headers["X-Splunk-Request-Channel"] = str(uuid.uuid4())
        body = "\n".join(json.dumps(self._event(i), sort_keys=True) for i in items).encode()
        try:
            _, raw = self.http(
                "POST",
                self._url("/services/collector/event"),
                body,
                {"Content-Type": "application/json", **headers},
            )
            answer = json.loads(raw or b"{}")
            if answer.get("code", 0) != 0:
                raise ChannelError(f"Splunk HEC refused the batch: {answer.get('text')}")
            if ack:
                self._await_ack(answer.get("ackId"), headers)
        except ChannelError as exc:
            return {i.id: exc for i in items}
        except ValueError as exc:
            error = ChannelError(f"Splunk HEC answered something that is not JSON ({exc})")
            return {i.id: error for i in items}
        return {i.id: None for i in items}

    def _await_ack(self, ack_id: Any, headers: dict[str, str]) -> None:
        if not isinstance(ack_id, int):
            raise ChannelError("Splunk HEC gave no ackId although acknowledgement is enabled")
        deadline = time.monotonic() + ACK_WAIT_S
        delay = 0.05
        while True:
            _, raw = self.http(
                "POST",
                self._url("/services/collector/ack"),
                json.dumps({"acks": [ack_id]}).encode(),
                {"Content-Type": "application/json", **headers},
            )
            acks = json.loads(raw or b"{}").get("acks", {})
            if acks.get(str(ack_id)) is True:
                return
            if time.monotonic() > deadline:
                raise ChannelError(
                    f"Splunk HEC did not acknowledge ackId {ack_id} within {ACK_WAIT_S:.0f} s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
