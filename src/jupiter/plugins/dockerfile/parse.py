"""A Dockerfile parser that keeps line numbers, for checks and line edits.

Follows the BuildKit frontend's rules: parser directives (``# syntax=``,
``# escape=``) only at the very top; instructions are case-insensitive;
a line ending in the escape character (``\\`` or the one ``# escape=``
chose) continues on the next one, and comment lines inside a continuation
are dropped; ``RUN``/``COPY``/``ADD`` may carry heredocs (``<<EOF``,
``<<-EOF``, quoted delimiters) whose bodies run to their delimiter line.
An unknown instruction, an instruction before the first ``FROM`` (other
than ``ARG``), a ``FROM`` without an image or an unterminated heredoc
raise :class:`InputError` naming file and line.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field

from jupiter.errors import InputError

INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


@dataclass(frozen=True)
class Instruction:
    """One instruction. ``args`` is its logical line after the keyword (continuations
    joined, heredoc bodies left out); lines are 1-based and inclusive."""

    keyword: str
    spelled: str
    args: str
    start_line: int
    end_line: int
    heredocs: tuple[str, ...] = ()

    def words(self) -> list[str]:
        """Shell-like words of ``args`` (JSON form decoded), flags included."""
        text = self.args.strip()
        if text.startswith("["):
            import json

            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
        try:
            return shlex.split(text, posix=True)
        except ValueError:
            return text.split()

    def flags(self) -> list[str]:
        return [w for w in self.words() if w.startswith("--")]

    def operands(self) -> list[str]:
        words = self.words()
        i = 0
        while i < len(words) and words[i].startswith("--"):
            i += 1
        return words[i:]


@dataclass
class Stage:
    index: int
    source: Instruction  # its FROM
    image: str
    alias: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None


@dataclass
class Dockerfile:
    path: str
    text: str
    escape: str
    instructions: list[Instruction]
    stages: list[Stage]

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)

    def stage_named(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.alias is not None and stage.alias.lower() == name.lower():
                return stage
        return None

    def base_chain(self, stage: Stage) -> list[Stage]:
        """``stage`` and the earlier stages it builds on (``FROM <alias>``)."""
        chain = [stage]
        while True:
            parent = self.stage_named(chain[-1].image)
            if parent is None or parent in chain or parent.index >= chain[-1].index:
                return chain
            chain.append(parent)

    def lowercase(self) -> bool:
        """Whether the file writes its instructions in lower case."""
        lower = sum(1 for i in self.instructions if i.spelled.islower())
        return lower * 2 > len(self.instructions)


def _fail(path: str, line: int, what: str) -> InputError:
    return InputError(f"{path} line {line}: {what}")


def is_dockerfile(path: str) -> bool:
    """``Dockerfile``, ``Containerfile``, ``Dockerfile.<x>`` or ``<x>.Dockerfile``."""
    name = posixpath.basename(path)
    lower = name.lower()
    if lower in ("dockerfile", "containerfile"):
        return True
    if lower.endswith((".md", ".txt", ".dockerignore", ".rst")):
        return False
    return lower.startswith(("dockerfile.", "containerfile.")) or lower.endswith(".dockerfile")


def parse(path: str, text: str) -> Dockerfile:
    lines = text.splitlines()
    escape = "\\"
    i = 0
    while i < len(lines):  # parser directives: only before anything else
        m = _DIRECTIVE.match(lines[i].strip())
        if m is None:
            break
        if m.group(1).lower() == "escape":
            if m.group(2) not in ("\\", "`"):
                raise _fail(path, i + 1, f"escape directive {m.group(2)!r} must be \\ or `")
            escape = m.group(2)
        i += 1
    instructions: list[Instruction] = []
    stages: list[Stage] = []
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts = []
        line = lines[i].rstrip()
        while line.endswith(escape):
            parts.append(line[:-1])
            i += 1
            while i < len(lines) and lines[i].strip().startswith("#"):
                i += 1  # comments inside a continuation are removed by the frontend
            if i >= len(lines):
                line = ""
                break
            line = lines[i].rstrip()
        parts.append(line)
        logical = " ".join(p.strip() for p in parts).strip()
        spelled, _, args = logical.partition(" ")
        keyword = spelled.upper()
        if keyword not in INSTRUCTIONS:
            raise _fail(
                path,
                start + 1,
                f"unknown instruction {spelled!r}; fix the "
                "spelling or the line continuation above it",
            )
        heredocs: list[str] = []
        if keyword in ("RUN", "COPY", "ADD"):
            for m in _HEREDOC.finditer(args):
                strip_tabs, delimiter = m.group(1) == "-", m.group(3)
                heredocs.append(delimiter)
                i += 1
                while i < len(lines):
                    body = lines[i].lstrip("\t") if strip_tabs else lines[i]
                    if body.rstrip("\r") == delimiter:
                        break
                    i += 1
                else:
                    raise _fail(
                        path,
                        start + 1,
                        f"heredoc <<{delimiter} is never closed; "
                        f"end it with a line holding only {delimiter}",
                    )
        instr = Instruction(keyword, spelled, args.strip(), start + 1, i + 1, tuple(heredocs))
        i += 1
        instructions.append(instr)
        if keyword == "FROM":
            stages.append(_stage(path, instr, len(stages)))
        elif stages:
            stages[-1].instructions.append(instr)
        elif keyword != "ARG":
            raise _fail(
                path,
                instr.start_line,
                f"{spelled} comes before the first FROM; only ARG may precede FROM",
            )
    if not stages:
        raise InputError(
            f"{path} has no FROM instruction; a Dockerfile must start a build stage with FROM"
        )
    return Dockerfile(path, text, escape, instructions, stages)


def _stage(path: str, instr: Instruction, index: int) -> Stage:
    words = instr.operands()
    if not words:
        raise _fail(path, instr.start_line, "FROM names no image; write FROM <image>[:tag]")
    alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    return Stage(index, instr, words[0], alias)


def split_image(image: str) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` of an image reference ("" when absent)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest
