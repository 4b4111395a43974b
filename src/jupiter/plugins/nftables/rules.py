"""One nftables rule as data: its matches, its verdict, the statements it
carries (ignored), and whatever it contains that Jupiter does not interpret.

Vocabulary understood (enough for the input chains of servers):
``iif``/``iifname``/``oif``/``oifname``, ``ct state``, ``ip|ip6 saddr|daddr``,
``ip protocol``, ``ip6 nexthdr``, ``meta l4proto|nfproto|iif|iifname``,
``tcp|udp|th dport|sport``, ``icmp|icmpv6 type``, ``limit rate [over]``,
dynamic-set/meter statements (``update @s { ip saddr limit rate over ... }``),
``counter``, ``log``, ``comment``, verdicts (``accept``, ``drop``,
``reject [with ...]``, ``jump``, ``goto``, ``return``, ``continue``) and
verdict maps (``tcp dport vmap { 22 : accept }``). Values may be single
words, ``a,b`` lists, anonymous sets ``{ ... }``, ranges ``a-b`` or ``@set``
references. Anything else becomes a match with key ``unknown``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

_OPS = frozenset({"==", "!=", "<", ">", "<=", ">=", "eq", "ne", "lt", "gt", "le", "ge"})
_OP_ALIASES = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}
_SIMPLE_VERDICTS = frozenset({"accept", "drop", "continue", "return", "queue"})
_LOG_OPTIONS = frozenset({"prefix", "level", "flags", "group", "snaplen", "queue-threshold"})
# Keys whose next word selects the field, mapped to our match keys.
_FIELDS = {
    ("ct", "state"): "ct_state",
    ("ip", "saddr"): "saddr4",
    ("ip", "daddr"): "daddr4",
    ("ip6", "saddr"): "saddr6",
    ("ip6", "daddr"): "daddr6",
    ("ip", "protocol"): "l4proto4",
    ("ip6", "nexthdr"): "l4proto6",
    ("meta", "l4proto"): "l4proto",
    ("meta", "nfproto"): "nfproto",
    ("meta", "iif"): "iif",
    ("meta", "iifname"): "iif",
    ("meta", "oif"): "oif",
    ("meta", "oifname"): "oif",
    ("tcp", "dport"): "dport_tcp",
    ("udp", "dport"): "dport_udp",
    ("th", "dport"): "dport_th",
    ("tcp", "sport"): "sport",
    ("udp", "sport"): "sport",
    ("th", "sport"): "sport",
    ("icmp", "type"): "icmp_type",
    ("icmpv6", "type"): "icmpv6_type",
}
_SINGLE_FIELDS = {"iif": "iif", "iifname": "iif", "oif": "oif", "oifname": "oif"}
_STARTS = (
    {a for a, _ in _FIELDS}
    | set(_SINGLE_FIELDS)
    | _SIMPLE_VERDICTS
    | {"reject", "jump", "goto", "counter", "log", "comment", "limit", "meter", "add", "update"}
)
# Used when /etc/services lacks a name (minimal containers ship without it).
_SERVICES = {"ssh": 22, "http": 80, "https": 443, "domain": 53, "smtp": 25, "ntp": 123}


@dataclass(frozen=True)
class Match:
    """``key op values``; ``values`` may hold ``@set`` references."""

    key: str
    op: str
    values: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class VmapEntry:
    value: str
    verdict: str
    target: str | None = None


@dataclass(frozen=True)
class Rule:
    line: int
    text: str
    matches: tuple[Match, ...]
    verdict: str | None = None  # accept/drop/reject/jump/goto/return/continue/queue/vmap
    target: str | None = None  # chain of jump/goto
    vmap_key: str | None = None
    vmap: tuple[VmapEntry, ...] = ()

    @property
    def unknown(self) -> list[str]:
        return [m.text for m in self.matches if m.key == "unknown"]


def _read_block(words: list[str], i: int) -> tuple[list[str], int]:
    """Words inside the ``{ ... }`` starting at ``words[i]``; index after it."""
    depth, j = 0, i
    out: list[str] = []
    while j < len(words):
        w = words[j]
        depth += (w == "{") - (w == "}")
        if depth == 0:
            return out[1:], j + 1
        out.append(w)
        j += 1
    return out[1:], j


def _read_value(words: list[str], i: int) -> tuple[tuple[str, ...], int]:
    if i >= len(words):
        return (), i
    if words[i] == "{":
        inner, j = _read_block(words, i)
        return tuple(w for w in inner if w != ","), j
    values, j = [words[i]], i + 1
    while j + 1 < len(words) and words[j] == ",":
        values.append(words[j + 1])
        j += 2
    return tuple(values), j


def _read_vmap(words: list[str], i: int) -> tuple[tuple[VmapEntry, ...], int]:
    inner, j = _read_block(words, i)
    entries: list[VmapEntry] = []
    for item in " ".join(inner).split(","):
        key, sep, rest = item.strip().rpartition(":")
        if not sep:
            continue
        verdict = rest.split()
        if verdict:
            target = verdict[1] if len(verdict) > 1 else None
            entries.append(VmapEntry(key.strip(), verdict[0], target))
    return tuple(entries), j


def _skip_statement(words: list[str], i: int) -> int:
    """Index after a non-matching statement (counter, log, comment) at ``i``."""
    word = words[i]
    i += 1
    if word == "comment":
        return i + 1
    if word == "counter":
        while i + 1 < len(words) and words[i] in ("packets", "bytes", "name"):
            i += 2
        return i
    while i < len(words) and words[i] in _LOG_OPTIONS:  # log
        _, i = _read_value(words, i + 1)
    return i


def parse_rule(words: list[str], line: int) -> Rule:
    """Turn the words of one rule (quotes already removed) into a :class:`Rule`."""
    matches: list[Match] = []
    verdict: str | None = None
    target: str | None = None
    vmap_key: str | None = None
    vmap: tuple[VmapEntry, ...] = ()
    i = 0
    while i < len(words):
        w = words[i]
        pair = (w, words[i + 1]) if i + 1 < len(words) else (w, "")
        if w in _SIMPLE_VERDICTS:
            verdict, i = w, i + 1
        elif w == "reject":
            verdict, i = w, len(words)  # "with ..." only selects the reply
        elif w in ("jump", "goto") and i + 1 < len(words):
            verdict, target, i = w, words[i + 1], i + 2
        elif w in ("counter", "log", "comment"):
            i = _skip_statement(words, i)
        elif w == "limit":
            j = i + 2 if pair[1] == "rate" else i + 1
            over = j < len(words) and words[j] == "over"
            j += over
            j += 1  # the rate, e.g. 30/minute
            if j + 1 < len(words) and words[j] == "burst":
                j += 3 if j + 2 < len(words) and words[j + 2] in ("packets", "bytes") else 2
            matches.append(Match("limit", "over" if over else "==", (), " ".join(words[i:j])))
            i = j
        elif w in ("meter", "add", "update") and "{" in words[i:]:
            inner, j = _read_block(words, words.index("{", i))
            if "over" in inner:
                matches.append(Match("limit", "over", (), " ".join(words[i:j])))
            i = j
        elif pair in _FIELDS or w in _SINGLE_FIELDS:
            key = _FIELDS.get(pair) or _SINGLE_FIELDS[w]
            j = i + 2 if pair in _FIELDS else i + 1
            op = "=="
            if j < len(words) and words[j] in _OPS:
                op, j = _OP_ALIASES.get(words[j], words[j]), j + 1
            if j < len(words) and words[j] == "vmap":
                vmap_key = key
                vmap, j = _read_vmap(words, j + 1)
                verdict = "vmap"
            else:
                values, j = _read_value(words, j)
                matches.append(Match(key, op, values, " ".join(words[i:j])))
            i = j
        else:
            j = i + 1
            while j < len(words) and words[j] not in _STARTS:
                j = _read_block(words, j)[1] if words[j] == "{" else j + 1
            matches.append(Match("unknown", "==", (), " ".join(words[i:j])))
            i = j
    return Rule(line, " ".join(words), tuple(matches), verdict, target, vmap_key, vmap)


def port_range(value: str) -> tuple[int, int] | None:
    """``22`` / ``1000-2000`` / ``ssh`` as an inclusive range, or None."""
    lo, sep, hi = value.partition("-")
    try:
        if sep:
            return int(lo), int(hi)
        if value.isdigit():
            return int(value), int(value)
        port = _SERVICES.get(value)
        if port is None:
            port = socket.getservbyname(value)
        return port, port
    except (ValueError, OSError):
        return None


def network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def resolve(values: tuple[str, ...], sets: dict[str, list[str]]) -> tuple[str, ...] | None:
    """Expand ``@set`` references from the table's named sets; None when a
    referenced set is not defined inline (its content is unknown)."""
    out: list[str] = []
    for v in values:
        if v.startswith("@"):
            if v[1:] not in sets:
                return None
            out.extend(sets[v[1:]])
        else:
            out.append(v)
    return tuple(out)
