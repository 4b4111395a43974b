"""Which placeholder style a module's SQL fixes use, and the evidence that
decided it: the imported driver; when no import settles it, the module's own
parameterised queries; then the driver the project declares. Named so that a
needs_manual reason can say what was looked at."""

from __future__ import annotations

import posixpath
import re
from typing import Literal

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from jupiter.targets.base import TargetView

Paramstyle = Literal["qmark", "format", "pyformat", "named", "numeric", "dollar"]

#: Database drivers by import name and the placeholder style they take.
DRIVER_STYLES: dict[str, Paramstyle] = {
    "sqlite3": "qmark",
    "aiosqlite": "qmark",
    "pyodbc": "qmark",
    "psycopg": "format",
    "psycopg2": "format",
    "aiopg": "format",
    "pymysql": "format",
    "aiomysql": "format",
    "MySQLdb": "format",
    "mysql.connector": "format",
    "django.db": "format",
    "oracledb": "named",
    "cx_Oracle": "named",
    "asyncpg": "dollar",
}
#: Calls that pass a query and its parameters.
_PARAM_SINKS = frozenset({"execute", "executemany", "fetch", "fetchrow", "fetchval", "read_sql"})
_STYLE_WORDS: dict[str, str] = {
    "qmark": "'?'",
    "format": "'%s'",
    "pyformat": "'%(name)s'",
    "named": "':name'",
    "numeric": "':1'",
    "dollar": "'$1'",
}
#: Placeholders in a parameterised query, most specific first (``::`` is a
#: PostgreSQL cast, not a named placeholder).
_PLACEHOLDERS: list[tuple[Paramstyle, re.Pattern[str]]] = [
    ("pyformat", re.compile(r"%\([A-Za-z_]\w*\)s")),
    ("format", re.compile(r"%s")),
    ("dollar", re.compile(r"\$\d+")),
    ("numeric", re.compile(r"(?<![:\w]):\d+")),
    ("named", re.compile(r"(?<![:\w]):[A-Za-z_]\w*")),
    ("qmark", re.compile(r"\?")),
]


def _paramstyle(modules: set[str]) -> tuple[Paramstyle | None, str]:
    """The style the module's imported drivers settle, if they do."""
    found = sorted(
        (name, style)
        for name, style in DRIVER_STYLES.items()
        if any(m == name or m.startswith(name + ".") for m in modules)
    )
    styles = {style for _, style in found}
    if len(styles) > 1:
        names = " and ".join(name for name, _ in found[:2])
        return None, f"the module imports both {names}, so the driver is ambiguous"
    if found:
        name, style = found[0]
        return style, f"the module imports {name} ({_STYLE_WORDS[style]} placeholders)"
    return None, "the module imports no known database driver"


def style_of_query(sql: str) -> Paramstyle | None:
    """The placeholder style a parameterised query is written in."""
    for style, pattern in _PLACEHOLDERS:
        if pattern.search(sql):
            return style
    return None


def _evidence_style(module: cst.Module) -> tuple[Paramstyle | None, str]:
    """The style of the module's own parameterised calls: a query literal
    passed together with its parameters (``cur.execute("... %(id)s", p)``)."""
    found: list[tuple[Paramstyle, int]] = []

    class _Calls(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if not isinstance(func, cst.Attribute) or func.attr.value not in _PARAM_SINKS:
                return
            positional = [a for a in node.args if a.keyword is None]
            if len(positional) < 2 and not (positional and node.args[-1].star == "*"):
                return
            sql = _literal(positional[0].value)
            style = style_of_query(sql) if sql is not None else None
            if style is not None:
                found.append((style, self.get_metadata(PositionProvider, node).start.line))

    MetadataWrapper(module, unsafe_skip_copy=True).visit(_Calls())
    styles = {style for style, _ in found}
    if len(styles) == 1:
        style, line = found[0]
        return style, (
            f"the module's parameterised call at line {line} uses {_STYLE_WORDS[style]} "
            "placeholders"
        )
    if styles:
        return None, "the module's parameterised calls mix placeholder styles"
    return None, "no parameterised call in the module shows the placeholder style"


def choose_paramstyle(module: cst.Module, modules: set[str]) -> tuple[Paramstyle | None, str]:
    """The placeholder style for the module's fixes, and the evidence that
    decided it: the imported driver; the module's own parameterised calls
    when no import settles it (or to keep a psycopg module's named
    ``%(name)s`` style); else ``None`` with what was looked at."""
    by_import, import_reason = _paramstyle(modules)
    by_calls, calls_reason = _evidence_style(module)
    if by_import is None and by_calls is not None:
        return by_calls, f"{import_reason}; {calls_reason}"
    if by_import == "format" and by_calls == "pyformat":
        return "pyformat", f"{import_reason}, and {calls_reason}"
    if by_import is None:
        return None, (
            f"{import_reason} and {calls_reason}, so the placeholder style is unknown "
            "(evidence looked at: imports, the module's parameterised calls)"
        )
    return by_import, import_reason


#: Distribution names (normalised) of the drivers in DRIVER_STYLES.
_DISTRIBUTIONS: dict[str, str] = {
    "psycopg": "psycopg",
    "psycopg-binary": "psycopg",
    "psycopg2": "psycopg2",
    "psycopg2-binary": "psycopg2",
    "aiopg": "aiopg",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "aiomysql": "aiomysql",
    "mysqlclient": "MySQLdb",
    "mysql-connector-python": "mysql.connector",
    "pyodbc": "pyodbc",
    "oracledb": "oracledb",
    "cx-oracle": "cx_Oracle",
    "aiosqlite": "aiosqlite",
}
_DEPENDENCY_FILES = ("requirements.txt", "requirements.in", "pyproject.toml", "setup.cfg")


def declared_paramstyle(view: TargetView, module: str) -> tuple[Paramstyle | None, str]:
    """The placeholder style of the one database driver the project declares
    (requirements, pyproject, setup.cfg nearest the module), with the
    evidence; ``None`` when none or several styles are declared."""
    folder = posixpath.dirname(module)
    while True:
        for name in _DEPENDENCY_FILES:
            path = posixpath.join(folder, name) if folder else name
            state = view.stat(path)
            if state is None or state.kind != "file":
                continue
            text = view.read_bytes(path).decode("utf-8", errors="replace").lower()
            words = set(re.findall(r"[a-z0-9][a-z0-9._-]*", text.replace("_", "-")))
            found = sorted({_DISTRIBUTIONS[w] for w in words if w in _DISTRIBUTIONS})
            styles = {DRIVER_STYLES[m] for m in found}
            if len(styles) == 1:
                return next(iter(styles)), f"the project declares {found[0]} in {path}"
            if styles:
                return None, f"{path} declares drivers of different styles ({', '.join(found)})"
        if not folder:
            return None, "the project declares no database driver"
        folder = posixpath.dirname(folder)


def _literal(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None
