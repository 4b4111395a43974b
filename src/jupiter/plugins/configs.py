"""Daemon configuration files wherever a repository keeps them.

A host-shaped target (one that mirrors ``/``: ``etc/ssh/sshd_config``,
``etc/postgresql/...``) is read where the host keeps its files, exactly as
before. Anything else is a *repository*: each config domain (sshd, postgres,
nftables) then takes its files anywhere in it, by name, by content, or
because a Dockerfile copies them into place, and every file it takes says
why (a :class:`TakenFile` and its ``evidence``). Files that only look like
a configuration (a README fragment, a binary) are reported, never edited;
so are files whose kind is unclear (``ambiguous``).

This module holds what the domains share: reading a candidate as text,
what Dockerfiles copy or write into an image, and Jinja templates (Ansible
roles) with the role defaults that fill their variables.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from jupiter.errors import InputError
from jupiter.plugins.kit import project_files
from jupiter.targets.base import TargetView

Status = Literal["taken", "ambiguous", "refused"]
#: Larger files are no hand-written daemon configuration.
MAX_CONFIG_BYTES = 1 << 20
TEMPLATE_SUFFIX = ".j2"


@dataclass(frozen=True)
class TakenFile:
    """One configuration file a domain found in a repository, and why.

    ``status``: ``taken`` (checked and fixed), ``ambiguous`` (looks like one
    but not clearly: reported, not edited) or ``refused`` (named like one
    but is something else). ``role``: ``config`` (a main file),
    ``include`` (read through another file), ``fragment`` (a drop-in no
    main file here includes: only the settings it sets are judged) or
    ``template`` (a Jinja template of a main file).
    """

    path: str
    domain: str
    evidence: str
    status: Status = "taken"
    role: str = "config"

    def to_json(self) -> dict[str, str]:
        return {
            "path": self.path,
            "domain": self.domain,
            "evidence": self.evidence,
            "status": self.status,
            "role": self.role,
        }


def read_config_text(view: TargetView, path: str) -> str:
    """``path`` as text, or one :class:`InputError` saying why it is no
    configuration file (binary, not UTF-8, too large)."""
    state = view.stat(path)
    if state is not None and state.size > MAX_CONFIG_BYTES:
        raise InputError(
            f"{path} is {state.size} bytes, too large for a configuration file; not read"
        )
    data = view.read_bytes(path)
    if b"\0" in data[:8192]:
        raise InputError(f"{path} is a binary file, not a configuration; not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (byte {exc.start}), so not a configuration Jupiter "
            "can edit; not read"
        ) from None


def is_template(path: str) -> bool:
    return path.endswith(TEMPLATE_SUFFIX)


def untemplated(path: str) -> str:
    """The name a template renders to (``sshd_config.j2`` → ``sshd_config``)."""
    return path[: -len(TEMPLATE_SUFFIX)] if is_template(path) else path


def is_jinja_statement(line: str) -> bool:
    """A Jinja control or comment line (``{% if %}``, ``{# ... #}``)."""
    stripped = line.lstrip()
    return stripped.startswith(("{%", "{#"))


_VARIABLE = re.compile(r"^\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\|[^}]*)?-?\}\}$")


def variable_of(value: str) -> str | None:
    """The variable of a value that is one Jinja expression (``{{ x }}``,
    ``{{ x | default('no') }}``); ``None`` for anything else."""
    found = _VARIABLE.match(value.strip())
    return found.group(1) if found else None


def has_expression(text: str) -> bool:
    return "{{" in text or "{%" in text


@dataclass(frozen=True)
class RoleDefault:
    """Where an Ansible role sets a variable: file, line and value."""

    path: str
    line: int
    value: str
    raw: object = None  # the YAML value, as Ansible hands it to the template

    @property
    def where(self) -> str:
        return f"{self.path} line {self.line}"


def role_root(template: str) -> str | None:
    """The role directory of a template in ``<role>/templates/...``."""
    parts = template.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "templates":
            return "/".join(parts[:i])
    return None


def role_defaults(view: TargetView, template: str) -> dict[str, RoleDefault]:
    """Variables set by the role's ``defaults/main.yml`` and ``vars/main.yml``
    (vars win, as in Ansible), each with its line; empty outside a role."""
    root = role_root(template)
    if root is None:
        return {}
    found: dict[str, RoleDefault] = {}
    for name in ("defaults/main.yml", "defaults/main.yaml", "vars/main.yml", "vars/main.yaml"):
        path = posixpath.join(root, name) if root else name
        if view.stat(path) is None:
            continue
        try:
            found.update(_top_level_values(path, read_config_text(view, path)))
        except InputError:
            continue
    return found


_YAML_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s|$)")


def _top_level_values(path: str, text: str) -> dict[str, RoleDefault]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except YAMLError:
        return {}
    if not isinstance(data, dict):
        return {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = _YAML_KEY.match(line)
        if m and m.group(1) not in lines:
            lines[m.group(1)] = number
    out = {}
    for key, value in data.items():
        if isinstance(key, str) and key in lines:
            shown = (
                ",".join(_yaml_scalar(v) for v in value)
                if isinstance(value, list)
                else _yaml_scalar(value)
            )
            out[key] = RoleDefault(path, lines[key], shown, value)
    return out


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"  # what Jinja prints for sshd is True/False
    return "" if value is None else str(value)


def _environment() -> Any:
    """Jinja's sandbox with the filters Ansible adds that templates use most,
    so a role's template parses and renders as Ansible would render it."""
    import json
    import re as regex

    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)

    def to_bool(value: object) -> bool:
        if isinstance(value, str):
            return value.strip().lower() in ("yes", "on", "1", "true", "y", "t")
        return bool(value)

    def mandatory(value: object) -> object:
        return value

    env.filters.update(
        {
            "bool": to_bool,
            "ternary": lambda value, yes, no, none=None: (
                none if value is None and none is not None else (yes if value else no)
            ),
            "mandatory": mandatory,
            "quote": lambda value: "'" + str(value).replace("'", "'\"'\"'") + "'",
            "regex_replace": lambda value, pattern, repl="": regex.sub(pattern, repl, str(value)),
            "to_json": json.dumps,
            "to_nice_json": lambda value: json.dumps(value, indent=4),
        }
    )
    return env


def render_template(view: TargetView, path: str, text: str) -> str:
    """``text`` rendered as Jinja in a sandbox with the role's defaults (their
    YAML values, as Ansible passes them: ``yes`` unquoted renders ``True``);
    :class:`InputError` when it does not parse or needs a variable nobody sets."""
    from jinja2 import TemplateError

    # What Ansible itself defines for every template.
    values: dict[str, object] = {"ansible_managed": "Ansible managed"}
    for name, default in role_defaults(view, path).items():
        values[name] = default.raw
    try:
        return str(_environment().from_string(text).render(values))
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" line {line}" if line else ""
        raise InputError(
            f"{path}{where}: the template does not render ({exc}); fix it or set the "
            "variable in the role's defaults/main.yml"
        ) from None


def template_problem(path: str, text: str) -> str | None:
    """Why the Jinja template does not even compile, or ``None``."""
    from jinja2 import TemplateSyntaxError

    try:
        _environment().from_string(text)
    except TemplateSyntaxError as exc:
        return (
            f"{path} line {exc.lineno}: the template does not render ({exc.message}); "
            "not checked or edited"
        )
    return None


# -- Dockerfiles ---------------------------------------------------------------

_INSTALL = re.compile(r"\b(apt-get|apt|yum|dnf|microdnf|apk|zypper)\b[^;&|]*?\b(install|add)\b")


@dataclass(frozen=True)
class ImageCopy:
    """A ``COPY``/``ADD`` of a build-context file to an absolute image path."""

    dockerfile: str
    line: int
    source: str  # repository path
    dest: str  # absolute path in the image
    installs: tuple[str, ...]  # packages the same image installs

    def evidence(self, package_hint: str) -> str:
        wanted = [p for p in self.installs if package_hint in p]
        how = (
            f"in an image that installs {', '.join(wanted)}"
            if wanted
            else "(the image installs no package named like "
            f"{package_hint}; its base image may provide it)"
        )
        return f"{self.dockerfile} line {self.line} copies it to {self.dest} {how}"


@dataclass(frozen=True)
class InlineWrite:
    """A ``RUN`` line that writes or edits a configuration file in place."""

    dockerfile: str
    line: int
    dest: str
    text: str


class RepoIndex:
    """One walk of a repository, and its Dockerfiles parsed once, shared by
    the lookups of one survey (the files of a large repository are listed
    once, not once per question)."""

    def __init__(self, view: TargetView) -> None:
        self.view = view
        self._files: list[str] | None = None
        self._dockerfiles: list[Any] | None = None

    def files(self, wanted: Callable[[str], bool]) -> list[str]:
        if self._files is None:
            self._files = project_files(self.view, lambda _: True)
        return [p for p in self._files if wanted(p)]

    def dockerfiles(self) -> list[Any]:
        if self._dockerfiles is None:
            from jupiter.plugins.dockerfile.parse import is_dockerfile, parse
            from jupiter.plugins.kit import decode_text

            self._dockerfiles = []
            for path in self.files(is_dockerfile):
                try:
                    self._dockerfiles.append(
                        parse(path, decode_text(path, self.view.read_bytes(path)))
                    )
                except InputError:
                    continue  # reported by dockerfile-hardening
        return self._dockerfiles


def _index(view: TargetView | RepoIndex) -> RepoIndex:
    return view if isinstance(view, RepoIndex) else RepoIndex(view)


def _packages(df: Any) -> tuple[str, ...]:
    names: list[str] = []
    for instr in df.instructions:
        if instr.keyword != "RUN":
            continue
        for m in _INSTALL.finditer(instr.args):
            tail = instr.args[m.end() :]
            tail = re.split(r"[;&|]", tail, maxsplit=1)[0]
            names.extend(w for w in tail.split() if not w.startswith("-") and w != "\\")
    return tuple(dict.fromkeys(names))


def image_copies(where: TargetView | RepoIndex) -> list[ImageCopy]:
    """Every build-context file a Dockerfile copies to an absolute path (the
    build context is taken to be the Dockerfile's directory)."""
    index = _index(where)
    view = index.view
    out: list[ImageCopy] = []
    for df in index.dockerfiles():
        installs = _packages(df)
        context = posixpath.dirname(df.path)
        for instr in df.instructions:
            if instr.keyword not in ("COPY", "ADD") or any(
                f.startswith("--from") for f in instr.flags()
            ):
                continue
            operands = instr.operands()
            if len(operands) < 2 or not operands[-1].startswith("/"):
                continue
            dest = operands[-1]
            for src in operands[:-1]:
                if "://" in src or any(ch in src for ch in "*?[$"):
                    continue
                rel = posixpath.normpath(posixpath.join(context, src)) if context else src
                rel = posixpath.normpath(rel)
                if rel.startswith("..") or view.stat(rel) is None:
                    continue
                target = (
                    posixpath.join(dest, posixpath.basename(src)) if dest.endswith("/") else dest
                )
                out.append(ImageCopy(df.path, instr.start_line, rel, target, installs))
    return out


_WRITES = re.compile(r"(>>?|\btee\b(?:\s+-a)?|\bsed\b[^|;&]*\s-i)")


def inline_writes(where: TargetView | RepoIndex, dest: re.Pattern[str]) -> list[InlineWrite]:
    """``RUN`` lines that write (``echo ... >> FILE``, ``tee``) or edit
    (``sed -i``) a file matching ``dest`` inside the image."""
    out: list[InlineWrite] = []
    for df in _index(where).dockerfiles():
        for instr in df.instructions:
            if instr.keyword != "RUN":
                continue
            for m in dest.finditer(instr.args):
                before = instr.args[: m.start()]
                piece = re.split(r"&&|;|\|\|", before)[-1]
                if _WRITES.search(piece + " ") or re.search(r"\bsed\b.*\s-i", piece):
                    text = "".join(df.lines[instr.start_line - 1 : instr.end_line]).strip()
                    out.append(InlineWrite(df.path, instr.start_line, m.group(0), text))
                    break
    return out


def candidates(where: TargetView | RepoIndex, wanted: Callable[[str], bool]) -> list[str]:
    """Repository files (outside vendored folders) whose path ``wanted`` accepts."""
    return _index(where).files(wanted)
