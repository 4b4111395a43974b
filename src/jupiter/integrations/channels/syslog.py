"""Syslog to a SIEM (QRadar and others): RFC 5424 messages carrying LEEF 2.0
(QRadar's format) or CEF (the ``audit export`` mapping), over UDP (one
datagram each), TCP or TLS (RFC 6587 octet counting: ``LEN SP MSG``).

``JUPITER_SYSLOG_URL=tcp+tls://siem:6514``; ``ca_file`` names the CA bundle
that signs the server's certificate (else the system's)."""

from __future__ import annotations

import socket
import ssl
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jupiter import __version__, audit
from jupiter.integrations.channels.base import Channel, ChannelError, Delivery

#: syslog facility local4 (20) by Jupiter severity -> syslog severity.
_FACILITY = 20
_SYSLOG_SEVERITY = {"critical": 2, "high": 3, "warning": 4, "info": 6}
#: LEEF ``sev`` (1-10) by Jupiter severity.
_LEEF_SEVERITY = {"critical": 10, "high": 8, "warning": 5, "info": 2}
_DEFAULT_PORT = {"udp": 514, "tcp": 514, "tcp+tls": 6514}


def _leef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _leef_value(value: Any) -> str:
    # Tab separates attributes: none may appear inside one.
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def to_leef(item: Delivery) -> str:
    """One LEEF 2.0 event: header, tab delimiter (``x09``), key=value pairs."""
    payload = item.payload
    ctx = payload.get("context") or {}
    ts = datetime.fromisoformat(str(payload.get("ts")))
    attrs: dict[str, Any] = {
        "devTime": ts.strftime("%b %d %Y %H:%M:%S.") + f"{ts.microsecond // 1000:03d} UTC",
        "devTimeFormat": "MMM dd yyyy HH:mm:ss.SSS z",
        "cat": item.event.split(".", 1)[0],
        "sev": _LEEF_SEVERITY.get(item.severity, 2),
        "usrName": payload.get("actor", ""),
        "action": payload.get("action", ""),
        "resource": item.subject,
        "seq": payload.get("seq", ""),
        "hash": payload.get("hash", ""),
        "deliveryId": item.key,
    }
    for key in ("asset", "environment", "group", "target"):
        if ctx.get(key):
            attrs[key] = ctx[key]
    attrs["msg"] = audit.canonical(payload.get("data") or {}).decode()
    header = "|".join(
        _leef_header(x) for x in ("LEEF:2.0", "Jupiter", "Jupiter", __version__, item.event)
    )
    return f"{header}|x09|" + "\t".join(f"{k}={_leef_value(v)}" for k, v in attrs.items())


def to_cef(item: Delivery) -> str:
    payload = item.payload
    entry = {
        "action": item.event,
        "ts": payload.get("ts"),
        "actor": payload.get("actor", ""),
        "subject": item.subject,
        "hash": payload.get("hash", ""),
        "seq": payload.get("seq", 0),
        "data": payload.get("data") or {},
    }
    return audit.to_cef(entry, __version__)


def rfc5424(item: Delivery, body: str) -> bytes:
    pri = _FACILITY * 8 + _SYSLOG_SEVERITY.get(item.severity, 6)
    ts = str(item.payload.get("ts") or datetime.now().astimezone().isoformat())
    host = socket.gethostname()[:255] or "-"
    msgid = item.event[:32]
    return f"<{pri}>1 {ts} {host} jupiter - {msgid} - {body}".encode()


class SyslogChannel(Channel):
    def deliver(self, item: Delivery) -> None:
        failed = self.deliver_batch([item])[item.id]
        if failed is not None:
            raise failed

    def _messages(self, items: list[Delivery]) -> list[bytes]:
        fmt = self.spec.settings.get("format", "leef")
        render = to_cef if fmt == "cef" else to_leef
        return [rfc5424(i, render(i)) for i in items]

    def deliver_batch(self, items: list[Delivery]) -> dict[int, Exception | None]:
        parts = urlsplit(self.spec.settings["url"])
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORT[parts.scheme]
        where = f"{parts.scheme}://{host}:{port}"
        try:
            messages = self._messages(items)
            if parts.scheme == "udp":
                with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
                    sock.settimeout(self.timeout)
                    for message in messages:
                        sock.sendto(message, (host, port))
            else:
                self._stream(host, port, parts.scheme == "tcp+tls", messages)
        except ssl.SSLError as exc:
            error = ChannelError(
                f"syslog server {where} failed the TLS handshake ({exc.reason or exc}); "
                "check its certificate and the channel's ca_file"
            )
            return {i.id: error for i in items}
        except (OSError, ValueError) as exc:
            error = ChannelError(f"syslog server {where} cannot be reached ({exc})")
            return {i.id: error for i in items}
        return {i.id: None for i in items}

    def _stream(self, host: str, port: int, tls: bool, messages: list[bytes]) -> None:
        raw = socket.create_connection((host, port), timeout=self.timeout)
        sock: socket.socket = raw
        try:
            if tls:
                context = ssl.create_default_context(cafile=self.spec.settings.get("ca_file"))
                sock = context.wrap_socket(raw, server_hostname=host)
            framed = b"".join(str(len(m)).encode() + b" " + m for m in messages)
            sock.sendall(framed)
        finally:
            sock.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
