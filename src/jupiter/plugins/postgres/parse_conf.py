"""Parser for PostgreSQL's ``postgresql.conf`` and the files it includes
(``pg_hba.conf`` is :mod:`jupiter.plugins.postgres.parse_hba`).

It follows the server's own lexer (``guc-file.l``) closely enough that what it
accepts PostgreSQL 15 accepts, and it keeps the position of every value so a
fix can change one token and leave comments and layout alone.

Syntax: ``name [=] value [# comment]``; names are case-insensitive;
values are quoted (``'...'`` with ``''`` or backslash escapes) or bare; the
*last* occurrence of a setting wins; ``include``, ``include_if_exists`` and
``include_dir`` are followed where they appear (relative paths are relative to
the including file; ``include_dir`` reads ``*.conf`` files not starting with a
dot, in name order). Absolute paths are server paths: they are mapped into the
target through ``server_root`` (the directory of the server's ``/`` as seen
from the target root, ``/`` when the target root *is* the server's root).

In a repository (``repo=True``) an absolute path names a file of the host
the configuration is deployed to, outside the repository: an include of one
is reported in ``problems`` and not followed (never read from this
machine), and :meth:`PgConfig.to_target` gives ``None`` for it.

A line PostgreSQL would reject raises :class:`~jupiter.errors.InputError`
naming the file and line.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from jupiter.errors import InputError, PathEscapeError
from jupiter.plugins.kit import read_text
from jupiter.targets.base import TargetView, normalise_relpath

MAX_INCLUDE_DEPTH = 10  # CONF_FILE_MAX_DEPTH in PostgreSQL
INCLUDE_DIRECTIVES = ("include", "include_if_exists", "include_dir")

# Token shapes of guc-file.l; flex takes the longest match, ties go to the
# earlier rule, and the order below is the order of the rules there.
_LETTER = r"A-Za-z_\u0080-\U0010ffff"
_ID = rf"[{_LETTER}][{_LETTER}0-9]*"
_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("id", re.compile(_ID)),
    ("qualified_id", re.compile(rf"{_ID}\.{_ID}")),
    ("string", re.compile(r"'(?:[^'\\\n]|\\.|'')*'")),
    ("unquoted", re.compile(rf"[{_LETTER}](?:[{_LETTER}0-9]|[-._:/])*")),
    ("integer", re.compile(r"[-+]?(?:0x[0-9a-fA-F]+|[0-9]+)[a-zA-Z]*")),
    ("real", re.compile(r"[-+]?[0-9]*\.[0-9]*(?:[Ee][-+]?[0-9]+)?")),
)
_VALUE_KINDS = frozenset({"id", "string", "unquoted", "integer", "real"})
_OCTAL = re.compile(r"[0-7]{1,3}")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class Setting:
    """One ``name = value`` line. ``span`` is the value token's position in the
    line (quotes included); ``quoted`` tells whether it was a quoted string."""

    path: str
    line: int
    name: str
    value: str
    span: tuple[int, int]
    quoted: bool
    text: str


@dataclass
class ConfFile:
    path: str
    text: str
    settings: list[Setting] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The file's lines, each with its line ending."""
        return split_lines(self.text, keepends=True)


@dataclass
class PgConfig:
    """A parsed ``postgresql.conf`` and everything it includes, in read order."""

    main: str
    server_root: str
    files: dict[str, ConfFile] = field(default_factory=dict)
    order: list[Setting] = field(default_factory=list)
    repo: bool = False
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> Setting | None:
        """The effective (last) line of ``name``, or ``None`` when unset."""
        key = name.lower()
        for setting in reversed(self.order):
            if setting.name == key:
                return setting
        return None

    def value(self, name: str, default: str | None = None) -> str | None:
        found = self.get(name)
        return found.value if found is not None else default

    def to_target(self, server_path: str, relative_to: str) -> str | None:
        """Map a path from a setting into the target (``relative_to`` is the
        target directory a relative path is relative to); ``None`` when it
        lies outside the target (in a repository: any absolute path)."""
        if self.repo and server_path.startswith("/"):
            return None
        return map_server_path(server_path, relative_to, self.server_root)


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """Lines as PostgreSQL counts them: split at ``\\n`` only (str.splitlines
    would also split at form feeds and other separators, shifting line numbers)."""
    lines = text.split("\n")
    ended = lines[-1] == ""  # empty, or the last line has its newline
    if ended:
        lines.pop()
    if not keepends:
        return [line.removesuffix("\r") for line in lines]
    out = [line + "\n" for line in lines]
    if not ended:
        out[-1] = lines[-1]
    return out


def quote(value: str) -> str:
    """``value`` as a quoted postgresql.conf string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def map_server_path(server_path: str, relative_to: str, server_root: str) -> str | None:
    """A server path as a target-relative path, or ``None`` outside the target."""
    if server_path.startswith("/"):
        root = posixpath.normpath(server_root)
        path = posixpath.normpath(server_path)
        if root != "/":
            if not path.startswith(root + "/"):
                return None
            path = path[len(root) :]
        rel = path.lstrip("/")
    else:
        rel = posixpath.normpath(posixpath.join(relative_to, server_path))
    try:
        return normalise_relpath(rel)
    except PathEscapeError:
        return None


def server_path(target_path: str, server_root: str) -> str:
    """The absolute path the server sees for a target-relative path."""
    return posixpath.join(posixpath.normpath(server_root), target_path)


def is_regular(view: TargetView, path: str) -> bool:
    state = view.stat(path)
    return state is not None and state.kind == "file"


def _longest(line: str, pos: int) -> tuple[str, int]:
    best, best_end = "", pos
    for kind, pattern in _TOKENS:
        m = pattern.match(line, pos)
        if m and m.end() > best_end:
            best, best_end = kind, m.end()
    return best, best_end


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r":
        pos += 1
    return pos


def _deescape(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            octal = _OCTAL.match(body, i + 1)
            if octal:
                out.append(chr(int(octal.group(), 8)))
                i = octal.end()
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        elif ch == "'" and body.startswith("''", i):
            out.append("'")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_conf_line(path: str, lineno: int, text: str) -> Setting | None:
    """Parse one line; ``None`` for blank and comment lines."""
    body = text.rstrip("\n")
    pos = _skip_blanks(body, 0)
    if pos >= len(body) or body[pos] == "#":
        return None

    def fail(what: str) -> InputError:
        return InputError(
            f"{path} line {lineno}: {what} in {body.strip()!r}; fix the line "
            "(PostgreSQL refuses to start with it)"
        )

    kind, end = _longest(body, pos)
    if kind not in ("id", "qualified_id"):
        raise fail("a setting name is expected")
    name = body[pos:end].lower()
    pos = _skip_blanks(body, end)
    if pos < len(body) and body[pos] == "=":
        pos = _skip_blanks(body, pos + 1)
    kind, end = _longest(body, pos)
    if kind not in _VALUE_KINDS:
        raise fail(f"a value for {name!r} is expected")
    token = body[pos:end]
    rest = _skip_blanks(body, end)
    if rest < len(body) and body[rest] != "#":
        raise fail(f"unexpected text after the value of {name!r}")
    quoted = kind == "string"
    value = _deescape(token) if quoted else token
    return Setting(path, lineno, name, value, (pos, end), quoted, body)


def parse_conf(
    view: TargetView, main: str, server_root: str = "/", *, repo: bool = False
) -> PgConfig:
    """Parse ``main`` and everything it includes (see module docstring)."""
    config = PgConfig(main=main, server_root=server_root, repo=repo)
    _read_into(view, config, main, [], None)
    return config


def extend_conf(view: TargetView, config: PgConfig, path: str) -> None:
    """Read one more file after the others (``postgresql.auto.conf``, which
    ``ALTER SYSTEM`` writes and the server reads last)."""
    _read_into(view, config, path, [], None)


def _read_into(
    view: TargetView, config: PgConfig, path: str, stack: list[str], origin: Setting | None
) -> None:
    where = f"{origin.path} line {origin.line}: " if origin else ""
    if len(stack) >= MAX_INCLUDE_DEPTH or path in stack:
        raise InputError(
            f"{where}including {path} nests too deep or loops back; remove the circular include"
        )
    text = read_text(view, path)
    conf = ConfFile(path, text)
    config.files.setdefault(path, conf)
    for lineno, line in enumerate(split_lines(text), start=1):
        setting = parse_conf_line(path, lineno, line)
        if setting is None:
            continue
        conf.settings.append(setting)
        if setting.name in INCLUDE_DIRECTIVES:
            _include(view, config, setting, [*stack, path])
        else:
            config.order.append(setting)


def _include(view: TargetView, config: PgConfig, directive: Setting, stack: list[str]) -> None:
    here = posixpath.dirname(directive.path)
    target = config.to_target(directive.value, here)
    where = f"{directive.path} line {directive.line}"
    if config.repo and directive.value.startswith("/"):
        config.problems.append(
            f"{where}: {directive.name} {directive.value!r} is an absolute host path outside "
            "the repository; not followed (Jupiter does not read it from this machine)"
        )
        return
    if directive.name == "include_dir":
        state = view.stat(target) if target else None
        if state is None or state.kind != "dir":
            raise InputError(
                f"{where}: include_dir {directive.value!r} is not a directory in the "
                "target; create it or remove the line"
            )
        assert target is not None
        names = sorted(
            p
            for p in view.glob(posixpath.join(target, "*.conf"))
            if not posixpath.basename(p).startswith(".") and is_regular(view, p)
        )
        for name in names:
            _read_into(view, config, name, stack, directive)
        return
    state = view.stat(target) if target else None
    if state is None:
        if directive.name == "include_if_exists":
            return
        raise InputError(
            f"{where}: included file {directive.value!r} does not exist in the target; "
            "create it or remove the line"
        )
    assert target is not None
    _read_into(view, config, target, stack, directive)
