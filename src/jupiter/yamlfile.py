"""Reading the YAML files users hand to Jupiter (assets, script manifests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupiter.errors import InputError
from jupiter.limits import MAX_NESTING, MAX_YAML_BYTES, MAX_YAML_VALUES, quote


def read_yaml(path: Path, label: str, then: str) -> Any:
    """The parsed document, or one InputError sentence naming ``label``
    (e.g. ``"script manifest "``, may be empty), the file and the line, ending
    with what to do ``then`` (e.g. ``"import again"``).

    Files over ``MAX_YAML_BYTES``, nesting deeper than ``MAX_NESTING`` or
    expanding (aliases repeated) to more than ``MAX_YAML_VALUES`` values are
    refused before they are built into objects (the builder recurses once per
    level, and whoever walks the result pays for every repetition)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise InputError(
                f"{label}{path} is {size} bytes, over Jupiter's limit of {MAX_YAML_BYTES} bytes "
                f"for a YAML file; split it and {then}"
            )
        text = path.read_text(encoding="utf-8")
        check_shape(YAML(typ="safe"), text, f"{label}{path}", then)
        return YAML(typ="safe").load(text)
    except (YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise InputError(
            f"{label}{path}{where} is not valid YAML ({quote(str(problem)).strip(chr(39))}); "
            f"fix the file and {then}"
        ) from None
    except OSError as exc:
        raise InputError(
            f"{label}{path} cannot be read ({exc.strerror or exc}); check the path and {then}"
        ) from None


def check_shape(yaml: Any, text: str, what: str, then: str) -> None:
    """Raise InputError naming ``what`` when the YAML ``text`` nests deeper
    than ``MAX_NESTING`` or expands to more than ``MAX_YAML_VALUES`` values.

    Walks the parser's events (no recursion, no objects built), so any YAML
    reader can call it before loading."""
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        ScalarEvent,
    )

    sizes: dict[str, int] = {}  # expanded size of each anchored node
    open_: list[list[Any]] = []  # [expanded size so far, anchor] per open collection
    total = 0
    for event in yaml.parse(text):
        if isinstance(event, CollectionStartEvent):
            if len(open_) >= MAX_NESTING:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise InputError(
                    f"{what} nests lists or mappings deeper than {MAX_NESTING} levels "
                    f"(at line {line}), Jupiter's limit; fix the file and {then}"
                )
            open_.append([1, event.anchor])
            added = 1
        elif isinstance(event, CollectionEndEvent):
            size, anchor = open_.pop()
            if anchor:
                sizes[anchor] = size
            if open_:
                open_[-1][0] += size
            continue
        elif isinstance(event, ScalarEvent):
            added = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            added = sizes.get(event.anchor, 1)
        else:
            continue
        if open_ and not isinstance(event, CollectionStartEvent):
            open_[-1][0] += added
        total += added
        if total > MAX_YAML_VALUES:
            raise InputError(
                f"{what} expands to more than {MAX_YAML_VALUES} values once its aliases "
                f"(*name) are repeated, Jupiter's limit; write the values out and {then}"
            )
