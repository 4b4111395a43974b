"""Parameters of ``jupiter generate <kind>``: one pydantic model per kind.

Every model forbids unknown fields; :func:`parse_params` turns pydantic's
errors into one :class:`~jupiter.errors.InputError` sentence that names the
kind, the parameter and what to give instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jupiter.errors import InputError
from jupiter.netparams import network, port_list

Kind = Literal["ssh", "firewall", "postgresql"]
KINDS: tuple[Kind, ...] = ("ssh", "firewall", "postgresql")

# sshd user/group patterns: names, wildcards and user@host; nothing that
# could end a line or start a comment in sshd_config.
_SSH_PATTERN = re.compile(r"^[A-Za-z0-9._*?!@%:/\[\]-]+$")
_PG_DURATION = re.compile(r"^\d+(ms|s|min|h|d)?$")
_PG_WILDCARDS = frozenset({"*", "0.0.0.0", "::"})  # noqa: S104 - refused, never bound
_ABSOLUTE = re.compile(r"^/[A-Za-z0-9._/+-]+$")


def _split(value: object) -> object:
    """Accept a comma/space separated string as well as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value) if v]
    return value


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


class SshParams(BaseModel):
    """``level`` as in ``sshd-hardening``; ``openssh_version`` (the release
    the file is for, e.g. ``9.2``; default: the OpenSSH installed here);
    ``port``; ``listen_address`` (addresses, none = all);
    ``allow_users``/``allow_groups`` (sshd patterns); ``sftp`` (internal-sftp
    subsystem); ``banner`` (absolute path or none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["baseline", "strict", "maximum"] = "strict"
    openssh_version: str | None = Field(default=None, pattern=r"^\d+\.\d+(p\d+)?$")
    port: int = Field(default=22, ge=1, le=65535)
    listen_address: list[str] = Field(default_factory=list)
    allow_users: list[str] = Field(default_factory=list)
    allow_groups: list[str] = Field(default_factory=list)
    sftp: bool = True
    banner: str | None = None

    _split_lists = field_validator("listen_address", "allow_users", "allow_groups", mode="before")(
        _split
    )

    @field_validator("listen_address")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @field_validator("allow_users", "allow_groups")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _SSH_PATTERN.match(item):
                raise ValueError(f"{item!r} is not a user or group pattern sshd accepts")
        return value

    @field_validator("banner")
    @classmethod
    def _banner(cls, value: str | None) -> str | None:
        if value is not None and not _ABSOLUTE.match(value):
            raise ValueError(f"{value!r} is not an absolute path such as /etc/issue.net")
        return value


class FirewallGenParams(BaseModel):
    """``asset_type``; ``allow`` (TCP ports open to anyone, e.g. "80,443");
    ``allow_udp``; ``admin_ports`` (default 22) and ``admin_cidr`` (the only
    source allowed to reach them); ``rate``/``burst`` per source per minute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_type: Literal["web_server", "database", "bastion", "generic"] = "generic"
    allow: list[int] = Field(default_factory=list)
    allow_udp: list[int] = Field(default_factory=list)
    admin_ports: list[int] = Field(default_factory=lambda: [22])
    admin_cidr: str | None = None
    rate: int = Field(default=60, ge=1, le=100_000)
    burst: int = Field(default=20, ge=1, le=100_000)

    _check_ports = field_validator("allow", "allow_udp", "admin_ports", mode="before")(
        lambda v: port_list(_split(v))
    )
    _check_cidr = field_validator("admin_cidr")(network)


Environment = Literal["production", "staging", "development"]


class PostgresqlParams(BaseModel):
    """``environment`` picks timeouts and statement logging; ``version``
    (the Debian layout ``etc/postgresql/<version>/main``); ``listen_addresses``
    (never ``*``); ``port``; ``max_connections``; ``ssl_cert_file`` /
    ``ssl_key_file`` (absolute paths on the host, to be provisioned);
    ``allowed_cidrs`` (networks that may connect over TLS with SCRAM);
    ``statement_timeout`` / ``idle_in_transaction_session_timeout``
    (PostgreSQL durations such as ``30s``; default by environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Environment = "production"
    version: int = Field(default=15, ge=10, le=99)
    listen_addresses: list[str] = Field(default_factory=lambda: ["localhost"])
    port: int = Field(default=5432, ge=1, le=65535)
    max_connections: int = Field(default=100, ge=5, le=10_000)
    ssl_cert_file: str = "/etc/ssl/certs/postgresql-server.crt"
    ssl_key_file: str = "/etc/ssl/private/postgresql-server.key"
    allowed_cidrs: list[str] = Field(default_factory=list)
    statement_timeout: str | None = None
    idle_in_transaction_session_timeout: str | None = None

    _split_lists = field_validator("listen_addresses", "allowed_cidrs", mode="before")(_split)

    @field_validator("listen_addresses")
    @classmethod
    def _listen(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one address, e.g. localhost")
        for item in value:
            if item in _PG_WILDCARDS:
                raise ValueError(
                    f"{item!r} listens on every interface; list the addresses clients use"
                )
            if item != "localhost":
                _address(item)
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                network = ipaddress.ip_network(item, strict=True)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a network such as 10.0.0.0/8 ({exc})") from None
            if network.prefixlen == 0:
                raise ValueError(f"{item!r} admits the whole internet; name your client networks")
            out.append(str(network))
        return out

    @field_validator("ssl_cert_file", "ssl_key_file")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not _ABSOLUTE.match(value):
            raise ValueError(f"{value!r} is not an absolute path without spaces or quotes")
        return value

    @field_validator("statement_timeout", "idle_in_transaction_session_timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _PG_DURATION.match(value):
            raise ValueError(f"{value!r} is not a PostgreSQL duration such as 30s or 5min")
        return value


MODELS: dict[Kind, type[BaseModel]] = {
    "ssh": SshParams,
    "firewall": FirewallGenParams,
    "postgresql": PostgresqlParams,
}


def known_parameters(kind: Kind) -> list[str]:
    """The parameter names ``generate(kind, ...)`` accepts, in declaration order."""
    return list(_model(kind).model_fields)


def _model(kind: str) -> type[BaseModel]:
    if kind not in MODELS:
        raise InputError(f"generate: unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    return MODELS[kind]


def parse_params(kind: Kind, raw: Mapping[str, object] | None) -> BaseModel:
    """Validate ``raw`` for ``kind``; InputError names the parameter."""
    model = _model(kind)
    data = dict(raw or {})
    unknown = [k for k in data if k not in model.model_fields]
    if unknown:
        raise InputError(
            f"generate {kind}: unknown parameter {unknown[0]!r}; known: "
            f"{', '.join(model.model_fields)}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "parameters"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(f"generate {kind}: parameter {where!r}: {msg}") from None
