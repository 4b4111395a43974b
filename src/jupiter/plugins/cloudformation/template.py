"""CloudFormation templates, read so that they can be edited byte by byte.

A template (YAML or JSON) is *composed* with ruamel.yaml: the node tree
keeps every intrinsic-function tag (``!Ref``, ``!Sub``, ``!GetAtt``, ``!If``
...) as the node's tag and the exact start and end of every node in the
text. Nothing is ever dumped again: :mod:`jupiter.plugins.cloudformation.splice`
edits the text at those spans, so comments, quotes, odd indentation, JSON
indentation and every resource the fix does not touch stay byte-identical.

:func:`value` turns a node into plain Python data for checks; an intrinsic
function (tag or ``Fn::``/``Ref`` mapping) becomes :class:`Intrinsic`, which
no check ever mistakes for a literal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from jupiter.errors import InputError

# The short forms CloudFormation accepts (and ``!Condition`` inside conditions).
INTRINSIC_TAGS = frozenset(
    {
        "!Ref",
        "!Sub",
        "!GetAtt",
        "!If",
        "!Equals",
        "!And",
        "!Or",
        "!Not",
        "!Join",
        "!Select",
        "!Split",
        "!FindInMap",
        "!Base64",
        "!Cidr",
        "!ImportValue",
        "!GetAZs",
        "!Condition",
        "!Transform",
        "!ToJsonString",
        "!Length",
    }
)
_STD = "tag:yaml.org,2002:"
Format = Literal["yaml", "json"]


@dataclass(frozen=True)
class Intrinsic:
    """An intrinsic function: its name (``Ref``, ``Fn::If``) and argument."""

    name: str
    arg: Any

    def __str__(self) -> str:
        return f"{self.name}"


@dataclass(frozen=True)
class Resource:
    """One entry of ``Resources``: its logical id, type and nodes."""

    logical_id: str
    type: str
    node: MappingNode
    key: ScalarNode

    @property
    def line(self) -> int:
        return int(self.key.start_mark.line) + 1

    @property
    def last_line(self) -> int:
        return int(self.node.end_mark.line) + 1

    @property
    def checkov_id(self) -> str:
        """How Checkov names it in a report (``AWS::S3::Bucket.Logs``)."""
        return f"{self.type}.{self.logical_id}"

    def properties(self) -> MappingNode | None:
        node = get(self.node, "Properties")
        return node if isinstance(node, MappingNode) else None


@dataclass(frozen=True)
class Template:
    path: str
    text: str
    format: Format
    root: MappingNode
    resources: tuple[Resource, ...]

    def resource(self, logical_id: str) -> Resource | None:
        return next((r for r in self.resources if r.logical_id == logical_id), None)


_RESOURCES_KEY = re.compile(r"""(^|[{,])\s*["']?Resources["']?\s*:""", re.M)


def looks_like_template(text: str) -> bool:
    """Cheap test before parsing: a ``Resources`` key and an ``AWS::`` type."""
    return "AWS::" in text and bool(_RESOURCES_KEY.search(text))


def parse(path: str, text: str) -> Template:
    """The template at ``path``; :class:`InputError` naming file and line for
    text that does not parse, a tag CloudFormation does not know, or a
    document that is not a CloudFormation template.

    Results are cached by content: a chain of fixes parses each version of a
    file once (the plan that wrote it checked it; the next plan starts from
    it). Templates are never mutated (edits are splices of the text)."""
    return _parse(path, text)


@lru_cache(maxsize=32)
def _parse(path: str, text: str) -> Template:
    fmt: Format = "json" if text.lstrip().startswith("{") else "yaml"
    if fmt == "json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{exc.lineno} is not valid JSON ({exc.msg}); fix the template "
                "(cfn-lint shows the error) and scan again"
            ) from None
    yaml = YAML(typ="rt")
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(
            f"{path}{line} is not valid YAML ({exc.problem or exc}); fix the template and "
            "scan again"
        ) from None
    except YAMLError as exc:
        raise InputError(f"{path} is not valid YAML ({exc}); fix the template") from None
    if not isinstance(root, MappingNode):
        raise InputError(f"{path} is not a CloudFormation template (no top-level mapping)")
    _check_tags(path, root)
    _check_duplicates(path, root)
    resources_node = get(root, "Resources")
    if not isinstance(resources_node, MappingNode):
        raise InputError(f"{path} is not a CloudFormation template (no Resources mapping)")
    resources = []
    for key, node in resources_node.value:
        if not isinstance(node, MappingNode):
            continue
        kind = get(node, "Type")
        if isinstance(kind, ScalarNode) and isinstance(key, ScalarNode):
            resources.append(Resource(str(key.value), str(kind.value), node, key))
    return Template(path, text, fmt, root, tuple(resources))


def _check_tags(path: str, node: Node) -> None:
    tag = node.tag
    tag_s = str(tag.value if hasattr(tag, "value") else tag) if tag is not None else ""
    if tag_s.startswith("!") and tag_s not in INTRINSIC_TAGS:
        raise InputError(
            f"{path}:{node.start_mark.line + 1} uses the tag {tag_s}, which is not a "
            "CloudFormation intrinsic function; Jupiter leaves the template alone (fix the "
            "tag or expand the macro first)"
        )
    if isinstance(node, MappingNode):
        for k, v in node.value:
            _check_tags(path, k)
            _check_tags(path, v)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _check_tags(path, item)


def _check_duplicates(path: str, node: Node) -> None:
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            if isinstance(k, ScalarNode):
                if k.value in seen:
                    raise InputError(
                        f"{path}:{k.start_mark.line + 1} repeats the key {k.value!r}; "
                        "CloudFormation keeps only one of them: fix the template first"
                    )
                seen.add(k.value)
            _check_duplicates(path, v)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _check_duplicates(path, item)


def tag_of(node: Node) -> str:
    tag = node.tag
    return str(tag.value if hasattr(tag, "value") else tag) if tag is not None else ""


def get(node: Node | None, key: str) -> Node | None:
    """The value node of ``key`` in a mapping node (``None`` if absent)."""
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            found: Node = v
            return found
    return None


def intrinsic(node: Node) -> str | None:
    """The intrinsic function a node is (``!If``, ``Fn::If``, ``Ref``), if any."""
    tag = tag_of(node)
    if tag.startswith("!"):
        return tag
    if isinstance(node, MappingNode) and len(node.value) == 1:
        key = node.value[0][0]
        if isinstance(key, ScalarNode) and (key.value == "Ref" or key.value.startswith("Fn::")):
            return str(key.value)
    return None


def value(node: Node | None) -> Any:
    """Plain data for a node; intrinsic functions become :class:`Intrinsic`."""
    if node is None:
        return None
    name = intrinsic(node)
    if name is not None:
        inner = node.value[0][1] if not name.startswith("!") else node
        return Intrinsic(name, _plain(inner) if name.startswith("!") else value(inner))
    return _plain(node)


def _plain(node: Node) -> Any:
    if isinstance(node, MappingNode):
        return {str(k.value): value(v) for k, v in node.value if isinstance(k, ScalarNode)}
    if isinstance(node, SequenceNode):
        return [value(item) for item in node.value]
    assert isinstance(node, ScalarNode)
    tag, raw = tag_of(node), node.value
    if node.style in ("'", '"') or tag.startswith("!"):
        return raw
    if tag == _STD + "bool":
        return raw.lower() in ("true", "yes", "on")
    if tag == _STD + "int":
        try:
            return int(raw, 0)
        except ValueError:
            return raw
    if tag == _STD + "float":
        try:
            return float(raw)
        except ValueError:
            return raw
    if tag == _STD + "null":
        return None
    return raw
