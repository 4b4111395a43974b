"""libcst helpers for a call's arguments: find, set, drop a keyword, read a
literal, build a list or an assignment target. Setting a keyword keeps the
call's own layout (one argument per line stays one per line)."""

from __future__ import annotations

import libcst as cst

_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


def kw(call: cst.Call, name: str) -> cst.Arg | None:
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def set_kw(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """``call`` with keyword ``name`` set to ``value`` (replaced or appended).

    Appended to a call written one argument per line with a trailing comma,
    the new argument gets its own line at the same indentation, and a comment
    after the last argument stays on that argument's line.
    """
    existing = kw(call, name)
    if existing is not None:
        args = [a.with_changes(value=value) if a is existing else a for a in call.args]
        return call.with_changes(args=args)
    new = cst.Arg(keyword=cst.Name(name), value=value, equal=_EQUAL)
    args = list(call.args)
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    comma = last.comma
    tail = comma.whitespace_after if isinstance(comma, cst.Comma) else None
    if isinstance(comma, cst.Comma) and isinstance(tail, cst.ParenthesizedWhitespace):
        indent = _arg_indent(args)
        if indent is not None:
            args[-1] = last.with_changes(
                comma=comma.with_changes(
                    whitespace_after=tail.with_changes(
                        last_line=indent.last_line, indent=indent.indent
                    )
                )
            )
            closing = cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(),
                empty_lines=[],
                indent=tail.indent,
                last_line=tail.last_line,
            )
            return call.with_changes(
                args=[*args, new.with_changes(comma=cst.Comma(whitespace_after=closing))]
            )
    if isinstance(comma, cst.Comma):  # a trailing comma on one line: keep it last
        new = new.with_changes(comma=comma)
    args[-1] = last.with_changes(comma=_COMMA)
    return call.with_changes(args=[*args, new])


def _arg_indent(args: list[cst.Arg]) -> cst.ParenthesizedWhitespace | None:
    """The whitespace that starts an argument line (after a comma), or the
    opening one before the first argument."""
    for arg in args[:-1]:
        ws = arg.comma.whitespace_after if isinstance(arg.comma, cst.Comma) else None
        if isinstance(ws, cst.ParenthesizedWhitespace):
            return ws
    return None


def drop_kw(call: cst.Call, name: str) -> cst.Call:
    args = [a for a in call.args if not (a.keyword is not None and a.keyword.value == name)]
    if args:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=args)


def literal(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def target(text: str) -> cst.AssignTarget:
    expr = cst.parse_expression(text)
    assert isinstance(expr, cst.Tuple)
    return cst.AssignTarget(expr)


def list_expr(items: list[str]) -> cst.List:
    return cst.List([cst.Element(cst.SimpleString(repr(i))) for i in items])


# -- rewrites --------------------------------------------------------------
