"""Parser for PostgreSQL's ``pg_hba.conf``, keeping every field's position.

Records are ``TYPE DATABASE USER [ADDRESS [MASK]] METHOD [name=value ...]``;
fields are separated by blanks, ``"..."`` quotes a field (or part of it), a
comma list may contain blanks after its commas, ``#`` starts a comment. The
address is a CIDR, an address plus a netmask column, a host name (``.suffix``
matches a suffix) or ``all``/``samehost``/``samenet``. PostgreSQL 16's
``include``/``include_if_exists``/``include_dir`` lines are recognised and left
alone (not followed). A record PostgreSQL would reject raises
:class:`~jupiter.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from jupiter.errors import InputError
from jupiter.plugins.postgres.parse_conf import INCLUDE_DIRECTIVES, split_lines

CONNECTION_TYPES = ("local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
AUTH_METHODS = frozenset(
    {
        "trust",
        "reject",
        "scram-sha-256",
        "md5",
        "password",
        "gss",
        "sspi",
        "ident",
        "peer",
        "pam",
        "ldap",
        "radius",
        "cert",
        "bsd",
    }
)
_ADDRESS_KEYWORDS = ("all", "samehost", "samenet")


@dataclass(frozen=True)
class Field:
    """One whitespace-separated field (a comma list stays one field)."""

    text: str
    start: int
    end: int

    @property
    def bare(self) -> str:
        """The text without double quotes (quoted keywords lose their meaning
        in PostgreSQL, so callers that test for keywords use ``text``)."""
        return self.text.replace('"', "")


@dataclass(frozen=True)
class HbaRecord:
    """One authentication record. ``network`` is set for IP addresses; the
    method is ``fields[method_index]``."""

    path: str
    line: int
    text: str
    fields: tuple[Field, ...]
    method_index: int
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None

    @property
    def conn_type(self) -> str:
        return self.fields[0].text

    @property
    def method(self) -> str:
        return self.fields[self.method_index].text

    @property
    def address(self) -> str | None:
        return None if self.conn_type == "local" else self.fields[3].text

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.fields[self.method_index + 1 :])


@dataclass
class HbaFile:
    path: str
    text: str
    records: list[HbaRecord]
    includes: list[int]  # lines holding PostgreSQL 16 include directives (left alone)


def split_fields(text: str) -> list[Field]:
    """Fields of one hba line up to its comment (quotes and comma lists kept)."""
    fields: list[Field] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r":
            i += 1
        if i >= n or text[i] == "#":
            break
        start, in_quote = i, False
        while i < n:
            ch = text[i]
            if ch == '"':
                in_quote = not in_quote
            elif not in_quote and ch == "#":
                break
            elif not in_quote and ch in " \t\r":
                # "a, b" is one field: a trailing comma continues the list.
                if text[start:i].endswith(","):
                    while i < n and text[i] in " \t\r":
                        i += 1
                    continue
                break
            i += 1
        token = text[start:i].rstrip(" \t\r")
        fields.append(Field(token, start, start + len(token)))
    return fields


def _network(addr: str, mask: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if mask is None:
        return ipaddress.ip_network(addr, strict=False)
    ip = ipaddress.ip_address(addr)
    mask_ip = ipaddress.ip_address(mask)
    if ip.version != mask_ip.version:
        raise ValueError("address and mask are of different IP versions")
    bits = format(int(mask_ip), f"0{ip.max_prefixlen}b")
    if "01" in bits:
        raise ValueError("mask is not contiguous")
    return ipaddress.ip_network(f"{addr}/{bits.count('1')}", strict=False)


def _looks_like_ip(text: str) -> bool:
    head = text.split("/", 1)[0]
    try:
        ipaddress.ip_address(head)
    except ValueError:
        return False
    return True


def parse_hba(path: str, text: str) -> HbaFile:
    """Parse a pg_hba.conf text; malformed records raise InputError (file, line)."""
    records: list[HbaRecord] = []
    includes: list[int] = []
    for lineno, line in enumerate(split_lines(text), start=1):
        fields = split_fields(line)
        if not fields:
            continue
        kind = fields[0].text
        if kind in INCLUDE_DIRECTIVES:
            includes.append(lineno)
            continue
        records.append(_record(path, lineno, line, fields))
    return HbaFile(path, text, records, includes)


def _record(path: str, lineno: int, line: str, fields: list[Field]) -> HbaRecord:
    def fail(what: str) -> InputError:
        return InputError(
            f"{path} line {lineno}: {what} in {line.strip()!r}; complete or remove the "
            "line (PostgreSQL refuses to load a pg_hba.conf with it)"
        )

    kind = fields[0].text
    if kind not in CONNECTION_TYPES:
        raise fail(f"unknown connection type {kind!r} (expected {', '.join(CONNECTION_TYPES)})")
    names = ["database", "user"] if kind == "local" else ["database", "user", "address"]
    for index, name in enumerate(names, start=1):
        if len(fields) <= index:
            raise fail(f"the {name} field is missing")
    method_index = len(names) + 1
    network = None
    if kind != "local":
        address = fields[3].bare
        if _looks_like_ip(address):
            mask = None
            if "/" not in address:
                if len(fields) <= 4 or not _looks_like_ip(fields[4].text):
                    raise fail(f"IP address {address!r} needs a /prefix or a netmask column")
                mask = fields[4].text
                method_index += 1
            try:
                network = _network(address, mask)
            except ValueError as exc:
                raise fail(f"invalid address {address!r} ({exc})") from None
    if len(fields) <= method_index:
        raise fail("the authentication method is missing")
    method = fields[method_index].text
    if method not in AUTH_METHODS:
        raise fail(f"unknown authentication method {method!r}")
    for option in fields[method_index + 1 :]:
        if "=" not in option.text:
            raise fail(f"option {option.text!r} is not of the form name=value")
    return HbaRecord(path, lineno, line, tuple(fields), method_index, network)
