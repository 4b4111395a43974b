"""Reading workflow definitions: the built-ins shipped in
``jupiter/workflows/builtin/*.yaml`` and a team's own in
``JUPITER_HOME/workflows/*.yaml`` (a file whose ``name`` equals a built-in's
replaces it).

A file that does not fit :class:`~jupiter.workflows.definitions.Workflow`
fails with one sentence that starts at the offending line:
``workflows/ssh.yaml:14: stage 'deploy', field 'strategy.batch': ...``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jupiter.errors import InputError, NotFoundError
from jupiter.limits import MAX_YAML_BYTES, quote
from jupiter.workflows.definitions import STAGE_KINDS, Workflow

BUILTIN_PACKAGE = "jupiter.workflows.builtin"
FALLBACK = "default"
_THEN = "run `jupiter workflows validate FILE` again"


@dataclass(frozen=True)
class Source:
    """Where a loaded workflow came from: ``builtin`` or a file under the workspace."""

    origin: str  # "builtin" | "workspace"
    path: Path


def load_workflow_file(path: Path) -> Workflow:
    """The workflow in ``path``, or an InputError ``file:line: ...: what is wrong``."""
    data, text = _read(path)
    return _validate(data, text, str(path))


def workflow_sources(home: Path | None) -> dict[str, tuple[Workflow, Source]]:
    """Every workflow by name with where it came from: built-ins, then the
    files in ``home/workflows`` replacing built-ins of the same name.
    ``home=None`` gives the built-ins only."""
    found: dict[str, tuple[Workflow, Source]] = dict(_builtins())
    seen: dict[str, Path] = {}
    for path in _home_files(home):
        wf = load_workflow_file(path)
        if wf.name in seen:
            raise InputError(
                f"workflows {seen[wf.name]} and {path} both define workflow {wf.name!r}; "
                "rename or remove one of them"
            )
        seen[wf.name] = path
        found[wf.name] = (wf, Source("workspace", path))
    return dict(sorted(found.items()))


def available_workflows(home: Path | None) -> dict[str, Workflow]:
    """Every workflow by name (see :func:`workflow_sources`)."""
    return {name: wf for name, (wf, _) in workflow_sources(home).items()}


def workflow_named(name: str, home: Path | None) -> Workflow:
    """The workflow called ``name``; NotFoundError lists the names there are."""
    known = available_workflows(home)
    if name not in known:
        raise NotFoundError(
            f"there is no workflow named {quote(name)}; the workflows are "
            f"{', '.join(known)} (see `jupiter workflows list`)"
        )
    return known[name]


def workflow_for_category(category: str, home: Path | None) -> Workflow:
    """The workflow a finding of ``category`` follows.

    Among the workflows whose ``categories`` patterns match: one naming the
    category exactly beats a pattern (``iac.terraform`` beats ``iac.*``); then
    the workspace's own beat the built-ins; then the longer pattern; then the
    name. No match: the built-in ``default`` (or a workspace file replacing it)."""
    return choose_workflow(category, workflow_sources(home))


def choose_workflow(category: str, sources: dict[str, tuple[Workflow, Source]]) -> Workflow:
    """:func:`workflow_for_category` over already loaded ``sources`` (to pick
    for many findings without reading the files again)."""
    best: tuple[tuple[int, int, int, str], Workflow] | None = None
    for name, (wf, source) in sources.items():
        for pattern in wf.categories:
            if not fnmatch.fnmatchcase(category, pattern):
                continue
            rank = (0 if pattern == category else 1, 0 if source.origin == "workspace" else 1)
            key = (*rank, -len(pattern), name)
            if best is None or key < best[0]:
                best = (key, wf)
    if best is not None:
        return best[1]
    return sources[FALLBACK][0]


# --- reading -------------------------------------------------------------


def _home_files(home: Path | None) -> list[Path]:
    if home is None:
        return []
    folder = home / "workflows"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


@cache
def _builtins() -> tuple[tuple[str, tuple[Workflow, Source]], ...]:
    out: list[tuple[str, tuple[Workflow, Source]]] = []
    root = files(BUILTIN_PACKAGE)
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        text = entry.read_text(encoding="utf-8")
        label = f"built-in workflow {entry.name}"
        wf = _validate(_parse(text, label), text, label)
        out.append((wf.name, (wf, Source("builtin", Path(str(entry))))))
    return tuple(out)


def _read(path: Path) -> tuple[Any, str]:
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise InputError(
                f"workflow {path} is {size} bytes, over Jupiter's limit of {MAX_YAML_BYTES} "
                "bytes for a YAML file; shorten it and " + _THEN
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"workflow {path} is not UTF-8 text; save it as UTF-8 and {_THEN}"
        ) from None
    except OSError as exc:
        raise InputError(
            f"workflow {path} cannot be read ({exc.strerror or exc}); check the path and {_THEN}"
        ) from None
    return _parse(text, str(path)), text


def _parse(text: str, where: str) -> Any:
    """The round-trip document (mappings and lists remember their lines)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from jupiter.yamlfile import check_shape

    try:
        check_shape(YAML(typ="safe"), text, f"workflow {where}", _THEN)
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc).strip()
        raise InputError(f"{where}{line}: not valid YAML ({problem}); fix it and {_THEN}") from None


def _plain(node: Any) -> Any:
    """ruamel's round-trip types → plain dicts, lists, str, int, float, bool."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _validate(data: Any, text: str, where: str) -> Workflow:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise InputError(
            f"{where}:1: a workflow is a mapping with name and stages, but this file is {kind}; "
            f"fix it and {_THEN}"
        )
    try:
        wf = Workflow.model_validate(_plain(data))
    except ValidationError as exc:
        raise InputError(_describe(exc.errors()[0], data, where)) from None
    _check_order(wf, data, where)
    return wf


# Stage kinds that change production targets, and what must precede them.
_CHANGES = ("mitigate", "deploy")
_BEFORE_CHANGES = {
    "snapshot": "the rollback point is taken before any target changes",
    "test": "the plan is tested in staging before production",
    "approval": "production changes only after approval",
}
_AFTER_A_CHANGE = {
    "verify": "it re-detects on the targets a deploy changed",
    "health": "it judges the targets a deploy changed against their baseline",
}


def _check_order(wf: Workflow, data: Any, where: str) -> None:
    """Stage order that would make a workflow unsafe or meaningless."""
    first_change = next((i for i, s in enumerate(wf.stages) if s.kind in _CHANGES), None)
    deploy_at = next(i for i, s in enumerate(wf.stages) if s.kind == "deploy")
    for i, stage in enumerate(wf.stages):
        line = _locate(data, ("stages", i))[0]
        problem = None
        if stage.kind in _BEFORE_CHANGES and first_change is not None and i > first_change:
            why = _BEFORE_CHANGES[stage.kind]
            problem = f"must come before the first mitigate or deploy stage: {why}"
        elif stage.kind == "mitigate" and i > deploy_at:
            problem = "must come before the deploy stage: a mitigation goes out before the full fix"
        elif stage.kind in _AFTER_A_CHANGE and (first_change is None or i < first_change):
            problem = f"must come after a mitigate or deploy stage: {_AFTER_A_CHANGE[stage.kind]}"
        if problem:
            raise InputError(f"{where}:{line}: stage {quote(stage.label)} {problem}; move it")


# --- error sentences -----------------------------------------------------


def _describe(err: Any, data: Any, where: str) -> str:
    loc: tuple[Any, ...] = tuple(err["loc"])
    line, path = _locate(data, loc, missing=err["type"] == "missing")
    prefix = f"{where}:{line}: "
    msg = str(err["msg"]).removeprefix("Value error, ")
    kind = err["type"]
    if loc[:1] == ("stages",) and len(loc) >= 2 and isinstance(loc[1], int):
        stage = _stage_label(data, loc[1])
        rest = [p for p in path[2:]]
        if kind == "union_tag_invalid" and not rest:
            given = (err.get("ctx") or {}).get("tag", "?")
            return (
                f"{prefix}stage {stage}: unknown stage kind {quote(str(given))}; "
                f"the kinds are {', '.join(STAGE_KINDS)}"
            )
        if kind == "union_tag_not_found" and not rest:
            return f"{prefix}stage {stage}: it has no 'kind'; give one of {', '.join(STAGE_KINDS)}"
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            msg = _tag_message(err, rest)
        what = f"field {quote('.'.join(rest))}: " if rest else ""
        return f"{prefix}stage {stage}, {what}{_say(kind, msg, rest)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        msg = _tag_message(err, path)
    if path:
        return f"{prefix}field {quote('.'.join(path))}: {_say(kind, msg, path)}"
    if not loc and isinstance(data, dict) and "stages" in data:
        # The workflow's own checks are about its stages.
        prefix = f"{where}:{_lc(data, 'key', 'stages') or 1}: "
    return f"{prefix}{msg}"


_STRATEGY_FIELDS = ("type", "batch", "max_fail", "pause", "percent", "bake")


def _say(kind: str, msg: str, path: list[str]) -> str:
    if kind == "extra_forbidden":
        if len(path) == 1 and path[0] in _STRATEGY_FIELDS:
            return "not a field of the stage itself; it belongs under 'strategy:'"
        return "not a field here; check its spelling and indentation"
    if kind == "missing":
        return "required but missing; add it"
    return msg


def _tag_message(err: Any, path: list[str]) -> str:
    ctx = err.get("ctx") or {}
    field = str(ctx.get("discriminator", "'type'")).strip("'")
    if field == "type":
        choices = "rolling, canary, blue-green"
    elif "probes" in path:
        choices = "http, command, metric"
    else:
        choices = ", ".join(STAGE_KINDS)
    if err["type"] == "union_tag_not_found":
        return f"it has no {field!r}; give one of {choices}"
    return f"unknown {field} {quote(str(ctx.get('tag', '?')))}; the choices are {choices}"


def _stage_label(data: Any, index: int) -> str:
    stages = data.get("stages") if isinstance(data, dict) else None
    if isinstance(stages, list) and 0 <= index < len(stages) and isinstance(stages[index], dict):
        st = stages[index]
        label = st.get("name") or st.get("kind")
        if isinstance(label, str) and label:
            return quote(label)
    return f"#{index + 1}"


def _locate(data: Any, loc: Iterable[Any], *, missing: bool = False) -> tuple[int, list[str]]:
    """The line (1-based) of the deepest node of ``loc`` present in ``data``
    and the readable path to it. Parts of ``loc`` that are not in the
    document (a union's tag, such as ``rolling`` in
    ``stages.2.deploy.strategy.rolling.batch``) are skipped."""
    line = 1
    node = data
    path: list[str] = []
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            pos = _lc(node, "key", part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            pos = _lc(node, "item", part)
            node = node[part]
        elif missing and i == len(parts) - 1 and isinstance(node, dict):
            # A missing field: the line of the mapping that lacks it.
            path.append(str(part))
            line = _first_line(node) or line
            break
        else:
            continue
        path.append(str(part))
        if pos:
            line = pos
    return line, path


def _lc(node: Any, how: str, key: Any) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        pos = lc.key(key) if how == "key" else lc.item(key)
    except (KeyError, IndexError, TypeError):
        return None
    return int(pos[0]) + 1 if pos else None


def _first_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return int(lc.line) + 1 if lc is not None and lc.line is not None else None
