"""Turn a string-building expression into the SQL text it renders.

``%`` formatting, f-strings, ``str.format`` and ``+`` concatenation all
become the same thing: a list of :class:`Text` (rendered, unescaped
characters), :class:`Slot` (a value spliced into the SQL) and :class:`Kept`
(a module string constant, safe to leave in place). Anything whose rendering
cannot be reproduced exactly with parameters raises :class:`ManualFix`.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from typing import Literal

import libcst as cst

from jupiter.plugins.sql_injection.detect import literal_text

Conversion = Literal["s", "d"]


class ManualFix(Exception):
    """The site cannot be rewritten safely; ``reason`` says why (one sentence)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Slot:
    expr: cst.BaseExpression
    conversion: Conversion = "s"


@dataclass(frozen=True)
class Kept:
    expr: cst.BaseExpression
    text: str


Piece = Text | Slot | Kept

_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?(?P<flags>[-#0 +]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?"
    r"[hlL]?(?P<type>.)",
    re.DOTALL,
)


def code_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _value_piece(node: cst.BaseExpression, constants: dict[str, str], conv: Conversion) -> Piece:
    text = literal_text(node)
    if text is not None:
        return Text(text)
    if isinstance(node, cst.Integer | cst.Float) and conv == "s":
        return Text(str(ast.literal_eval(node.value)))
    if isinstance(node, cst.Name) and node.value in constants and conv == "s":
        return Kept(node, constants[node.value])
    return Slot(node, conv)


def _template_text(node: cst.BaseExpression, constants: dict[str, str]) -> str:
    text = literal_text(node)
    if text is not None:
        return text
    if isinstance(node, cst.Name) and node.value in constants:
        raise ManualFix(
            f"the SQL template is the module constant {node.value!r}; "
            "rewrite it with placeholders by hand"
        )
    raise ManualFix(
        "the SQL template is not a plain string literal (bytes or an f-string); "
        "rewrite it with placeholders by hand"
    )


def from_percent(node: cst.BinaryOperation, constants: dict[str, str]) -> list[Piece]:
    template = _template_text(node.left, constants)
    right = node.right
    positional: list[cst.BaseExpression] | None = None
    mapping: dict[str, cst.BaseExpression] | None = None
    if isinstance(right, cst.Tuple):
        if any(isinstance(e, cst.StarredElement) for e in right.elements):
            raise ManualFix("the % operands are unpacked with *; list them one by one first")
        positional = [e.value for e in right.elements]
    elif isinstance(right, cst.Dict):
        mapping = {}
        for element in right.elements:
            key = literal_text(element.key) if isinstance(element, cst.DictElement) else None
            if key is None or not isinstance(element, cst.DictElement):
                raise ManualFix("the % mapping has non-literal keys; use literal keys first")
            mapping[key] = element.value
    else:
        positional = [right]
    pieces: list[Piece] = []
    index = 0
    pos = 0
    for match in _PERCENT.finditer(template):
        pieces.append(Text(template[pos : match.start()]))
        pos = match.end()
        kind = match["type"]
        if kind == "%":
            pieces.append(Text("%"))
            continue
        if match["flags"] or match["width"] or match["prec"] or kind not in "sdiu":
            raise ManualFix(
                f"the format directive {match.group(0)!r} changes how the value is rendered; "
                "parameterise it by hand"
            )
        conv: Conversion = "s" if kind == "s" else "d"
        if match["key"] is not None:
            if mapping is None or match["key"] not in mapping:
                raise ManualFix(f"the % key {match['key']!r} has no literal value in the mapping")
            pieces.append(_value_piece(mapping[match["key"]], constants, conv))
            continue
        if positional is None or index >= len(positional):
            raise ManualFix("the % template and its values do not line up; fix the code first")
        pieces.append(_value_piece(positional[index], constants, conv))
        index += 1
    if positional is not None and index != len(positional):
        raise ManualFix("the % template and its values do not line up; fix the code first")
    pieces.append(Text(template[pos:]))
    return pieces


def from_format(node: cst.Call, constants: dict[str, str]) -> list[Piece]:
    assert isinstance(node.func, cst.Attribute)
    template = _template_text(node.func.value, constants)
    positional: list[cst.BaseExpression] = []
    keywords: dict[str, cst.BaseExpression] = {}
    for arg in node.args:
        if arg.star:
            raise ManualFix("format() receives unpacked arguments; pass them one by one first")
        if arg.keyword is None:
            positional.append(arg.value)
        else:
            keywords[arg.keyword.value] = arg.value
    pieces: list[Piece] = []
    auto = 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ManualFix(f"the format() template is malformed ({exc}); fix it first") from exc
    for literal, field_name, spec, conversion in parsed:
        pieces.append(Text(literal))
        if field_name is None:
            continue
        if spec or conversion not in (None, "s"):
            raise ManualFix(
                f"the replacement field {{{field_name}}} has a conversion or format spec; "
                "parameterise it by hand"
            )
        if field_name == "":
            field_name = str(auto)
            auto += 1
        if field_name.isdigit():
            idx = int(field_name)
            if idx >= len(positional):
                raise ManualFix(f"format() has no positional argument {idx}; fix the code first")
            pieces.append(_value_piece(positional[idx], constants, "s"))
        elif field_name in keywords:
            pieces.append(_value_piece(keywords[field_name], constants, "s"))
        else:
            raise ManualFix(
                f"the replacement field {{{field_name}}} uses attribute or item access or an "
                "unknown name; parameterise it by hand"
            )
    return pieces


def _fstring_text(node: cst.FormattedString, raw_text: str) -> str:
    prefix = node.prefix.lower()
    quote = node.start[len(node.prefix) :]
    text = raw_text
    if "r" not in prefix:
        try:
            value = ast.literal_eval(quote + raw_text + quote)
        except (SyntaxError, ValueError) as exc:
            raise ManualFix("an f-string part cannot be decoded; rewrite it by hand") from exc
        text = str(value)
    return text.replace("{{", "{").replace("}}", "}")


def from_fstring(node: cst.FormattedString, constants: dict[str, str]) -> list[Piece]:
    pieces: list[Piece] = []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            pieces.append(Text(_fstring_text(node, part.value)))
            continue
        assert isinstance(part, cst.FormattedStringExpression)
        if part.format_spec or part.conversion not in (None, "s") or part.equal is not None:
            raise ManualFix(
                f"the f-string field {{{code_of(part.expression)}...}} has a conversion or "
                "format spec; parameterise it by hand"
            )
        pieces.append(_value_piece(part.expression, constants, "s"))
    return pieces


def _flatten_add(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        return [*_flatten_add(node.left), *_flatten_add(node.right)]
    return [node]


def _string_pieces(node: cst.BaseExpression, constants: dict[str, str]) -> list[Piece]:
    if isinstance(node, cst.FormattedString):
        return from_fstring(node, constants)
    if isinstance(node, cst.ConcatenatedString):
        left = node.left
        right = node.right
        return [*_string_pieces(left, constants), *_string_pieces(right, constants)]
    if isinstance(node, cst.SimpleString):
        return [Text(_template_text(node, constants))]
    return [_value_piece(node, constants, "s")]


def extract(node: cst.BaseExpression, constants: dict[str, str]) -> list[Piece]:
    """The pieces ``node`` renders, adjacent texts merged."""
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
        pieces = from_percent(node, constants)
    elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        pieces = from_format(node, constants)
    elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        pieces = [p for part in _flatten_add(node) for p in _string_pieces(part, constants)]
    elif isinstance(node, cst.FormattedString | cst.ConcatenatedString | cst.SimpleString):
        pieces = _string_pieces(node, constants)
    else:
        raise ManualFix("the SQL is built in a way the codemod does not know; rewrite it by hand")
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, Text) and merged and isinstance(merged[-1], Text):
            merged[-1] = Text(merged[-1].text + piece.text)
        elif not (isinstance(piece, Text) and not piece.text):
            merged.append(piece)
    return merged
