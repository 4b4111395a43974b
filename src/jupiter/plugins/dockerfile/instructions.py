"""Per-instruction Dockerfile rules beyond the user and ADD fixes.

========================  ============  ======================================
rule                      Checkov       fix
========================  ============  ======================================
DOCKER-MAINTAINER         CKV_DOCKER_6  ``MAINTAINER x`` -> ``LABEL maintainer="x"``
DOCKER-APT                CKV_DOCKER_9  ``apt <cmd>`` in RUN -> ``apt-get <cmd>``
                                        (install, update, upgrade, remove, purge,
                                        autoremove, clean; others need a person)
DOCKER-WORKDIR-RELATIVE   CKV_DOCKER_10 relative WORKDIR -> the absolute path
                                        Docker resolves it to, when an earlier
                                        WORKDIR of the stage (or its base stage)
                                        fixes the base; else a person decides
DOCKER-EXPOSE-SSH         CKV_DOCKER_1  needs a person (why the image runs sshd)
DOCKER-UPDATE-ALONE       CKV_DOCKER_5  needs a person (join update and install)
DOCKER-STAGE-ALIAS        CKV_DOCKER_11 needs a person (rename a stage alias)
========================  ============  ======================================

Each rule returns the instructions it fires on; each fixer rewrites the
lines of one instruction in place and returns ``None``, or a sentence saying
why a person must do it. The rules read the catalog's Checkov mapping
(``catalog/dockerfile.yaml``) through :mod:`jupiter.plugins.dockerfile.detect`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from jupiter.models import Severity
from jupiter.plugins.dockerfile.parse import Dockerfile, Instruction, Stage

MAINTAINER = "DOCKER-MAINTAINER"
APT = "DOCKER-APT"
WORKDIR = "DOCKER-WORKDIR-RELATIVE"
EXPOSE_SSH = "DOCKER-EXPOSE-SSH"
UPDATE_ALONE = "DOCKER-UPDATE-ALONE"
STAGE_ALIAS = "DOCKER-STAGE-ALIAS"

TITLES: dict[str, tuple[str, Severity]] = {
    MAINTAINER: ("MAINTAINER is deprecated (use a maintainer LABEL)", Severity.LOW),
    APT: ("RUN uses apt, whose CLI is not stable for scripts", Severity.LOW),
    WORKDIR: ("WORKDIR is a relative path", Severity.LOW),
    EXPOSE_SSH: ("The image exposes SSH (port 22)", Severity.MEDIUM),
    UPDATE_ALONE: ("A package index update runs in its own layer", Severity.LOW),
    STAGE_ALIAS: ("Two build stages share an alias", Severity.LOW),
}

#: apt subcommands apt-get runs the same way.
APT_GET_SAME = frozenset(
    {"install", "update", "upgrade", "remove", "purge", "autoremove", "clean", "dist-upgrade"}
)
# apt as a command word (not apt-get, not a path such as /var/lib/apt/lists)
_APT = re.compile(r"(?<![\w/.$-])apt(?P<gap>\s+)(?:-\S+\s+)*(?P<cmd>[a-z-]+)")
_UPDATE = re.compile(r"\b(apt-get|apt|apk|yum|dnf|zypper)\s+(-\S+\s+)*update\b")
_INSTALL = ("install", "add ")


def _stage_of(df: Dockerfile, instr: Instruction) -> Stage | None:
    for stage in df.stages:
        if instr in stage.instructions or stage.source is instr:
            return stage
    return None


def find(df: Dockerfile, rule: str) -> list[Instruction]:
    """The instructions ``rule`` fires on."""
    if rule == MAINTAINER:
        return [i for i in df.instructions if i.keyword == "MAINTAINER"]
    if rule == APT:
        return [i for i in df.instructions if i.keyword == "RUN" and _APT.search(i.args)]
    if rule == WORKDIR:
        return [
            i
            for i in df.instructions
            if i.keyword == "WORKDIR" and i.operands() and not _absolute(i.operands()[0])
        ]
    if rule == EXPOSE_SSH:
        return [
            i
            for i in df.instructions
            if i.keyword == "EXPOSE" and {"22", "22/tcp"} & set(i.operands())
        ]
    if rule == UPDATE_ALONE:
        return [
            i
            for i in df.instructions
            if i.keyword == "RUN"
            and _UPDATE.search(i.args)
            and not any(word in i.args for word in _INSTALL)
        ]
    if rule == STAGE_ALIAS:
        seen: dict[str, Stage] = {}
        out = []
        for stage in df.stages:
            if stage.alias is None:
                continue
            key = stage.alias.lower()
            if key in seen:
                out.append(stage.source)
            seen[key] = stage
        return out
    raise KeyError(rule)


def _absolute(path: str) -> bool:
    # Checkov accepts /..., a Windows drive, and a variable ($HOME, ${DIR}).
    return bool(re.match(r"^(/|[A-Za-z]:[\\/]|\$)", path.strip("\"'")))


Fixer = Callable[[Dockerfile, list[str], Instruction], "str | None"]


def _fix_maintainer(df: Dockerfile, lines: list[str], instr: Instruction) -> str | None:
    if instr.start_line != instr.end_line:
        return f"line {instr.start_line}: MAINTAINER spans lines; write a maintainer LABEL"
    line = lines[instr.start_line - 1]
    at = line.index(instr.spelled)
    who = instr.args.strip().replace("\\", "\\\\").replace('"', '\\"')
    label = "label" if instr.spelled.islower() else "LABEL"
    end = "\n" if line.endswith("\n") else ""
    lines[instr.start_line - 1] = f'{line[:at]}{label} maintainer="{who}"{end}'
    return None


def _fix_apt(df: Dockerfile, lines: list[str], instr: Instruction) -> str | None:
    block = "".join(lines[instr.start_line - 1 : instr.end_line])
    others = sorted({m["cmd"] for m in _APT.finditer(block)} - APT_GET_SAME)
    if others:
        return (
            f"line {instr.start_line}: apt {', '.join(others)} has no apt-get twin; rewrite the "
            "step with apt-get or apt-cache by hand"
        )

    def swap(m: re.Match[str]) -> str:
        return "apt-get" + m.group(0)[3:]

    new = _APT.sub(swap, block)
    lines[instr.start_line - 1 : instr.end_line] = new.splitlines(keepends=True)
    return None


def _fix_workdir(df: Dockerfile, lines: list[str], instr: Instruction) -> str | None:
    stage = _stage_of(df, instr)
    base = None
    if stage is not None:
        for s in df.base_chain(stage):
            earlier = [
                i
                for i in s.instructions
                if i.keyword == "WORKDIR" and (s is not stage or i.start_line < instr.start_line)
            ]
            if earlier:
                base = earlier[-1].operands()[0] if earlier[-1].operands() else None
                break
    path = instr.operands()[0]
    if base is None or "$" in base or "$" in path or not base.startswith("/"):
        return (
            f"line {instr.start_line}: WORKDIR {path} is relative to the base image's working "
            "directory, which this file does not show; write the absolute path"
        )
    if instr.start_line != instr.end_line:
        return f"line {instr.start_line}: WORKDIR spans lines; write the absolute path"
    resolved = posixpath.normpath(posixpath.join(base, path))
    line = lines[instr.start_line - 1]
    at = line.index(path, line.index(instr.spelled) + len(instr.spelled))
    lines[instr.start_line - 1] = line[:at] + resolved + line[at + len(path) :]
    return None


def _manual(why: str) -> Fixer:
    def fix(df: Dockerfile, lines: list[str], instr: Instruction) -> str | None:
        return f"line {instr.start_line}: {why}"

    return fix


FIXERS: dict[str, Fixer] = {
    MAINTAINER: _fix_maintainer,
    APT: _fix_apt,
    WORKDIR: _fix_workdir,
    EXPOSE_SSH: _manual(
        "the image exposes SSH; decide why it runs sshd (use `docker exec`/`kubectl exec` "
        "instead) and remove port 22 with the daemon"
    ),
    UPDATE_ALONE: _manual(
        "the package index update is cached in its own layer and goes stale; join it with "
        "the install in one RUN (`apt-get update && apt-get install -y ...`)"
    ),
    STAGE_ALIAS: _manual(
        "two stages share this alias, so COPY --from picks one silently; rename one and "
        "the references meant for it"
    ),
}
