"""Imports a Python fix adds or leaves unused: added after the module's
import block only when missing, removed only when nothing uses them, with the
removed statement's blank lines and comments kept."""

from __future__ import annotations

import ast

import libcst as cst
from libcst.helpers import get_full_name_for_node

from jupiter.plugins.python_security.detect import Names


def add_imports(module: cst.Module, wanted: list[str], names: Names) -> cst.Module:
    """``import X`` for each module in ``wanted`` the module does not import
    yet, after its last top-level import (or its docstring): one statement
    each, in the order asked."""
    have = {qual for local, qual in names.alias.items() if local == qual}
    have |= {m for m, _ in names.imports}
    missing = [m for m in dict.fromkeys(wanted) if m not in have]
    if not missing:
        return module
    body = list(module.body)
    at = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(
            stmt.body[0], cst.Import | cst.ImportFrom
        ):
            at = i + 1
        elif i == 0 and _is_docstring(stmt):
            at = 1
        elif at and not _is_import(stmt):
            break
    new = [cst.SimpleStatementLine([cst.Import([cst.ImportAlias(_dotted(m))])]) for m in missing]
    if at == 1 and _is_docstring(body[0]) and not _is_import(body[0]):
        new[0] = new[0].with_changes(leading_lines=[cst.EmptyLine()])
    return module.with_changes(body=[*body[:at], *new, *body[at:]])


def _is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and isinstance(
        stmt.body[0], cst.Import | cst.ImportFrom
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _dotted(name: str) -> cst.Attribute | cst.Name:
    expr = cst.parse_expression(name)
    assert isinstance(expr, cst.Attribute | cst.Name)
    return expr


def remove_unused(module: cst.Module, locals_: set[str], names: Names) -> cst.Module:
    """Drop the imports of ``locals_`` that nothing in the module uses now;
    a dropped statement's blank lines and comments above it stay."""
    tree = ast.parse(module.code)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    unused = {name for name in locals_ if name not in used and name in names.alias}
    if not unused:
        return module
    return module.visit(_DropImports(unused))


class _DropImports(cst.CSTTransformer):
    def __init__(self, unused: set[str]) -> None:
        super().__init__()
        self.unused = unused
        self.carry: list[cst.EmptyLine] = []

    def _bound(self, alias: cst.ImportAlias) -> str:
        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
            return alias.asname.name.value
        full = get_full_name_for_node(alias.name) or ""
        return full.partition(".")[0]

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if self.carry:
            updated = updated.with_changes(leading_lines=[*self.carry, *updated.leading_lines])
            self.carry = []
        if len(updated.body) != 1 or not isinstance(updated.body[0], cst.Import | cst.ImportFrom):
            return updated
        stmt = updated.body[0]
        if isinstance(stmt.names, cst.ImportStar):
            return updated
        keep = [a for a in stmt.names if self._bound(a) not in self.unused]
        if len(keep) == len(stmt.names):
            return updated
        if not keep:
            self.carry = list(updated.leading_lines)
            return cst.RemovalSentinel.REMOVE
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(body=[stmt.with_changes(names=keep)])
