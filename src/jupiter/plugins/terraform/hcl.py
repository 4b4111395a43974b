"""Terraform files as a concrete syntax tree that keeps every byte.

tree-sitter's HCL grammar gives each block, attribute and expression its
byte span; nothing here re-prints a file. Readers return spans and literal
values; :mod:`jupiter.plugins.terraform.edit` splices new bytes into those
spans, so comments, alignment, heredocs and every untouched block stay as
they were. A file that does not parse raises :class:`InputError` naming the
file and the line of the first error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from tree_sitter import Language, Node, Parser

from jupiter.errors import InputError


@cache
def _parser() -> Parser:
    import tree_sitter_hcl

    return Parser(Language(tree_sitter_hcl.language()))


class Expr:
    """A value Terraform only knows at plan time (a reference, a call, an
    interpolated string): never equal to a literal."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@dataclass
class Attribute:
    name: str
    node: Node
    value_node: Node
    value: Any
    """The literal value (bool, int/float, str, list, dict) or :class:`Expr`."""


@dataclass
class Block:
    """A block (``resource "t" "n" { ... }``, ``versioning { ... }``)."""

    kind: str
    labels: list[str]
    node: Node
    body: Node | None
    source: bytes = field(repr=False)

    @property
    def start_line(self) -> int:
        return self.node.start_point.row + 1

    @property
    def end_line(self) -> int:
        return self.node.end_point.row + 1

    def attributes(self) -> dict[str, Attribute]:
        out: dict[str, Attribute] = {}
        for child in _body_children(self.body):
            if child.type == "attribute":
                ident = child.child_by_field_name("name") or child.children[0]
                expr = child.children[-1]
                name = _text(self.source, ident)
                out[name] = Attribute(name, child, expr, literal(self.source, expr))
        return out

    def blocks(self, kind: str | None = None) -> list[Block]:
        found = []
        for child in _body_children(self.body):
            if child.type == "block":
                blk = _block(self.source, child)
                if kind is None or blk.kind == kind:
                    found.append(blk)
        return found

    def dynamic(self, name: str) -> bool:
        """Whether a ``dynamic "name"`` block generates blocks called ``name``."""
        return any(b.labels[:1] == [name] for b in self.blocks("dynamic"))

    def indent(self) -> str:
        """The indentation of this block's first line."""
        line_start = self.source.rfind(b"\n", 0, self.node.start_byte) + 1
        prefix = self.source[line_start : self.node.start_byte]
        return prefix.decode() if not prefix.strip() else ""


@dataclass
class Resource:
    """One ``resource`` block of a file."""

    path: str
    block: Block

    @property
    def type(self) -> str:
        return self.block.labels[0]

    @property
    def name(self) -> str:
        return self.block.labels[1]

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    def meta(self) -> list[str]:
        """The meta-arguments that make one block many resources."""
        attrs = self.block.attributes()
        return [m for m in ("count", "for_each") if m in attrs]


@dataclass
class TfFile:
    path: str
    source: bytes
    blocks: list[Block]

    def resources(self) -> list[Resource]:
        return [
            Resource(self.path, b)
            for b in self.blocks
            if b.kind == "resource" and len(b.labels) == 2
        ]


def parse(path: str, source: bytes) -> TfFile:
    """The top-level blocks of one ``.tf`` file; :class:`InputError` with
    ``file:line`` when tree-sitter finds a syntax error. Parses are cached
    by content: a run plans many findings on the same unchanged files."""
    return _parse_cached(path, source)


@lru_cache(maxsize=512)
def _parse_cached(path: str, source: bytes) -> TfFile:
    tree = _parser().parse(source)
    root = tree.root_node
    if root.has_error:
        node = _first_error(root)
        line = (node.start_point.row + 1) if node is not None else 1
        raise InputError(
            f"{path}:{line}: not valid HCL (Terraform syntax error near line {line}); fix the "
            "file (`terraform fmt` shows the error) before Jupiter edits it"
        )
    blocks = [_block(source, c) for c in _body_children(_body_of(root)) if c.type == "block"]
    return TfFile(path, source, blocks)


def _first_error(node: Node) -> Node | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing or child.type == "ERROR":
            found = _first_error(child)
            if found is not None:
                return found
    return None


def _body_of(node: Node) -> Node | None:
    for child in node.children:
        if child.type == "body":
            return child
    return None


def _body_children(body: Node | None) -> list[Node]:
    return list(body.children) if body is not None else []


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8")


def _block(source: bytes, node: Node) -> Block:
    kind = ""
    labels: list[str] = []
    for child in node.children:
        if child.type == "identifier" and not kind:
            kind = _text(source, child)
        elif child.type == "string_lit":
            labels.append(_text(source, child)[1:-1])
        elif child.type == "identifier":
            labels.append(_text(source, child))
    return Block(kind, labels, node, _body_of(node), source)


def literal(source: bytes, node: Node) -> Any:
    """The literal value of an expression node, or :class:`Expr`."""
    while node.type in ("expression", "literal_value", "collection_value") and node.named_children:
        if len(node.named_children) != 1:
            break
        node = node.named_children[0]
    kind = node.type
    if kind == "bool_lit":
        return _text(source, node) == "true"
    if kind == "numeric_lit":
        raw = _text(source, node)
        try:
            return int(raw)
        except ValueError:
            return float(raw)
    if kind == "null_lit":
        return None
    if kind == "string_lit":
        parts = [c for c in node.named_children if c.type not in _QUOTES]
        if all(p.type == "template_literal" for p in parts):
            return "".join(_text(source, p) for p in parts)
        return Expr(_text(source, node))
    if kind == "tuple":
        items = [literal(source, c) for c in node.named_children if c.type == "expression"]
        return items
    if kind == "object":
        out: dict[str, Any] = {}
        for elem in node.named_children:
            if elem.type != "object_elem":
                continue
            key_node, val_node = elem.named_children[0], elem.named_children[-1]
            key = literal(source, key_node)
            if isinstance(key, Expr):
                key = key.text  # a bare identifier key: `a = 1`
            out[str(key)] = literal(source, val_node)
        return out
    return Expr(_text(source, node))


_QUOTES = frozenset({"quoted_template_start", "quoted_template_end"})


def render(value: Any) -> str:
    """``value`` as HCL source (the literals a catalog entry can hold)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as an HCL literal")
