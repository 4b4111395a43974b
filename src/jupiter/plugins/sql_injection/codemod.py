"""Rewrite one SQL sink call to a parameterised query (libcst round trip).

Only the SQL-building expression and the sink call change; every other byte
of the module (comments, layout) is the original's. When the SQL reaches the
call through a local variable, the assignment gets the new SQL text and the
call gets the parameters, so the variable stays.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from jupiter.plugins.sql_injection.detect import (
    ModuleScan,
    Site,
    is_dynamic,
    parse_python,
)
from jupiter.plugins.sql_injection.paramstyle import Paramstyle
from jupiter.plugins.sql_injection.sql import Parameterised, parameterise
from jupiter.plugins.sql_injection.template import Kept, ManualFix, code_of, extract

Replace = Callable[[cst.CSTNode], cst.CSTNode]


class _Replacer(cst.CSTTransformer):
    def __init__(self, replacements: dict[int, Replace]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(  # type: ignore[override]
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode:
        replace = self.replacements.get(id(original_node))
        return replace(updated_node) if replace is not None else updated_node


def _quote_hint(node: cst.BaseExpression) -> tuple[str, bool]:
    """The quote character and triple-ness of the first literal in ``node``."""
    found: list[tuple[str, bool]] = []

    class _First(cst.CSTVisitor):
        def visit_SimpleString(self, n: cst.SimpleString) -> bool:
            found.append((n.quote[0], len(n.quote) == 3))
            return False

        def visit_FormattedString(self, n: cst.FormattedString) -> bool:
            quote = n.start[len(n.prefix) :]
            found.append((quote[0], len(quote) == 3))
            return False

    node.visit(_First())
    return found[0] if found else ('"', False)


def _escape(text: str, quote: str, triple: bool, fstring: bool) -> str:
    text = text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\r", "\\r")
    text = text.replace("\x00", "\\x00")
    if fstring:
        text = text.replace("{", "{{").replace("}", "}}")
    return text if triple else text.replace("\n", "\\n")


def sql_literal(sql: Parameterised, like: cst.BaseExpression) -> cst.BaseExpression:
    """A string literal (an f-string when constants stay) in the style of ``like``."""
    quote, triple = _quote_hint(like)
    fstring = any(isinstance(p, Kept) for p in sql.parts)
    body: list[str] = []
    for part in sql.parts:
        if isinstance(part, str):
            body.append(_escape(part, quote, triple, fstring))
        else:
            body.append("{" + code_of(part.expr) + "}")
    delim = quote * 3 if triple else quote
    node = cst.parse_expression(("f" if fstring else "") + delim + "".join(body) + delim)
    if isinstance(like, cst.BinaryOperation | cst.Call | cst.FormattedString | cst.SimpleString):
        node = node.with_changes(lpar=like.lpar, rpar=like.rpar)
    return node


def _sequence(values: list[cst.BaseExpression], as_list: bool) -> cst.BaseExpression:
    elements = []
    for i, value in enumerate(values):
        last = i == len(values) - 1
        comma: cst.Comma | cst.MaybeSentinel = (
            cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            if not last
            else (cst.Comma() if not as_list and len(values) == 1 else cst.MaybeSentinel.DEFAULT)
        )
        elements.append(cst.Element(value=value, comma=comma))
    return cst.List(elements) if as_list else cst.Tuple(elements)


def _append_arg(call: cst.Call, arg: cst.Arg) -> cst.Call:
    args = list(call.args)
    last = args[-1]
    sep = call.whitespace_before_args
    multiline = isinstance(sep, cst.ParenthesizedWhitespace)
    after: cst.BaseParenthesizableWhitespace = sep if multiline else cst.SimpleWhitespace(" ")
    if isinstance(last.comma, cst.Comma):
        # A trailing comma means one argument per line: keep that layout.
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=after))
        args.append(arg.with_changes(comma=last.comma))
    else:
        # The space before ")" stays before ")"; the new argument goes on its own
        # line when the call spreads its arguments over lines.
        args[-1] = last.with_changes(
            comma=cst.Comma(whitespace_after=after), whitespace_after_arg=cst.SimpleWhitespace("")
        )
        args.append(arg.with_changes(whitespace_after_arg=last.whitespace_after_arg))
    return call.with_changes(args=args)


def _style(scan: ModuleScan, site: Site) -> Paramstyle:
    if site.kind in ("sqlalchemy_text", "sqlalchemy_execute"):
        return "named"
    if site.kind in ("django_raw", "django_extra"):
        return "format"
    if scan.paramstyle is None:
        raise ManualFix(
            f"{scan.paramstyle_reason}; parameterise the query by hand with the driver's "
            "placeholder style"
        )
    return scan.paramstyle


def _check_existing_params(site: Site) -> None:
    call = site.call
    if site.kind in ("django_extra", "pandas_read_sql"):
        if any(a.keyword is not None and a.keyword.value == "params" for a in call.args):
            raise ManualFix(
                "the call already passes params=, so the order of new and existing "
                "parameters must be decided by hand"
            )
    elif len(call.args) > 1:
        raise ManualFix(
            "the call already passes a parameters argument besides the built SQL; merge "
            "the values into it by hand"
        )


def _mapping(values: list[tuple[str, cst.BaseExpression]]) -> cst.Dict:
    """``{"name": value, ...}`` for the named and pyformat styles."""
    elements = [
        cst.DictElement(
            key=cst.SimpleString(f'"{name}"'),  # bind names are identifiers
            value=value,
            comma=cst.MaybeSentinel.DEFAULT
            if i == len(values) - 1
            else cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
        )
        for i, (name, value) in enumerate(values)
    ]
    return cst.Dict(elements)


def _params_call(
    site: Site,
    updated: cst.Call,
    values: list[tuple[str, cst.BaseExpression]],
    style: Paramstyle = "format",
    text_name: str = "text",
) -> cst.BaseExpression:
    if site.kind == "sqlalchemy_text":
        kwargs = [
            cst.Arg(
                value=v,
                keyword=cst.Name(name),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
                comma=cst.MaybeSentinel.DEFAULT
                if i == len(values) - 1
                else cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
            )
            for i, (name, v) in enumerate(values)
        ]
        return cst.Call(func=cst.Attribute(value=updated, attr=cst.Name("bindparams")), args=kwargs)
    exprs = [v for _, v in values]
    if site.kind == "sqlalchemy_execute":
        # A raw string to Session/Engine.execute: SQLAlchemy wants text(),
        # with ':name' binds and a dict of values.
        args = list(updated.args)
        wrapped = cst.Call(func=cst.parse_expression(text_name), args=[cst.Arg(args[0].value)])
        args[0] = args[0].with_changes(value=wrapped)
        return _append_arg(updated.with_changes(args=args), cst.Arg(_mapping(values)))
    if site.kind == "pandas_read_sql":
        container = (
            _mapping(values) if style in ("named", "pyformat") else _sequence(exprs, as_list=False)
        )
        return _append_arg(
            updated,
            cst.Arg(
                value=container,
                keyword=cst.Name("params"),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
            ),
        )
    if site.kind == "django_extra":
        return _append_arg(
            updated,
            cst.Arg(
                value=_sequence(exprs, as_list=True),
                keyword=cst.Name("params"),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
            ),
        )
    if style in ("named", "pyformat"):
        return _append_arg(updated, cst.Arg(_mapping(values)))
    if style == "dollar":  # asyncpg: each value is its own argument
        for expr in exprs:
            updated = _append_arg(updated, cst.Arg(expr))
        return updated
    return _append_arg(updated, cst.Arg(_sequence(exprs, as_list=site.kind == "django_raw")))


def _text_name(module: cst.Module) -> tuple[str, bool]:
    """How the module can call SQLAlchemy's text(), and whether an import
    must be added for it."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                base = cst.helpers.get_full_name_for_node(small.module) if small.module else ""
                for alias in small.names:
                    if (
                        base == "sqlalchemy"
                        and cst.helpers.get_full_name_for_node(alias.name) == "text"
                    ):
                        local = alias.asname.name if alias.asname else alias.name
                        if isinstance(local, cst.Name):
                            return local.value, False
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    if cst.helpers.get_full_name_for_node(alias.name) == "sqlalchemy":
                        local = alias.asname.name if alias.asname else alias.name
                        if isinstance(local, cst.Name):
                            return f"{local.value}.text", False
    return "text", True


def _with_import(module: cst.Module, line: str) -> cst.Module:
    """``line`` after the module's last top-level import."""
    body = list(module.body)
    at = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(
            stmt.body[0], cst.Import | cst.ImportFrom
        ):
            at = i + 1
    body.insert(at, cst.parse_statement(line))
    return module.with_changes(body=body)


def _constant(node: cst.CSTNode) -> Replace:
    return lambda _old: node


def rewrite_site(scan: ModuleScan, site: Site) -> str:
    """The module's new text with ``site`` parameterised, or :class:`ManualFix`."""
    if site.kind == "executemany":
        raise ManualFix(
            "executemany() runs one SQL text for many rows, so values formatted into it "
            "cannot be moved into per-row parameters automatically; rewrite it by hand"
        )
    style = _style(scan, site)
    _check_existing_params(site)
    replacements: dict[int, Replace] = {}
    values: list[tuple[str, cst.BaseExpression]] = []
    for query in site.queries:
        if not is_dynamic(query.expr, scan.constants):
            continue
        if query.problem is not None:
            raise ManualFix(f"{query.problem}; rewrite the query by hand")
        escaped = site.kind in ("django_raw", "django_extra")
        sql = parameterise(extract(query.expr, scan.constants), style, escaped)
        if not sql.values:
            raise ManualFix("the SQL has no value to parameterise; review it by hand")
        new = sql_literal(sql, query.expr)
        replacements[id(query.expr)] = _constant(new)
        values.extend(sql.values)
    if not values:
        raise ManualFix("nothing in the call's SQL is built from variables; review it by hand")

    text_name, import_text = _text_name(scan.module)

    def fix_call(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Call)
        return _params_call(site, updated, values, style, text_name)

    replacements[id(site.call)] = fix_call
    new_module = scan.module.visit(_Replacer(replacements))
    assert isinstance(new_module, cst.Module)
    if site.kind == "sqlalchemy_execute" and import_text:
        new_module = _with_import(new_module, "from sqlalchemy import text")
    code = new_module.code
    parse_python(scan.path, code)  # a codemod bug must never produce broken code
    return code
