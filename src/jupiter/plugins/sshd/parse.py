"""A reader for ``sshd_config`` that follows OpenSSH's own semantics.

What it models (checked against OpenSSH 9.2's ``sshd -T``):

* keywords are case-insensitive; ``Keyword value`` and ``Keyword=value``;
  double- or single-quoted arguments; ``#`` starts a comment at the start of
  a line or at the start of an unquoted argument (a trailing comment);
* for a global setting the *first* value obtained wins;
* ``Include`` is expanded where it stands, globs sorted as ``glob(3)`` does
  (``*`` does not match a leading dot); relative paths are relative to
  ``/etc/ssh``; absolute paths are mapped into the target root, and only
  files inside the target are followed. In a repository (``host=False``)
  the main file's folder stands for ``/etc/ssh`` and an absolute path is a
  host path outside the repository: reported, not followed, never read
  from this machine; an Include loop is reported and broken;
* in a Jinja template (``*.j2``) control lines (``{% ... %}``) are skipped
  and a value that is one variable (``{{ x }}``) is judged with the value
  the role's ``defaults/main.yml`` gives it (the directive keeps the name);
* a ``Match`` line starts a block that lasts until the next ``Match`` or the
  end of *that* file: a ``Match`` inside an included file does not leak into
  the including file (sshd restores the context after an Include);
* ``Match all`` is active when sshd loads its configuration, so its
  settings count towards the global value if nothing earlier set them.

Paths are target-relative (``etc/ssh/sshd_config``). Nothing here writes.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from jupiter.errors import PathEscapeError, TargetError
from jupiter.plugins.kit import read_text
from jupiter.targets.base import TargetView, normalise_relpath

MAIN_CONFIG = "etc/ssh/sshd_config"
SSH_DIR = "etc/ssh"
# sshd refuses deeper nesting ("Too many recursive configuration includes").
MAX_INCLUDE_DEPTH = 16

# Options that are one and the same setting under two names (OpenSSH >= 8.7).
ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
}


@dataclass(frozen=True)
class MatchBlock:
    """The ``Match`` line a directive sits under."""

    path: str
    line: int
    criteria: str

    @property
    def is_all(self) -> bool:
        return self.criteria.strip().lower() == "all"


@dataclass(frozen=True)
class Directive:
    """One ``Keyword args`` line, in the order sshd processes it.

    ``value_span`` is the character range of the arguments in the line
    (without a trailing comment or line ending), so an edit can replace the
    value and keep indentation, keyword spelling and comment.
    """

    path: str
    line: int
    keyword: str  # lower case, aliases resolved
    raw_keyword: str
    args: tuple[str, ...]
    text: str  # the line without its line ending
    value_span: tuple[int, int]
    match: MatchBlock | None
    variable: str | None = None  # a template's {{ variable }} that gives the value
    variable_source: str | None = None  # "roles/x/defaults/main.yml line 3" when found

    @property
    def value(self) -> str:
        return " ".join(self.args)

    @property
    def applies_globally(self) -> bool:
        """Whether sshd counts this line when it loads its global settings."""
        return self.match is None or self.match.is_all


@dataclass
class SshdConfig:
    """The parsed configuration: every file read and every directive in order."""

    main: str
    texts: dict[str, str] = field(default_factory=dict)
    directives: list[Directive] = field(default_factory=list)
    includes: list[Directive] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    host: bool = True
    #: (file, line) of each Include -> the target-relative patterns it follows
    include_targets: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    def effective(self, keyword: str) -> Directive | None:
        """The directive whose value sshd uses globally (first one wins)."""
        key = canonical(keyword)
        for d in self.directives:
            if d.keyword == key and d.applies_globally:
                return d
        return None

    def global_occurrences(self, keyword: str) -> list[Directive]:
        key = canonical(keyword)
        return [d for d in self.directives if d.keyword == key and d.match is None]

    def in_match_blocks(self, keyword: str) -> list[Directive]:
        key = canonical(keyword)
        return [d for d in self.directives if d.keyword == key and d.match is not None]

    def lines(self, path: str) -> list[str]:
        """The lines of ``path`` with their line endings."""
        return split_lines(self.texts[path])


def canonical(keyword: str) -> str:
    low = keyword.lower()
    return ALIASES.get(low, low)


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` only (as sshd does), keeping the endings."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def tokenize(line: str) -> tuple[str, str, list[str], tuple[int, int]] | None:
    """Split one line into (raw keyword, separator-free rest, args, value span).

    Returns ``None`` for blank and comment lines. Raises ``ValueError`` for an
    unterminated quote (sshd rejects the line too).
    """
    body = line.rstrip("\r\n")
    i = len(body) - len(body.lstrip(" \t"))
    if i >= len(body) or body[i] == "#":
        return None
    start = i
    while i < len(body) and body[i] not in " \t=":
        i += 1
    keyword = body[start:i]
    while i < len(body) and body[i] in " \t":
        i += 1
    if i < len(body) and body[i] == "=":
        i += 1
        while i < len(body) and body[i] in " \t":
            i += 1
    args: list[str] = []
    value_start = value_end = i
    while i < len(body):
        if body[i] in " \t":
            i += 1
            continue
        if body[i] == "#":
            break  # trailing comment
        word: list[str] = []
        while i < len(body) and body[i] not in " \t":
            ch = body[i]
            if ch in "\"'":
                close = body.find(ch, i + 1)
                if close < 0:
                    raise ValueError("unterminated quote")
                word.append(body[i + 1 : close])
                i = close + 1
            elif ch == "\\" and i + 1 < len(body):
                word.append(body[i + 1])
                i += 2
            else:
                word.append(ch)
                i += 1
        args.append("".join(word))
        value_end = i
    return keyword, body[value_start:value_end], args, (value_start, value_end)


def include_pattern(arg: str) -> str:
    """Map an Include argument to a target-relative glob pattern
    (:class:`PathEscapeError` if it names no path inside the target)."""
    if arg.startswith("/"):
        mapped = posixpath.normpath(arg).lstrip("/")
    else:
        mapped = posixpath.normpath(posixpath.join("/" + SSH_DIR, arg)).lstrip("/")
    return normalise_relpath(mapped)


def _glob_like_sshd(view: TargetView, pattern: str) -> list[str]:
    if not any(ch in pattern for ch in "*?["):
        st = view.stat(pattern)
        return [pattern] if st is not None else []
    found = []
    segs = pattern.split("/")
    for path in view.glob(pattern):
        names = path.split("/")
        # glob(3) never lets a wildcard match a leading dot.
        pairs = zip(names, segs, strict=False)
        if any(n.startswith(".") and not s.startswith(".") for n, s in pairs):
            continue
        found.append(path)
    return sorted(found)


def parse(
    view: TargetView, main: str = MAIN_CONFIG, *, host: bool | None = None
) -> SshdConfig | None:
    """Parse ``main`` and its Includes; ``None`` when ``main`` does not exist.

    ``host`` (default: whether ``main`` is ``etc/ssh/sshd_config``) says
    whether the target mirrors a host or is a repository (module docs)."""
    st = view.stat(main)
    if st is None:
        return None
    config = SshdConfig(main=main, host=main == MAIN_CONFIG if host is None else host)
    _parse_file(view, config, main, None, 0, ())
    return config


def repo_include_pattern(config: SshdConfig, arg: str) -> str:
    """An Include argument of a repository's configuration as a target-relative
    pattern: relative to the main file's folder (which stands for ``/etc/ssh``);
    :class:`PathEscapeError` for an absolute path (a host path, not followed),
    unless the main file is ``<dir>/etc/ssh/sshd_config``: ``<dir>`` then
    mirrors a host's root and the path resolves inside it."""
    if arg.startswith("/"):
        plain = config.main.removesuffix(".j2")
        if plain.endswith("/" + MAIN_CONFIG):
            # <dir>/etc/ssh/sshd_config: <dir> mirrors a host's root, as on that host
            root = plain[: -len(MAIN_CONFIG)]
            return normalise_relpath(root + posixpath.normpath(arg).lstrip("/"))
        raise PathEscapeError(
            f"{arg} is an absolute host path outside the repository; Jupiter does not read "
            "it from this machine"
        )
    base = posixpath.dirname(config.main)
    return normalise_relpath(posixpath.normpath(posixpath.join(base, arg)))


def _template_value(
    view: TargetView, path: str, args: list[str], rest: str
) -> tuple[list[str], str | None, str | None]:
    from jupiter.plugins import configs

    name = configs.variable_of(rest)
    if name is None:  # a longer expression: named as written, not evaluated
        return args, rest.strip(), None
    default = configs.role_defaults(view, path).get(name)
    if default is None:
        return args, name, None
    return default.value.split() or [default.value], name, default.where


def _parse_file(
    view: TargetView,
    config: SshdConfig,
    path: str,
    context: MatchBlock | None,
    depth: int,
    stack: tuple[str, ...],
) -> None:
    text = read_text(view, path)
    config.texts.setdefault(path, text)
    template = path.endswith(".j2")
    stack = (*stack, path)
    match = context
    for number, raw in enumerate(split_lines(text), start=1):
        if template and raw.lstrip().startswith(("{%", "{#")):
            continue
        try:
            parts = tokenize(raw)
        except ValueError:
            config.problems.append(f"{path} line {number}: unterminated quote; line ignored")
            continue
        if parts is None:
            continue
        keyword, rest, args, span = parts
        key = canonical(keyword)
        if key == "match":
            match = MatchBlock(path, number, " ".join(args))
            continue
        variable = source = None
        if template and "{{" in rest:
            args, variable, source = _template_value(view, path, args, rest)
        d = Directive(
            path,
            number,
            key,
            keyword,
            tuple(args),
            raw.rstrip("\r\n"),
            span,
            match,
            variable,
            source,
        )
        if key != "include":
            config.directives.append(d)
            continue
        config.includes.append(d)
        if depth + 1 >= MAX_INCLUDE_DEPTH:
            config.problems.append(f"{path} line {number}: Include nested too deeply; ignored")
            continue
        followed = config.include_targets.setdefault((path, number), [])
        for arg in args:
            try:
                pattern = include_pattern(arg) if config.host else repo_include_pattern(config, arg)
                followed.append(pattern)
                for inc in _glob_like_sshd(view, pattern):
                    inc_st = view.stat(inc)
                    if inc_st is None or inc_st.kind not in ("file", "symlink"):
                        continue
                    if not config.host and inc in stack:
                        config.problems.append(
                            f"{path} line {number}: Include {arg!r} loops back to {inc}; "
                            "not followed again (remove the circular Include)"
                        )
                        continue
                    _parse_file(view, config, inc, match, depth + 1, stack)
            except (PathEscapeError, TargetError, FileNotFoundError) as exc:
                # sshd on the host might follow it; we cannot, so say so.
                config.problems.append(f"{path} line {number}: Include {arg!r} not followed: {exc}")
