"""What every channel shares: the delivery it is handed, its errors, and a
small JSON-over-HTTP client (stdlib; every call has a timeout)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jupiter import __version__
from jupiter.integrations.config import ChannelSpec, DispatchSettings


class ChannelError(Exception):
    """A delivery failed; the dispatcher tries again later (with backoff)."""


class ChannelDown(ChannelError):
    """The channel cannot be reached at all (refused, timed out, no route):
    the rest of the pass's rows for it are not tried, so a dead endpoint
    costs one timeout per pass, not one per row."""


class PermanentError(ChannelError):
    """A delivery that can never succeed as configured (e.g. a Jira
    transition that does not exist): the row goes ``dead`` at once."""


@dataclass(frozen=True)
class Delivery:
    id: int
    key: str
    event: str
    severity: str
    subject: str
    payload: dict[str, Any]
    attempt: int


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what an error may name (a webhook
    URL's path is often its secret)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class Channel:
    """Base: deliver each item on its own; channels that batch override
    :meth:`deliver_batch`."""

    def __init__(self, spec: ChannelSpec, settings: DispatchSettings) -> None:
        self.spec = spec
        self.name = spec.name
        self.timeout = settings.timeout_s
        self._tls: ssl.SSLContext | None = None

    def deliver(self, item: Delivery) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def deliver_batch(self, items: list[Delivery]) -> dict[int, Exception | None]:
        results: dict[int, Exception | None] = {}
        down: ChannelDown | None = None
        for item in items:
            if down is not None:
                results[item.id] = down
                continue
            try:
                self.deliver(item)
                results[item.id] = None
            except ChannelDown as exc:
                results[item.id] = down = exc
            except Exception as exc:  # noqa: BLE001 - every failure is the row's last error
                results[item.id] = exc
        return results

    def close(self) -> None:
        """Release connections (syslog keeps its TCP socket open)."""

    # -- HTTP ----------------------------------------------------------
    def http(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request; a non-2xx answer or a network error is a ChannelError
        naming the host (never the full URL) and the answer's start."""
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - schemes checked at load
        request.add_header("User-Agent", f"jupiter/{__version__}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if url.startswith("https:") and self._tls is None:
            self._tls = ssl.create_default_context()  # loading the CAs costs: once per channel
        try:
            with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked in config
                request, timeout=self.timeout, context=self._tls
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read()[:300].decode("utf-8", "replace").strip()
            raise ChannelError(
                f"{origin(url)} answered HTTP {exc.code} {exc.reason}"
                + (f": {text}" if text else "")
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ChannelDown(f"{origin(url)} cannot be reached ({reason})") from None

    def post_json(
        self, url: str, data: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        status, raw = self.http(
            "POST",
            url,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )
        return status, _loads(raw)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def summary_line(item: Delivery) -> str:
    """One line for a human: ``[HIGH] fix.failed run:3 on web-1``."""
    ctx = item.payload.get("context") or {}
    where = ctx.get("asset_name") or ctx.get("asset") or ctx.get("target") or ""
    return f"[{item.severity.upper()}] {item.event} {item.subject}" + (
        f" on {where}" if where else ""
    )
