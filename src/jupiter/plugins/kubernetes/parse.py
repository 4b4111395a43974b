"""Multi-document YAML files, edited one document at a time.

A file is split into documents at its ``---`` lines *before* parsing, and
each document is parsed with ruamel.yaml's round-trip loader. A document
that an edit does not touch is written back as its original text, so
separators, document-start comments and every untouched document survive
byte for byte; an edited document is dumped with the indentation detected
in its own text (mapping indent, sequence indent, dash offset), keeping
comments, key order and quotes.

Duplicate keys, tabs and other syntax errors raise :class:`InputError`
naming the file and line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Container
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.tokens import CommentToken

from jupiter.errors import InputError

_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")
_KEY_ONLY = re.compile(
    r"^(?P<lead>\s*(?:-\s+)*)(?P<key>[^\s#-][^#]*?|\"[^\"]*\"|'[^']*'):\s*(?:#.*)?$"
)


@dataclass(frozen=True)
class Indent:
    """ruamel.yaml indentation settings (see ``YAML.indent``)."""

    mapping: int = 2
    sequence: int = 2
    offset: int = 0


@dataclass
class Document:
    """One ``---``-separated document of a file.

    ``first_line`` is the 1-based file line of the document's first line
    (its ``---`` line when it has one); ``data`` is the round-trip parsed
    content, ``None`` for an empty (comment-only) document.
    """

    text: str
    first_line: int
    header: str
    data: Any
    indent: Indent
    index: int = 0
    changed: bool = field(default=False)

    def line_of(self, node: Any) -> int | None:
        """File line (1-based) where a parsed mapping or sequence starts."""
        lc = getattr(node, "lc", None)
        if lc is None or lc.line is None:
            return None
        return self.first_line + (1 if self.header else 0) + int(lc.line)

    def last_line(self) -> int:
        return self.first_line + self.text.count("\n") - (1 if self.text.endswith("\n") else 0)


def _yaml(indent: Indent | None = None) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    yaml.width = 4096  # never re-wrap long lines
    if indent is not None:
        yaml.indent(mapping=indent.mapping, sequence=indent.sequence, offset=indent.offset)
    return yaml


def split(text: str) -> list[tuple[int, str]]:
    """``(first_line, text)`` of each document chunk; a chunk starts at its ``---``."""
    chunks: list[tuple[int, str]] = []
    start, buf = 1, list[str]()
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _SEPARATOR.match(line.rstrip("\r\n")) and buf:
            chunks.append((start, "".join(buf)))
            start, buf = number, []
        buf.append(line)
    if buf or not chunks:
        chunks.append((start, "".join(buf)))
    return chunks


def detect_indent(text: str) -> Indent:
    """The indentation a document uses, from its first nested block of each kind."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = sequence = offset = None
    for i, line in enumerate(lines[:-1]):
        m = _KEY_ONLY.match(line)
        if m is None:
            continue
        key_col = len(m.group("lead"))
        nxt = lines[i + 1]
        col = len(nxt) - len(nxt.lstrip(" "))
        if col < key_col or (col == key_col and not nxt.lstrip().startswith("- ")):
            continue
        if nxt.lstrip().startswith("- "):
            if offset is None:
                rest = nxt.lstrip()[1:]
                offset = col - key_col
                sequence = offset + 1 + len(rest) - len(rest.lstrip(" "))
        elif mapping is None and col > key_col:
            mapping = col - key_col
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    if offset is None:
        offset, sequence = 0, mapping
    assert sequence is not None
    return Indent(mapping=mapping, sequence=max(sequence, offset + 2), offset=offset)


def load(path: str, text: str, fresh: Container[int] = ()) -> list[Document]:
    """Parse every document of ``text`` (the content of ``path``).

    Documents are parsed once per distinct text and shared (a round-trip
    parse is slow, and detect, verify and validate read the same files again
    and again): callers must not change them, except the documents whose
    index is in ``fresh``, which are parsed anew for an edit.
    """
    if "\t" in text:
        for number, line in enumerate(text.splitlines(), start=1):
            # A tab after the indentation can be content (a block scalar);
            # one that starts the line is always wrong.
            if line.startswith("\t"):
                raise InputError(
                    f"{path} line {number}: a tab indents this line; YAML allows only spaces "
                    "for indentation, replace the tab with spaces"
                )
    docs = []
    for index, (first_line, chunk) in enumerate(split(text)):
        header = ""
        body = chunk
        first, _, rest = chunk.partition("\n")
        if _SEPARATOR.match(first.rstrip("\r")):
            header, body = first + "\n", rest
        try:
            data = _yaml().load(body) if index in fresh else _shared(body)
        except DuplicateKeyError as exc:
            raise InputError(
                _where(path, exc, first_line, header)
                + (f"key {_duplicate_key(exc)}appears twice in one mapping; keep one of them")
            ) from None
        except MarkedYAMLError as exc:
            problem = exc.problem or exc.context or "invalid YAML"
            raise InputError(
                _where(path, exc, first_line, header) + (f"{problem}; fix the YAML syntax")
            ) from None
        except YAMLError as exc:
            raise InputError(f"{path}: cannot parse YAML ({exc}); fix the syntax") from None
        docs.append(Document(chunk, first_line, header, data, detect_indent(body), index))
    return docs


@lru_cache(maxsize=256)
def _shared(body: str) -> Any:
    return _yaml().load(body)


def _where(path: str, exc: MarkedYAMLError, first_line: int, header: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return f"{path}: "
    return f"{path} line {first_line + (1 if header else 0) + mark.line}: "


def _duplicate_key(exc: DuplicateKeyError) -> str:
    match = re.search(r'found duplicate key "([^"]*)"', str(exc))
    return f"{match.group(1)!r} " if match else ""


def dump(docs: list[Document]) -> str:
    """The file text: original text for unchanged documents, re-dumped for changed ones."""
    out = []
    for doc in docs:
        if not doc.changed:
            out.append(doc.text)
            continue
        stream = io.StringIO()
        _yaml(doc.indent).dump(doc.data, stream)
        body = stream.getvalue()
        if "\r\n" in doc.text:
            body = body.replace("\n", "\r\n")
        if doc.text.endswith("\n") is False:
            body = body.rstrip("\n")
        out.append(doc.header + body)
    return "".join(out)


def new_map(pairs: dict[str, Any] | None = None) -> CommentedMap:
    """A round-trip mapping (keeps insertion order when dumped)."""
    node = CommentedMap()
    for key, value in (pairs or {}).items():
        node[key] = value
    return node


def set_key(mapping: CommentedMap, key: str, value: Any) -> bool:
    """Set ``mapping[key]``; True when that changed anything.

    An existing key keeps its place and its comments. A new key is appended,
    and the full-line comments that followed the old last entry (which
    ruamel attaches to that entry, although they describe what comes next)
    move below the new entry, so they stay in front of the node they describe.
    """
    if key in mapping:
        if mapping[key] == value and type(mapping[key]) is type(value):
            return False
        mapping[key] = value
        return True
    moved = _take_trailing(mapping)
    mapping[key] = value
    if moved:
        _put_trailing(mapping, moved)
    return True


def set_path(node: CommentedMap, keys: list[str], value: Any) -> bool:
    """Set a nested key, creating the missing mappings on the way (built
    whole before they are attached, so moved comments have a place to go)."""
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if not isinstance(child, CommentedMap):
            nested = value
            for inner in reversed(keys[i + 1 :]):
                nested = new_map({inner: nested})
            return set_key(node, key, nested)
        node = child
    return set_key(node, keys[-1], value)


def new_seq(items: list[Any]) -> CommentedSeq:
    return CommentedSeq(items)


def _last_slot(node: Any) -> tuple[Any, Any, int] | None:
    """Where ruamel keeps the comment that follows ``node``'s last line."""
    if isinstance(node, CommentedMap) and node and not node.fa.flow_style():
        key = list(node)[-1]
        return _last_slot(node[key]) or (node, key, 2)
    if isinstance(node, CommentedSeq) and node and not node.fa.flow_style():
        return _last_slot(node[-1]) or (node, len(node) - 1, 0)
    return None


def _take_trailing(node: Any) -> str:
    """Detach the full-line comments after ``node``'s last line; keep an inline one."""
    slot = _last_slot(node)
    if slot is None:
        return ""
    owner, key, index = slot
    entry = owner.ca.items.get(key)
    token = entry[index] if entry and len(entry) > index else None
    if not isinstance(token, CommentToken) or "\n" not in token.value:
        return ""
    inline, _, rest = token.value.partition("\n")
    if not rest:
        return ""
    if inline.strip():
        token.value = inline + "\n"
    else:
        entry[index] = None
    return rest


def _put_trailing(node: Any, text: str) -> None:
    slot = _last_slot(node)
    if slot is None:
        return
    owner, key, index = slot
    entry = owner.ca.items.setdefault(key, [None, None, None, None])
    token = entry[index]
    if isinstance(token, CommentToken):
        token.value = token.value + text
    else:
        entry[index] = CommentToken("\n" + text, CommentMark(0), None)
