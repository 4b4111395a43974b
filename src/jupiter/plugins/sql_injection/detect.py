"""Built-in check: SQL built from strings and handed to a database API (CWE-89).

A *site* is one call that sends SQL to the database: DB-API
``cursor.execute``/``executemany`` and sqlite3 ``connection.execute``, Django
``Model.objects.raw()`` and ``.extra(where=[...])``, SQLAlchemy ``text()``.
A site is *dynamic* when its SQL is built with ``%`` formatting, an f-string,
``str.format`` or ``+`` concatenation from something other than literals and
module-level string constants — directly in the call or through one local
variable assigned earlier in the same function (``q = "..." % x;
cur.execute(q)``).

Rule ids (see :data:`RULES`): ``PY-SQLI-001`` DB-API execute,
``PY-SQLI-002`` Django ``raw``/``extra``, ``PY-SQLI-003`` SQLAlchemy ``text``.
A finding's line is the line of the sink call; ``extra`` holds the sink kind,
the enclosing function and the line span of the SQL construction.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.sql_injection.collect import Collector, Scope, SinkCall, SinkKind, line_spans
from jupiter.plugins.sql_injection.paramstyle import Paramstyle, choose_paramstyle

RULE_EXECUTE = "PY-SQLI-001"
RULE_DJANGO = "PY-SQLI-002"
RULE_TEXT = "PY-SQLI-003"
RULES: dict[str, str] = {
    RULE_EXECUTE: "SQL built from strings passed to a DB-API execute call",
    RULE_DJANGO: "SQL built from strings passed to Django raw() or extra()",
    RULE_TEXT: "SQL built from strings passed to SQLAlchemy text()",
}
_RULE_OF: dict[SinkKind, str] = {
    "execute": RULE_EXECUTE,
    "executemany": RULE_EXECUTE,
    "django_raw": RULE_DJANGO,
    "django_extra": RULE_DJANGO,
    "sqlalchemy_text": RULE_TEXT,
    "sqlalchemy_execute": RULE_TEXT,
    "pandas_read_sql": RULE_EXECUTE,
}
SCANNER = "jupiter-sqli"

# Substrings one of which a module must contain to hold a sink: a cheap
# filter that spares the parse of most files in a large tree.
_SINK_HINTS = (b"execute", b"raw(", b"extra(", b"text(", b"fetch", b"read_sql")


@dataclass
class QuerySource:
    """One SQL-building expression of a site.

    ``assign`` is set when the site reaches the expression through a local
    variable (``var``); ``problem`` says why that link cannot be rewritten.
    """

    expr: cst.BaseExpression
    start_line: int
    end_line: int
    assign: cst.Assign | None = None
    var: str | None = None
    problem: str | None = None


@dataclass
class Site:
    """One call that sends SQL to the database."""

    kind: SinkKind
    call: cst.Call
    line: int
    end_line: int
    function: str
    function_span: tuple[int, int]
    queries: list[QuerySource]
    dynamic: bool
    evidence: str

    @property
    def rule_id(self) -> str:
        return _RULE_OF[self.kind]

    @property
    def construction_lines(self) -> tuple[int, int]:
        starts = [q.start_line for q in self.queries] or [self.line]
        ends = [q.end_line for q in self.queries] or [self.end_line]
        return min(starts), max(ends)


@dataclass
class ModuleScan:
    """The parsed module (the tree the sites point into) and what was found."""

    path: str
    source: str
    module: cst.Module
    sites: list[Site]
    constants: dict[str, str]
    paramstyle: Paramstyle | None
    paramstyle_reason: str


def might_hold_sinks(data: bytes) -> bool:
    return any(hint in data for hint in _SINK_HINTS)


def literal_text(node: cst.BaseExpression) -> str | None:
    """The value of a plain (non-bytes, non-f) string literal, else ``None``."""
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def is_safe_piece(node: cst.BaseExpression, constants: dict[str, str]) -> bool:
    """A piece that cannot carry user input: a literal or a module string constant."""
    if literal_text(node) is not None or isinstance(node, cst.Integer | cst.Float):
        return True
    return isinstance(node, cst.Name) and node.value in constants


def _flatten_add(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        return [*_flatten_add(node.left), *_flatten_add(node.right)]
    return [node]


def _fstring_dynamic(node: cst.BaseExpression, constants: dict[str, str]) -> bool:
    if isinstance(node, cst.FormattedString):
        return any(
            isinstance(p, cst.FormattedStringExpression)
            and not is_safe_piece(p.expression, constants)
            for p in node.parts
        )
    if isinstance(node, cst.ConcatenatedString):
        return _fstring_dynamic(node.left, constants) or _fstring_dynamic(node.right, constants)
    return False


def _stringish(node: cst.BaseExpression, constants: dict[str, str]) -> bool:
    if isinstance(node, cst.Name):
        return node.value in constants
    return isinstance(node, cst.SimpleString | cst.ConcatenatedString | cst.FormattedString)


def is_dynamic(node: cst.BaseExpression, constants: dict[str, str]) -> bool:
    """Whether ``node`` builds a string from something other than constants."""
    if _fstring_dynamic(node, constants):
        return True
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
        if not _stringish(node.left, constants):
            return False
        right = node.right
        values: list[cst.BaseExpression]
        if isinstance(right, cst.Tuple | cst.Dict):
            values = [e.value for e in right.elements]
        else:
            values = [right]
        return not all(is_safe_piece(v, constants) for v in values)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        if node.func.attr.value == "format" and _stringish(node.func.value, constants):
            return not all(is_safe_piece(a.value, constants) for a in node.args)
        return False
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        parts = _flatten_add(node)
        if not any(_stringish(p, constants) for p in parts):
            return False
        return any(
            (not is_safe_piece(p, constants) and not isinstance(p, cst.FormattedString))
            or _fstring_dynamic(p, constants)
            for p in parts
        )
    return False


def _constants(module: cst.Module) -> dict[str, str]:
    seen: dict[str, list[str | None]] = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target = small.targets[0].target
                if isinstance(target, cst.Name):
                    seen.setdefault(target.value, []).append(literal_text(small.value))
    return {k: v[0] for k, v in seen.items() if len(v) == 1 and v[0] is not None}


def parse_python(path: str, source: str) -> cst.Module:
    """Parse ``source`` or raise InputError naming the file and line."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        line, detail = exc.raw_line, exc.message
        try:
            ast.parse(source, filename=path)
        except SyntaxError as py_exc:
            # CPython's parser points at the offending line more precisely.
            line, detail = py_exc.lineno or line, py_exc.msg
        except ValueError:
            pass
        raise InputError(
            f"{path} line {line}: Python syntax error ({detail}); "
            "fix the file before scanning it for SQL injection"
        ) from exc


def scan_source(path: str, source: str) -> ModuleScan:
    """Parse one module and list every SQL sink call in it."""
    module = parse_python(path, source)
    collector = Collector()
    module.visit(collector)
    collector.finish()
    style, reason = choose_paramstyle(module, collector.modules)
    constants = _constants(module)
    resolved: list[tuple[Scope, SinkCall, list[QuerySource]]] = []
    wanted: list[cst.CSTNode] = []
    for scope in collector.scopes:
        for sink in scope.calls:
            queries = [_resolve(scope, e, sink.tick) for e in sink.exprs]
            resolved.append((scope, sink, queries))
            wanted.append(sink.call)
            wanted.extend(q.expr for q in queries)
            if scope.node is not None:
                wanted.append(scope.node)
    spans = line_spans(module, wanted) if wanted else {}
    lines = source.splitlines()
    sites: list[Site] = []
    for scope, sink, queries in resolved:
        line, end = spans[id(sink.call)]
        for query in queries:
            query.start_line, query.end_line = spans[id(query.expr)]
        function_span = spans[id(scope.node)] if scope.node is not None else (1, len(lines) + 1)
        evidence = lines[line - 1].strip() if line <= len(lines) else ""
        dynamic = any(is_dynamic(q.expr, constants) for q in queries)
        sites.append(
            Site(
                sink.kind,
                sink.call,
                line,
                end,
                scope.name,
                function_span,
                queries,
                dynamic,
                evidence,
            )
        )
    sites.sort(key=lambda s: (s.line, s.kind))
    return ModuleScan(path, source, module, sites, constants, style, reason)


def _resolve(scope: Scope, expr: cst.BaseExpression, call_tick: int) -> QuerySource:
    direct = QuerySource(expr, 0, 0)
    if not isinstance(expr, cst.Name):
        return direct
    var = expr.value
    earlier = [a for a in scope.assignments.get(var, []) if a.end < call_tick]
    if not earlier:
        return direct
    latest = earlier[-1]
    source = QuerySource(latest.node.value, 0, 0, latest.node, var)
    if len(scope.assignments[var]) > 1 or len(scope.stores.get(var, [])) > 1:
        source.problem = f"variable {var!r} is assigned more than once in {scope.name}"
    elif scope.name_counts.get(var, 0) != 2:
        source.problem = (
            f"variable {var!r} is used elsewhere in {scope.name}, so changing its text "
            "would change those uses too"
        )
    else:
        moved = {n.value for n in _names_in(latest.node.value)}
        for name in sorted(moved):
            if any(latest.end < tick < call_tick for tick in scope.stores.get(name, [])):
                source.problem = (
                    f"{name!r} is reassigned between the query's assignment and the call"
                )
                break
    return source


def _names_in(node: cst.CSTNode) -> list[cst.Name]:
    found: list[cst.Name] = []

    class _Names(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.append(n)

    node.visit(_Names())
    return found


def finding_for(path: str, site: Site) -> FindingRecord:
    first, last = site.construction_lines
    return FindingRecord(
        scanner=SCANNER,
        rule_id=site.rule_id,
        category=Category.CODE_SQL_INJECTION,
        title=f"{RULES[site.rule_id]} in {site.function}",
        severity=Severity.HIGH,
        location=Location(path=path, start_line=site.line, end_line=site.end_line),
        cwe=["CWE-89"],
        evidence=site.evidence,
        extra={"sink": site.kind, "function": site.function, "construction_lines": [first, last]},
    )


_SINK_NAMES = frozenset(
    {
        "execute",
        "executemany",
        "raw",
        "extra",
        "text",
        "fetch",
        "fetchrow",
        "fetchval",
        "read_sql",
        "read_sql_query",
    }
)


def _may_build_sql(source: str) -> bool:
    """A conservative pre-check with CPython's own (much faster) parser: does
    the module call a sink name at all *and* build any string dynamically?
    Only modules that pass get the full libcst scan."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True  # the libcst parse reports the error with file and line
    sink = build = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            sink = sink or name in _SINK_NAMES
            build = build or name == "format"
        elif isinstance(node, ast.BinOp):
            build = build or isinstance(node.op, ast.Mod | ast.Add)
        elif isinstance(node, ast.JoinedStr):
            build = build or any(isinstance(v, ast.FormattedValue) for v in node.values)
        if sink and build:
            return True
    return False


def detect_source(path: str, source: str) -> list[FindingRecord]:
    """Findings for one module's text (InputError if it does not parse)."""
    if not might_hold_sinks(source.encode()) or not _may_build_sql(source):
        return []
    scan = scan_source(path, source)
    return [finding_for(path, s) for s in scan.sites if s.dynamic]
