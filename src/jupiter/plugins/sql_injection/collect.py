"""One pass over a module for the SQL injection check (see ``sql_injection``).

Collects imports, function scopes, single-name assignments, name stores and
the calls that send SQL to a database. Source order comes from a tick
counter rather than position metadata (which would cost a second, slower
pass over every module); lines are computed afterwards, only for the few
nodes a finding needs (:func:`line_spans`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import libcst as cst
from libcst._nodes.internal import CodegenState

SinkKind = Literal[
    "execute",
    "executemany",
    "django_raw",
    "django_extra",
    "sqlalchemy_text",
    "sqlalchemy_execute",
    "pandas_read_sql",
]


@dataclass
class Assignment:
    node: cst.Assign
    end: int  # tick when the assignment has been fully visited


@dataclass
class SinkCall:
    kind: SinkKind
    call: cst.Call
    tick: int
    exprs: list[cst.BaseExpression]


@dataclass(eq=False)
class Scope:
    """A function (or the module): what is assigned, stored and called in it."""

    name: str
    node: cst.FunctionDef | None
    is_function: bool = True
    assignments: dict[str, list[Assignment]] = field(default_factory=dict)
    stores: dict[str, list[int]] = field(default_factory=dict)
    name_counts: dict[str, int] = field(default_factory=dict)
    calls: list[SinkCall] = field(default_factory=list)


def _target_names(node: cst.CSTNode) -> Iterable[cst.Name]:
    if isinstance(node, cst.Name):
        yield node
    elif isinstance(node, cst.Tuple | cst.List):
        for element in node.elements:
            yield from _target_names(element.value)
    elif isinstance(node, cst.StarredElement):
        yield from _target_names(node.value)


def _is_manager_call(call: cst.Call) -> bool:
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Attribute)
        and func.value.attr.value == "objects"
    )


class Collector(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.tick = 0
        self.modules: set[str] = set()
        self.text_names: set[str] = set()
        self.sa_modules: set[str] = set()
        self.scopes: list[Scope] = [Scope("<module>", None)]
        self.stack: list[Scope] = [self.scopes[0]]
        self._text_calls: list[tuple[Scope, cst.Call, int]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.tick += 1
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.tick += 1
        super().on_leave(original_node)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            self.modules.add(name)
            local = alias.asname.name if alias.asname else alias.name
            if name == "sqlalchemy" and isinstance(local, cst.Name):
                self.sa_modules.add(local.value)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.module is None:
            return
        base = cst.helpers.get_full_name_for_node(node.module) or ""
        self.modules.add(base)
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            self.modules.add(f"{base}.{name}")
            local = alias.asname.name if alias.asname else alias.name
            if base.startswith("sqlalchemy") and name == "text" and isinstance(local, cst.Name):
                self.text_names.add(local.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        qual = ".".join([*(s.name for s in self.stack[1:]), node.name.value])
        scope = Scope(qual, node)
        self.scopes.append(scope)
        self.stack.append(scope)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.stack.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        # Class bodies only contribute to qualified names of their methods.
        self.stack.append(Scope(node.name.value, None, is_function=False))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.stack.pop()

    def _function_scope(self) -> Scope:
        for scope in reversed(self.stack):
            if scope.is_function:
                return scope
        return self.scopes[0]

    def _store(self, target: cst.CSTNode) -> None:
        scope = self._function_scope()
        for name in _target_names(target):
            scope.stores.setdefault(name.value, []).append(self.tick)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._store(target.target)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        targets = original_node.targets
        if len(targets) == 1 and isinstance(targets[0].target, cst.Name):
            record = Assignment(original_node, self.tick)
            by_name = self._function_scope().assignments
            by_name.setdefault(targets[0].target.value, []).append(record)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._store(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._store(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._store(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._store(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._store(node.name)

    def visit_Name(self, node: cst.Name) -> None:
        counts = self._function_scope().name_counts
        counts[node.value] = counts.get(node.value, 0) + 1

    def visit_Call(self, node: cst.Call) -> None:
        scope = self._function_scope()
        func = node.func
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        if not positional and not isinstance(func, cst.Attribute):
            return
        if isinstance(func, cst.Name) or (
            isinstance(func, cst.Attribute) and func.attr.value == "text"
        ):
            if positional:
                # Whether this is SQLAlchemy's text() (possibly imported under
                # another name) is known once all imports are seen.
                self._text_calls.append((scope, node, self.tick))
            return
        if not isinstance(func, cst.Attribute):
            return
        attr = func.attr.value
        if attr in ("execute", "executemany") and positional:
            kind: SinkKind = "execute" if attr == "execute" else "executemany"
            scope.calls.append(SinkCall(kind, node, self.tick, positional[:1]))
        elif attr in _ASYNCPG_QUERIES and positional:
            # asyncpg's connection.fetch/fetchrow/fetchval(query, *args):
            # kept only in modules that import asyncpg (see finish()).
            scope.calls.append(SinkCall("execute", node, self.tick, positional[:1]))
        elif attr in ("read_sql", "read_sql_query") and positional:
            # pandas: read_sql(sql, con, params=...); kept only where pandas
            # is imported (see finish()).
            scope.calls.append(SinkCall("pandas_read_sql", node, self.tick, positional[:1]))
        elif attr == "raw" and positional:
            scope.calls.append(SinkCall("django_raw", node, self.tick, positional[:1]))
        elif attr == "extra":
            for arg in node.args:
                where = arg.keyword is not None and arg.keyword.value == "where"
                if where and isinstance(arg.value, cst.List | cst.Tuple):
                    exprs = [e.value for e in arg.value.elements]
                    scope.calls.append(SinkCall("django_extra", node, self.tick, exprs))

    def finish(self) -> None:
        """Keep Django sinks only in Django code and text() only from SQLAlchemy."""
        django = any(m == "django" or m.startswith("django.") for m in self.modules)
        asyncpg = any(m == "asyncpg" or m.startswith("asyncpg.") for m in self.modules)
        pandas = any(m == "pandas" or m.startswith("pandas.") for m in self.modules)
        for scope in self.scopes:
            scope.calls = [
                c
                for c in scope.calls
                if (
                    django
                    or c.kind not in ("django_raw", "django_extra")
                    or _is_manager_call(c.call)
                )
                and (asyncpg or not _is_asyncpg_query(c.call))
                and (pandas or c.kind != "pandas_read_sql")
            ]
        orm = any(m.startswith(("sqlalchemy", "flask_sqlalchemy")) for m in self.modules)
        for scope in self.scopes:
            for c in scope.calls:
                if orm and c.kind == "execute" and _is_orm_receiver(c.call):
                    c.kind = "sqlalchemy_execute"
        for scope, call, tick in self._text_calls:
            func = call.func
            if (isinstance(func, cst.Name) and func.value in self.text_names) or (
                isinstance(func, cst.Attribute)
                and isinstance(func.value, cst.Name)
                and func.value.value in self.sa_modules
            ):
                scope.calls.append(SinkCall("sqlalchemy_text", call, tick, [call.args[0].value]))
        for scope in self.scopes:
            scope.calls.sort(key=lambda c: c.tick)


#: What an ORM session or engine is usually called (``db.session``,
#: ``db.engine``, ``session``, ``Session()``): execute() there takes text().
_ORM_RECEIVERS = frozenset({"session", "engine", "db_session", "Session"})


def _is_orm_receiver(call: cst.Call) -> bool:
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    receiver = func.value
    if isinstance(receiver, cst.Call):
        receiver = receiver.func
    if isinstance(receiver, cst.Attribute):
        return receiver.attr.value in _ORM_RECEIVERS
    return isinstance(receiver, cst.Name) and receiver.value in _ORM_RECEIVERS


_ASYNCPG_QUERIES = frozenset({"fetch", "fetchrow", "fetchval"})


def _is_asyncpg_query(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in _ASYNCPG_QUERIES


class _LineState(CodegenState):
    """Code generation that only counts lines, recording them for chosen nodes:
    a fraction of the cost of libcst's position metadata."""

    def __init__(self, module: cst.Module, wanted: set[int]) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.wanted = wanted
        self.line = 1
        self.spans: dict[int, tuple[int, int]] = {}
        self._starts: list[int] = []
        self._syntactic: dict[int, int] = {}

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.line += value.count("\n")

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._starts.append(self.line)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._starts.pop()
        key = id(node)
        if key in self.wanted:
            ends_line = bool(self.tokens) and self.tokens[-1].endswith("\n")
            end = self.line - 1 if ends_line else self.line
            begin = self._syntactic.get(key, start)
            self.spans[key] = (begin, max(end, begin))

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        # Statements start after their leading comment lines, as users count.
        self._syntactic.setdefault(id(node), self.line)
        yield


def line_spans(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[int, tuple[int, int]]:
    """First and last line of each node (keyed by ``id``), in one cheap pass."""
    state = _LineState(module, {id(n) for n in nodes})
    module._codegen(state)
    return state.spans
