"""Limits on what Jupiter reads from users, and how much of it an error quotes.

Every YAML and JSON reader checks nesting and size against these numbers and
names the limit and the file when input exceeds it, so a hostile or broken
file ends in one short :class:`~jupiter.errors.InputError` (exit 2), never in
a ``RecursionError`` or a megabyte-long message.
"""

from __future__ import annotations

from typing import Any

from jupiter.errors import InputError

#: Deepest nesting of lists and mappings accepted in a YAML file, and in the
#: values a report parser keeps (a finding's extra facts). Real files nest
#: about 10 levels (SARIF ~12, Kubernetes manifests ~15).
MAX_NESTING = 64
#: Largest YAML file read (assets, script manifests, workflows).
MAX_YAML_BYTES = 16 * 1024 * 1024
#: Most values (scalars, lists, mappings) in one YAML file once every alias
#: (``*name``) is expanded: a few nested aliases repeat a subtree billions of
#: times ("billion laughs") while the file stays tiny.
MAX_YAML_VALUES = 1_000_000
#: Largest JSON document read into memory whole (SARIF above the streaming
#: threshold is streamed instead, see ``jupiter.ingest.sarif_stream``).
MAX_JSON_BYTES = 2 * 1024 * 1024 * 1024
#: Most characters of input quoted in an error message.
QUOTE_CHARS = 200
#: Longest error message printed; longer ones keep their head and their tail
#: (which says what to do).
MAX_MESSAGE_CHARS = 1000


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with
    an ellipsis and the full length when longer."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}… ({len(text)} characters)"
    return text


def shorten_message(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message no longer than about ``limit``: head … tail."""
    if len(message) <= limit:
        return message
    head, tail = limit * 2 // 3, limit // 3
    cut = len(message) - head - tail
    return f"{message[:head]}… ({cut} characters cut) …{message[-tail:]}"


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deeply ``value`` nests lists, tuples and dicts (a scalar is 0),
    without recursion; stops counting once past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def check_nesting(value: Any, where: str, then: str, limit: int = MAX_NESTING) -> None:
    """Raise InputError naming ``where`` when ``value`` nests deeper than ``limit``."""
    if nesting_depth(value, limit) > limit:
        raise InputError(
            f"{where} nests lists or mappings deeper than {limit} levels, Jupiter's limit; {then}"
        )
