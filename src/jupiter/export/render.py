"""Render a :class:`~jupiter.export.model.ScriptModel` with the templates in
``jupiter/templates/scripts/``. Quoting lives in the filters below, never in
the templates: ``shq`` for bash, ``pyrepr`` for Python, ``yamlq`` for YAML
(JSON strings, which YAML reads as double-quoted scalars) and ``comment``
for text shown in comments (control characters made visible)."""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from functools import cache

import jinja2

from jupiter.export.model import ScriptModel, TrackedPath
from jupiter.templating import environment

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _comment(value: object) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def _yamlq(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _short(state: str) -> str:
    return state[:19] + "…" if state.startswith("sha256:") else state


def _wrap64(data: str) -> str:
    return "\n".join(textwrap.wrap(data, 76)) if data else ""


@cache
def _environment(playbook: bool = False) -> jinja2.Environment:
    # Scripts, not HTML: escaping is done per language by the filters. bash
    # uses "{#" (${#array[@]}), so Jinja comments get a spelling it never
    # uses; a playbook is full of Ansible's own "{{ }}", so its template
    # marks Jinja with << >> and <% %> instead.
    syntax = {"comment_start_string": "{##", "comment_end_string": "##}"}
    if playbook:
        syntax = {
            "variable_start_string": "<<",
            "variable_end_string": ">>",
            "block_start_string": "<%",
            "block_end_string": "%>",
            "comment_start_string": "<#",
            "comment_end_string": "#>",
        }
    env = environment(**syntax)
    env.filters.update(
        shq=shlex.quote,
        pyrepr=repr,
        yamlq=_yamlq,
        comment=_comment,
        short=_short,
        wrap64=_wrap64,
        split_lines=str.splitlines,
    )
    return env


def _state_test(state: str, index: int) -> str:
    """An Ansible condition on ``@.results[index].stat`` (``@`` names the
    registered variable) that holds when the file is in ``state``."""
    st = f"@.results[{index}].stat"
    if state.startswith("sha256:"):
        return f"({st}.exists and {st}.checksum == '{state.removeprefix('sha256:')}')"
    if state == "absent":
        return f"(not {st}.exists)"
    if state == "exists":
        return f"{st}.exists"
    return "true"


def _final_test(tracked: TrackedPath) -> str:
    test = _state_test(tracked.after, tracked.index)
    if tracked.after_mode is None:
        return test
    st = f"@.results[{tracked.index}].stat"
    return f"({test} and (not {st}.exists or {st}.mode == '{tracked.after_mode:04o}'))"


def render(template: str, model: ScriptModel, fmt: str, name: str) -> str:
    """The script text for ``model`` from ``scripts/<template>``."""
    values: dict[str, object] = dict(
        id=model.script_id,
        fmt=fmt,
        name=name,
        items=model.items,
        paths=model.paths,
        steps=model.steps,
        services=model.services,
        manual=model.manual,
        has_commands=model.has_commands,
        writes=[s for s in model.steps if s.kind == "write"],
        commands=[s for s in model.steps if s.kind == "command"],
        generates=[s for s in model.steps if s.kind == "generate"],
    )
    if not template.endswith(".yml.j2"):
        return _environment().get_template(f"scripts/{template}").render(**values)
    values["header"] = _environment().get_template("scripts/header.j2").render(**values)
    values["initial"] = [_state_test(p.before, p.index) for p in model.paths]
    values["final"] = [_final_test(p) for p in model.paths]
    decided = [_final_test(p) for p in model.paths if p.decided]
    values["all_final"] = " and ".join(decided) if decided else "true"
    return _environment(True).get_template(f"scripts/{template}").render(**values)
