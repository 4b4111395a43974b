"""Validators for network parameters shared by remediators and generators."""

from __future__ import annotations

import ipaddress


def port_list(value: object) -> list[int]:
    """Accept ``[80, 443]``, ``"80,443"`` or ``"80"``; reject anything that is
    not a whole number from 1 to 65535, naming the bad item. Sorted, unique."""
    if value is None:
        return []
    items: list[object]
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        items = [value]
    ports: set[int] = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdecimal() or not 1 <= int(text) <= 65535:
            raise ValueError(
                f"{item!r} is not a port number; give whole numbers from 1 to 65535, e.g. 80,443"
            )
        ports.add(int(text))
    return sorted(ports)


def network(value: str | None) -> str | None:
    """A CIDR network such as ``10.0.0.0/8`` (host bits must be zero), or None."""
    if value is None or not value.strip():
        return None
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not an IPv4/IPv6 network ({exc}); give one such as 10.0.0.0/8"
        ) from None
