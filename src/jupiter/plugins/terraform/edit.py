"""Edits of a Terraform file as byte spans of its syntax tree.

Each edit replaces one span (possibly empty: an insertion) with new bytes;
:func:`apply` splices them in, so every byte outside the spans stays as it
was. New lines take the indentation of their neighbours and join an aligned
run of ``=`` signs when they fit in it (what ``terraform fmt`` would do for
the new line, without re-aligning lines we did not touch).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from jupiter.plugins.terraform.hcl import Attribute, Block, render


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: bytes


def apply(source: bytes, spans: list[Span]) -> bytes:
    """``source`` with every span replaced; spans must not overlap."""
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            raise ValueError(f"overlapping edits at bytes {a.start}-{a.end} and {b.start}-{b.end}")
    out = bytearray()
    pos = 0
    for span in ordered:
        out += source[pos : span.start]
        out += span.text
        pos = span.end
    out += source[pos:]
    return bytes(out)


def set_value(attr: Attribute, value: Any) -> Span:
    """Replace an attribute's value expression (``false`` → ``true``)."""
    node = attr.value_node
    return Span(node.start_byte, node.end_byte, render(value).encode())


def _line_start(source: bytes, pos: int) -> int:
    return source.rfind(b"\n", 0, pos) + 1


def _inner_indent(block: Block) -> str:
    src = block.source
    body = block.body
    if body is not None:
        for child in body.children:
            if child.type in ("attribute", "block"):
                ls = _line_start(src, child.start_byte)
                prefix = src[ls : child.start_byte]
                if not prefix.strip():
                    return prefix.decode()
    outer = block.indent()
    unit = "\t" if outer.startswith("\t") else "  "
    return outer + unit


def _eq_column(block: Block, name: str) -> int | None:
    """The column of ``=`` in the run of attributes on consecutive lines
    that a new last line would join, if ``name`` fits into it (``terraform
    fmt`` aligns such runs)."""
    children = [c for c in (block.body.children if block.body else []) if c.type != "comment"]
    if not children or children[-1].type != "attribute":
        return None
    run = [children[-1]]
    for child in reversed(children[:-1]):
        if child.type != "attribute" or child.end_point.row + 1 != run[-1].start_point.row:
            break
        run.append(child)
    if children[-1].end_point.row != children[-1].start_point.row:
        return None  # a multi-line value ends the run
    cols = set()
    for attr in run:
        eq = next((c for c in attr.children if c.type == "="), None)
        if eq is None:
            return None
        cols.add(eq.start_point.column)
    if len(cols) != 1:
        return None
    col = cols.pop()
    indent_cols = run[0].start_point.column
    return col if indent_cols + len(name) + 1 <= col else None


def attribute_line(block: Block, name: str, value_text: str) -> str:
    indent = _inner_indent(block)
    col = _eq_column(block, name)
    pad = " " * (col - len(indent) - len(name)) if col is not None else " "
    return f"{indent}{name}{pad}= {value_text}"


def insert_lines(block: Block, lines: list[str]) -> Span:
    """Insert whole lines (already indented) at the end of ``block``'s body."""
    src = block.source
    end = next(c for c in reversed(block.node.children) if c.type == "block_end")
    start_node = next(c for c in block.node.children if c.type == "block_start")
    ls = _line_start(src, end.start_byte)
    text = "".join(line + "\n" for line in lines)
    if not src[ls : end.start_byte].strip() and ls > start_node.start_byte:
        return Span(ls, ls, text.encode())
    # A one-line block (`{}` or `{ a = 1 }`): give it one line per entry.
    inner = src[start_node.end_byte : end.start_byte].strip()
    ind = _inner_indent(block) if inner else block.indent() + "  "
    body = (f"{ind}{inner.decode()}\n" if inner else "") + text
    return Span(start_node.end_byte, end.start_byte, f"\n{body}{block.indent()}".encode())


def nested_text(indent: str, segments: list[str], value: Any, unit: str = "  ") -> list[str]:
    """``a { b { c = v } }`` as indented lines, for a path that is missing
    from ``segments[0]`` down; ``value`` may be a mapping of several
    attributes for the innermost block."""
    if len(segments) == 1:
        if isinstance(value, dict) and segments[0] == "":
            lines: list[str] = []
            flat = {k: v for k, v in value.items() if not isinstance(v, dict)}
            width = max((len(k) for k in flat), default=0)
            lines += [f"{indent}{k.ljust(width)} = {render(v)}" for k, v in flat.items()]
            for k, v in value.items():
                if isinstance(v, dict):
                    inner = nested_text(indent + unit, [""], v, unit)
                    lines += [f"{indent}{k} {{", *inner, f"{indent}}}"]
            return lines
        if isinstance(value, dict):
            inner = nested_text(indent + unit, [""], value, unit)
            return [f"{indent}{segments[0]} {{", *inner, f"{indent}}}"]
        return [f"{indent}{segments[0]} = {render(value)}"]
    head, rest = segments[0], segments[1:]
    inner = nested_text(indent + unit, rest, value, unit)
    return [f"{indent}{head} {{", *inner, f"{indent}}}"]


def indent_unit(block: Block) -> str:
    inner = _inner_indent(block)
    outer = block.indent()
    return inner[len(outer) :] or "  "
