"""Parameters of ``postgresql-conf`` and ``pg-hba`` (:class:`PostgresParams`)."""

from __future__ import annotations

import ipaddress
import posixpath
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jupiter.errors import PathEscapeError
from jupiter.plugins.postgres.tls import TlsProfile
from jupiter.targets.base import normalise_relpath

HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class PostgresParams(BaseModel):
    """Parameters of ``postgresql-conf`` and ``pg-hba``."""

    model_config = ConfigDict(extra="forbid")

    server_root: str = "/"
    tls_profile: TlsProfile = "intermediate"
    ca_cert: str | None = None
    ca_key: str | None = None
    host_names: list[str] = Field(default_factory=list)
    client_certificates: bool = False

    @field_validator("host_names", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list):
            for name in names:
                if not isinstance(name, str) or not (HOSTNAME.match(name) or is_ip(name)):
                    raise ValueError(f"{name!r} is not a host name or IP address")
        return names

    @field_validator("ca_cert", "ca_key")
    @classmethod
    def _in_target(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalise_relpath(value.lstrip("/"))
        except PathEscapeError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _ca_pair(self) -> PostgresParams:
        if (self.ca_cert is None) != (self.ca_key is None):
            raise ValueError("ca_cert and ca_key go together: give both or neither")
        return self

    @field_validator("server_root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("server_root must be an absolute path such as '/'")
        return posixpath.normpath(value)
