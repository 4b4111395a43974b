"""Byte-span edits of a composed template: set a value at a property path.

Paths are dotted, relative to a resource's ``Properties``; a segment may
select list elements: ``Rules[0]`` (one element), ``CacheBehaviors[*]``
(every element) or ``Settings[Name=containerInsights]`` (the element whose
``Name`` is ``containerInsights``, appended when missing)::

    BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm

An existing scalar is replaced in place (keeping its quote style); a missing
key is added after the last entry of its mapping, indented like its
siblings (YAML block style), or as a JSON member indented like the others.
A value computed by an intrinsic function (``!If``, ``Fn::If``, ``!Ref``) is
never overwritten: :class:`Unaddressable` says where a person must look.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from jupiter.plugins.cloudformation.template import Template, get, intrinsic, value

_SEGMENT = re.compile(r"(?P<key>[A-Za-z0-9_:@-]+)(?:\[(?P<sel>\*|\d+|[A-Za-z0-9_]+=[^\]]+)\])?")
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./:-]*$")
_AMBIGUOUS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


class Unaddressable(Exception):
    """The path cannot be edited without a person (intrinsic value, odd shape)."""


@dataclass(frozen=True)
class Segment:
    key: str
    sel: str | None


@dataclass(frozen=True)
class Splice:
    start: int
    end: int
    text: str


def parse_path(path: str) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise ValueError(f"bad property path {path!r} at {pos}")
        out.append(Segment(m["key"], m["sel"]))
        pos = m.end()
        if pos < len(path):
            if path[pos] != ".":
                raise ValueError(f"bad property path {path!r} at {pos}")
            pos += 1
    return out


def read(node: Node | None, segs: list[Segment]) -> list[Any]:
    """Every value the path reaches (``[*]`` fans out); a missing key gives
    ``None``; an intrinsic function on the way gives that intrinsic."""
    if not segs:
        return [value(node)]
    if node is None or not isinstance(node, MappingNode):
        return [None] if node is None else [value(node)]
    seg, rest = segs[0], segs[1:]
    child = get(node, seg.key)
    if child is None and seg.sel == "*":
        return []  # no elements, nothing to judge
    if child is None or intrinsic(child):
        return [value(child)]
    if seg.sel is None:
        return read(child, rest)
    if not isinstance(child, SequenceNode):
        return [value(child)]
    if seg.sel == "*":
        return [v for item in child.value if _selected(item, rest) for v in read(item, rest)]
    if seg.sel.isdigit():
        i = int(seg.sel)
        return read(child.value[i], rest) if i < len(child.value) else [None]
    k, want = seg.sel.split("=", 1)
    for item in child.value:
        if isinstance(item, MappingNode) and _scalar_is(get(item, k), want):
            return read(item, rest)
    return [None]


def build(segs: list[Segment], val: Any) -> Any:
    """The data a missing path holds once ``val`` is set at its end."""
    if not segs:
        return val
    seg, inner = segs[0], build(segs[1:], val)
    if seg.sel is None:
        return {seg.key: inner}
    if seg.sel == "*":
        return {}  # no elements: nothing to set
    if seg.sel.isdigit():
        return {seg.key: [inner]}
    k, want = seg.sel.split("=", 1)
    return {seg.key: [{k: want, **(inner if isinstance(inner, dict) else {})}]}


class Editor:
    """Computes the splices that set a value in one template."""

    def __init__(self, template: Template) -> None:
        self.t = template
        self.text = template.text
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self.unit = _indent_unit(self.text, template.format)
        self.splices: list[Splice] = []

    def set(self, node: MappingNode, segs: list[Segment], val: Any) -> None:
        seg, rest = segs[0], segs[1:]
        child = get(node, seg.key)
        if child is None:
            data = build(segs, val)
            if data:
                self._insert(node, data)
            return
        name = intrinsic(child)
        if name is not None:
            raise Unaddressable(
                f"{seg.key} (line {child.start_mark.line + 1}) is computed by {name}: change "
                "the parameter, condition or mapping it reads instead"
            )
        if seg.sel is None:
            if not rest:
                self._set_value(node, seg.key, child, val)
            elif isinstance(child, MappingNode):
                self.set(child, rest, val)
            else:
                raise Unaddressable(
                    f"{seg.key} (line {child.start_mark.line + 1}) is not a mapping"
                )
            return
        if not isinstance(child, SequenceNode):
            raise Unaddressable(f"{seg.key} (line {child.start_mark.line + 1}) is not a list")
        if seg.sel == "*":
            for item in child.value:
                if _selected(item, rest):
                    self._into(item, rest, val, seg.key)
            return
        if seg.sel.isdigit():
            i = int(seg.sel)
            if i < len(child.value):
                self._into(child.value[i], rest, val, seg.key)
            elif i == len(child.value) == 0:
                self._append(child, build(rest, val))
            else:
                raise Unaddressable(f"{seg.key} has no element {i}")
            return
        k, want = seg.sel.split("=", 1)
        for item in child.value:
            if isinstance(item, MappingNode) and _scalar_is(get(item, k), want):
                self._into(item, rest, val, seg.key)
                return
        inner = build(rest, val)
        self._append(child, {k: want, **(inner if isinstance(inner, dict) else {})})

    def _into(self, item: Node, rest: list[Segment], val: Any, key: str) -> None:
        if not rest:
            raise Unaddressable(f"{key}: a path cannot end at a list element")
        if intrinsic(item) or not isinstance(item, MappingNode):
            raise Unaddressable(
                f"an element of {key} (line {item.start_mark.line + 1}) is computed by "
                f"{intrinsic(item) or 'a non-mapping value'}"
            )
        self.set(item, rest, val)

    def _set_value(self, parent: MappingNode, key: str, node: Node, val: Any) -> None:
        if isinstance(val, dict) and isinstance(node, MappingNode):
            for k, v in val.items():
                self.set(node, [Segment(k, None)], v)
            return
        if isinstance(node, ScalarNode) and not isinstance(val, (dict, list)):
            current = value(node)
            if current == val and type(current) is type(val):
                return
            text = self._scalar(val, node.style)
            self.splices.append(Splice(node.start_mark.index, node.end_mark.index, text))
            return
        raise Unaddressable(
            f"{key} (line {node.start_mark.line + 1}) has a shape Jupiter does not rewrite; "
            "set it by hand"
        )

    # -- text -------------------------------------------------------------
    def _scalar(self, val: Any, style: str | None = None) -> str:
        if self.t.format == "json":
            return json.dumps(val)
        if isinstance(val, bool):
            return "true" if val else "false"
        if isinstance(val, (int, float)):
            return str(val)
        s = str(val)
        if style in ("'", '"'):
            return json.dumps(s) if style == '"' else "'" + s.replace("'", "''") + "'"
        if _PLAIN.match(s) and s.lower() not in _AMBIGUOUS:
            return s
        return "'" + s.replace("'", "''") + "'"

    def _line_start(self, line: int) -> int:
        return self._line_starts[line] if line < len(self._line_starts) else len(self.text)

    def _after_line(self, line: int) -> tuple[int, str]:
        """Where a new line goes after ``line`` (0-based), and a newline to
        put first when the file's last line has none."""
        if line + 1 < len(self._line_starts):
            return self._line_starts[line + 1], ""
        return len(self.text), "" if self.text.endswith("\n") else "\n"

    def _insert(self, node: MappingNode, data: dict[str, Any]) -> None:
        if node.flow_style or self.t.format == "json":
            members = [self._flow_key(k) + ": " + self._compact(v) for k, v in data.items()]
            self._flow_add(node, members, data)
            return
        if not node.value:
            raise Unaddressable(f"empty mapping at line {node.start_mark.line + 1}")
        col = node.value[0][0].start_mark.column
        at, pre = self._after_line(_last_line(node))
        self.splices.append(Splice(at, at, pre + self._yaml_map(data, col)))

    def _append(self, seq: SequenceNode, item: Any) -> None:
        if seq.flow_style or self.t.format == "json":
            self._flow_add(seq, [self._compact(item)], item)
            return
        if not seq.value:
            raise Unaddressable(f"empty list at line {seq.start_mark.line + 1}")
        first = seq.value[0]
        dash = self.text.rfind("-", 0, first.start_mark.index)
        col = dash - self.text.rfind("\n", 0, dash) - 1
        at, pre = self._after_line(_last_line(seq))
        self.splices.append(Splice(at, at, pre + self._yaml_item(item, col)))

    def _flow_add(self, node: MappingNode | SequenceNode, members: list[str], data: Any) -> None:
        if not node.value:
            inner = ", ".join(members)
            text = "{" + inner + "}" if isinstance(node, MappingNode) else "[" + inner + "]"
            if self.t.format == "yaml" and not node.flow_style:
                raise Unaddressable(f"empty block at line {node.start_mark.line + 1}")
            self.splices.append(Splice(node.start_mark.index, node.end_mark.index, text))
            return
        last = node.value[-1][1] if isinstance(node, MappingNode) else node.value[-1]
        first = node.value[0][0] if isinstance(node, MappingNode) else node.value[0]
        at = last.end_mark.index
        if first.start_mark.line == node.start_mark.line:  # written on one line
            self.splices.append(Splice(at, at, "".join(", " + m for m in members)))
            return
        line_start = self._line_start(first.start_mark.line)
        indent = self.text[line_start : first.start_mark.index]
        if indent.strip():
            indent = " " * first.start_mark.column
        if isinstance(node, MappingNode):
            members = [self._flow_key(k) + ": " + self._json(v, indent) for k, v in data.items()]
        else:
            members = [self._json(data, indent)]
        self.splices.append(Splice(at, at, "".join(",\n" + indent + m for m in members)))

    def _flow_key(self, key: str) -> str:
        return json.dumps(key) if self.t.format == "json" else self._scalar(key)

    def _compact(self, val: Any) -> str:
        """One-line form of a value inside a flow collection."""
        if self.t.format == "yaml" and not isinstance(val, (dict, list)):
            return self._scalar(val)
        return json.dumps(val, separators=(", ", ": "))

    def _json(self, val: Any, indent: str) -> str:
        if self.t.format == "yaml" and not isinstance(val, (dict, list)):
            return self._scalar(val)
        unit = self.unit if self.t.format == "json" else " " * len(self.unit)
        return json.dumps(val, indent=unit).replace("\n", "\n" + indent)

    def _yaml_map(self, data: dict[str, Any], col: int) -> str:
        out = []
        pad = " " * col
        for k, v in data.items():
            out.append(self._yaml_entry(k, v, pad))
        return "".join(out)

    def _yaml_entry(self, key: str, val: Any, pad: str) -> str:
        head = pad + self._scalar(key) + ":"
        if isinstance(val, dict):
            return head + "\n" + self._yaml_map(val, len(pad) + len(self.unit))
        if isinstance(val, list):
            body = "".join(self._yaml_item(i, len(pad) + len(self.unit)) for i in val)
            return head + "\n" + body
        return head + " " + self._scalar(val) + "\n"

    def _yaml_item(self, item: Any, col: int) -> str:
        pad = " " * col
        if isinstance(item, dict):
            text = self._yaml_map(item, col + 2)
            return pad + "- " + text[col + 2 :]
        return pad + "- " + self._scalar(item) + "\n"

    def result(self) -> str:
        text = self.text
        for sp in sorted(self.splices, key=lambda s: s.start, reverse=True):
            text = text[: sp.start] + sp.text + text[sp.end :]
        return text


def _selected(item: Node, rest: list[Segment]) -> bool:
    """Whether ``[*]`` looks at an element: it must hold the next key (a
    volume without ``EFSVolumeConfiguration`` is not an EFS volume)."""
    if not rest or not isinstance(item, MappingNode) or intrinsic(item):
        return True
    return get(item, rest[0].key) is not None


def _scalar_is(node: Node | None, want: str) -> bool:
    return isinstance(node, ScalarNode) and str(node.value) == want


def _last_line(node: Node) -> int:
    """The 0-based line where a block node's content ends."""
    if isinstance(node, ScalarNode):
        end = node.end_mark
        if node.style in ("|", ">") and end.column == 0:
            return int(end.line) - 1
        return int(end.line)
    if getattr(node, "flow_style", False) or not node.value:
        return int(node.end_mark.line)
    if isinstance(node, MappingNode):
        return _last_line(node.value[-1][1])
    return _last_line(node.value[-1])


def _indent_unit(text: str, fmt: str) -> str:
    """The indentation step the file uses (two spaces if unclear)."""
    widths: Counter[str] = Counter()
    prev = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lead = line[: len(line) - len(line.lstrip())]
        if len(lead) > len(prev) and lead.startswith(prev):
            widths[lead[len(prev) :]] += 1
        prev = lead
    if not widths:
        return "  "
    unit = widths.most_common(1)[0][0]
    return unit if fmt == "json" else " " * max(2, len(unit.replace("\t", " ")))
