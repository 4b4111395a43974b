"""Routing as data: which events go to which channel.

Read from ``JUPITER_HOME/integrations.yaml`` when it exists; otherwise each
channel whose environment variable is set (``JUPITER_SLACK_WEBHOOK_URL``,
``JUPITER_JIRA_URL``, ``JUPITER_SPLUNK_HEC_URL``, ``JUPITER_SYSLOG_URL``,
``JUPITER_WEBHOOK_URL``, ``JUPITER_APPRISE_URLS``) gets every event at or
above ``JUPITER_OUTBOX_MIN_SEVERITY`` (default ``info``).

A channel's secrets (webhook URLs, tokens, the HMAC key) are given as
``<field>_env: VAR`` or ``<field>_file: PATH`` and read when a channel is
built; a literal secret in the file is refused, so the file can be shared
and the secrets never reach the database or any output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupiter.errors import InputError
from jupiter.integrations.events import KNOWN_EVENTS, NOTIFY_PREFIX, Severity

CONFIG_NAME = "integrations.yaml"

#: channel type -> (field -> default environment variable); secret fields.
FIELDS: dict[str, dict[str, str | None]] = {
    "slack": {"url": "JUPITER_SLACK_WEBHOOK_URL"},
    "jira": {
        "url": "JUPITER_JIRA_URL",
        "user": "JUPITER_JIRA_USER",
        "token": "JUPITER_JIRA_TOKEN",
        "project": "JUPITER_JIRA_PROJECT",
        "api_version": None,
        "issue_type": None,
        "resolve_transition": None,
        "reopen_transition": None,
    },
    "splunk": {
        "url": "JUPITER_SPLUNK_HEC_URL",
        "token": "JUPITER_SPLUNK_HEC_TOKEN",
        "ack": None,
        "index": None,
        "sourcetype": None,
    },
    "syslog": {
        "url": "JUPITER_SYSLOG_URL",
        "format": "JUPITER_SYSLOG_FORMAT",
        "ca_file": "JUPITER_SYSLOG_CA_FILE",
    },
    "webhook": {"url": "JUPITER_WEBHOOK_URL", "secret": "JUPITER_WEBHOOK_SECRET"},
    "apprise": {"urls": "JUPITER_APPRISE_URLS"},
}
SECRET_FIELDS: dict[str, frozenset[str]] = {
    "slack": frozenset({"url"}),
    "jira": frozenset({"token"}),
    "splunk": frozenset({"token"}),
    "syslog": frozenset(),
    "webhook": frozenset({"secret"}),
    "apprise": frozenset({"urls"}),
}
_URL_SCHEMES = {
    "slack": {"http", "https"},
    "jira": {"http", "https"},
    "splunk": {"http", "https"},
    "syslog": {"udp", "tcp", "tcp+tls"},
    "webhook": {"http", "https"},
}


@dataclass(frozen=True)
class ChannelSpec:
    """A configured channel: its settings with secrets resolved (kept in
    memory only; :meth:`secret_values` lets errors be scrubbed of them)."""

    name: str
    type: str
    settings: dict[str, str]

    def secret_values(self) -> list[str]:
        return [v for k, v in self.settings.items() if k in SECRET_FIELDS[self.type] and v]


@dataclass(frozen=True)
class Route:
    events: tuple[str, ...]
    channels: tuple[str, ...]
    min_severity: Severity = Severity.INFO
    groups: frozenset[str] | None = None
    environments: frozenset[str] | None = None

    def takes(self, event: str, severity: Severity) -> bool:
        return severity >= self.min_severity and any(fnmatchcase(event, p) for p in self.events)

    @property
    def needs_context(self) -> bool:
        return self.groups is not None or self.environments is not None

    def matches_context(self, group: str | None, environment: str | None) -> bool:
        if self.groups is not None and group not in self.groups:
            return False
        return self.environments is None or environment in self.environments


@dataclass(frozen=True)
class DispatchSettings:
    max_attempts: int = 8
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    batch: int = 100
    lease_s: float = 300.0


@dataclass
class Routing:
    channels: dict[str, ChannelSpec] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    source: str = "none"
    _cache: dict[tuple[str, int], list[Route]] = field(default_factory=dict, repr=False)

    def candidates(self, event: str, severity: Severity) -> list[Route]:
        key = (event, int(severity))
        found = self._cache.get(key)
        if found is None:
            found = [r for r in self.routes if r.takes(event, severity)]
            self._cache[key] = found
        return found

    def to_json(self) -> dict[str, Any]:
        """What is configured, without any secret (for ``outbox channels``)."""
        return {
            "source": self.source,
            "channels": [
                {"name": c.name, "type": c.type, "fields": sorted(c.settings)}
                for c in self.channels.values()
            ],
            "routes": [
                {
                    "events": list(r.events),
                    "channels": list(r.channels),
                    "min_severity": r.min_severity.label,
                    "groups": sorted(r.groups) if r.groups is not None else None,
                    "environments": sorted(r.environments) if r.environments is not None else None,
                }
                for r in self.routes
            ],
        }


def load_routing(home: Path, env: dict[str, str] | None = None) -> Routing:
    """The routing of the workspace at ``home`` (file, else environment)."""
    env = dict(os.environ) if env is None else env
    path = home / CONFIG_NAME
    if path.is_file():
        from jupiter.yamlfile import read_yaml

        return _from_document(read_yaml(path, "integrations file ", "try again"), path, env)
    return _from_env(env)


def _from_env(env: dict[str, str]) -> Routing:
    routing = Routing(source="environment")
    for kind, fields in FIELDS.items():
        first = next(iter(fields.values()))
        if first and env.get(first):
            routing.channels[kind] = _channel(kind, kind, {}, env, f"${first}")
    if routing.channels:
        try:
            least = Severity.parse(env.get("JUPITER_OUTBOX_MIN_SEVERITY") or "info")
        except ValueError as exc:
            raise InputError(f"JUPITER_OUTBOX_MIN_SEVERITY: {exc}") from None
        routing.routes.append(Route(("*",), tuple(routing.channels), least))
    return routing


def _from_document(doc: Any, path: Path, env: dict[str, str]) -> Routing:
    where = str(path)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise InputError(f"{where} must be a mapping with 'channels' and 'routes'; fix it")
    unknown = set(doc) - {"channels", "routes", "dispatch"}
    if unknown:
        raise InputError(
            f"{where}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}; "
            "use channels, routes and dispatch"
        )
    routing = Routing(source=where)
    channels = doc.get("channels") or {}
    if not isinstance(channels, dict):
        raise InputError(f"{where}: 'channels' must map channel names to settings; fix it")
    for name, raw in channels.items():
        if not isinstance(raw, dict) or "type" not in raw:
            raise InputError(f"{where}: channel {name!r} needs a mapping with a 'type'; fix it")
        kind = str(raw["type"])
        if kind not in FIELDS:
            raise InputError(
                f"{where}: channel {name!r} has unknown type {kind!r}; use one of: "
                f"{', '.join(FIELDS)}"
            )
        given = {k: v for k, v in raw.items() if k != "type"}
        routing.channels[str(name)] = _channel(str(name), kind, given, env, where)
    for index, raw in enumerate(doc.get("routes") or [], start=1):
        routing.routes.append(_route(raw, index, routing.channels, where))
    routing.dispatch = _dispatch(doc.get("dispatch") or {}, where)
    return routing


def _channel(
    name: str, kind: str, given: dict[str, Any], env: dict[str, str], where: str
) -> ChannelSpec:
    fields = FIELDS[kind]
    secrets = SECRET_FIELDS[kind]
    settings: dict[str, str] = {}
    allowed = set(fields) | {f"{f}_env" for f in fields} | {f"{f}_file" for f in fields}
    extra = set(given) - allowed
    if extra:
        raise InputError(
            f"{where}: channel {name!r} has unknown setting(s) {', '.join(sorted(extra))}; "
            f"a {kind} channel takes {', '.join(fields)} (each also as <name>_env or <name>_file)"
        )
    for fld, default_env in fields.items():
        value: str | None = None
        if fld in given:
            if fld in secrets:
                raise InputError(
                    f"{where}: channel {name!r} gives its secret {fld!r} in the file; give "
                    f"{fld}_env (an environment variable) or {fld}_file (a file) instead"
                )
            value = str(given[fld])
        elif f"{fld}_env" in given:
            var = str(given[f"{fld}_env"])
            value = env.get(var)
            if not value:
                raise InputError(
                    f"{where}: channel {name!r} reads {fld} from ${var}, which is not set; "
                    "set it or remove the channel"
                )
        elif f"{fld}_file" in given:
            file = Path(str(given[f"{fld}_file"])).expanduser()
            try:
                value = file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(
                    f"{where}: channel {name!r} reads {fld} from {file}, which cannot be read "
                    f"({exc.strerror or exc}); fix the path or its permissions"
                ) from None
        elif default_env and env.get(default_env):
            value = env[default_env]
        if value:
            settings[fld] = value
    _check_channel(name, kind, settings, where)
    return ChannelSpec(name, kind, settings)


def _check_channel(name: str, kind: str, settings: dict[str, str], where: str) -> None:
    required = {"jira": ("url", "user", "token", "project"), "splunk": ("url", "token")}.get(
        kind, ("urls",) if kind == "apprise" else ("url",)
    )
    missing = [f for f in required if not settings.get(f)]
    if missing:
        raise InputError(
            f"{where}: {kind} channel {name!r} has no {', '.join(missing)}; set "
            + ", ".join(f"{f}_env or ${FIELDS[kind][f]}" for f in missing)
        )
    schemes = _URL_SCHEMES.get(kind)
    if schemes:
        parts = urlsplit(settings["url"])
        if parts.scheme not in schemes or not parts.hostname:
            shown = "its URL" if kind in ("slack", "webhook") else repr(settings["url"])
            raise InputError(
                f"{where}: {kind} channel {name!r}: {shown} is not a valid URL; use "
                f"{' or '.join(s + '://HOST' for s in sorted(schemes))}…"
            )
    if kind == "syslog" and settings.get("format", "leef") not in ("leef", "cef"):
        raise InputError(
            f"{where}: syslog channel {name!r} has format {settings['format']!r}; use leef or cef"
        )
    if kind == "jira" and settings.get("api_version", "2") not in ("2", "3"):
        raise InputError(f"{where}: jira channel {name!r}: api_version must be 2 or 3")


def _route(raw: Any, index: int, channels: dict[str, ChannelSpec], where: str) -> Route:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: route #{index} must be a mapping; fix it")
    events = _names(raw.get("events", ["*"]), f"route #{index} events", where)
    for pattern in events:
        if pattern.startswith(NOTIFY_PREFIX):
            continue
        if not any(fnmatchcase(e, pattern) for e in KNOWN_EVENTS):
            raise InputError(
                f"{where}: route #{index} names unknown event {pattern!r}; use one of: "
                f"{', '.join(sorted(KNOWN_EVENTS))}, or notify.<name> (a wildcard * works too)"
            )
    targets = _names(raw.get("channels"), f"route #{index} channels", where)
    for name in targets:
        if name not in channels:
            raise InputError(
                f"{where}: route #{index} sends to channel {name!r}, which is not configured; "
                f"configured: {', '.join(channels) or 'none'}"
            )
    try:
        least = Severity.parse(str(raw.get("min_severity", "info")))
    except ValueError as exc:
        raise InputError(f"{where}: route #{index}: {exc}") from None
    groups = raw.get("groups")
    envs = raw.get("environments")
    return Route(
        tuple(events),
        tuple(targets),
        least,
        frozenset(_names(groups, "groups", where)) if groups is not None else None,
        frozenset(_names(envs, "environments", where)) if envs is not None else None,
    )


def _names(value: Any, what: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: {what} must be a non-empty list of names; fix it")
    return list(value)


def _dispatch(raw: Any, where: str) -> DispatchSettings:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: 'dispatch' must be a mapping; fix it")
    defaults = DispatchSettings()
    values: dict[str, Any] = {}
    for key, default in defaults.__dict__.items():
        if key in raw:
            try:
                number = type(default)(raw[key])
            except (TypeError, ValueError):
                number = None
            if number is None or number <= 0:
                raise InputError(f"{where}: dispatch.{key} must be a positive number; fix it")
            values[key] = number
    unknown = set(raw) - set(defaults.__dict__)
    if unknown:
        raise InputError(
            f"{where}: unknown dispatch setting(s) {', '.join(sorted(map(str, unknown)))}; use "
            f"{', '.join(defaults.__dict__)}"
        )
    return DispatchSettings(**values)
