"""A SARIF consumer for the tests, written from the SARIF 2.1.0 text and not
from Jupiter's code: it applies ``fixes`` to files using the line/column
regions (and checks the character offsets agree)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema

from tests.conftest import FIXTURES

SCHEMA_FILE = FIXTURES / "sarif" / "sarif-schema-2.1.0.json"
_SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def validate(log: dict[str, Any]) -> None:
    """Raise unless ``log`` is valid against the official SARIF 2.1.0 schema."""
    jsonschema.Draft4Validator(_SCHEMA).validate(log)


def _line_starts(text: str) -> list[int]:
    """Offsets where each line starts (CR, LF and CRLF end a line); the text
    after the last terminator is a line too, possibly empty."""
    starts = [0]
    for m in re.finditer(r"\r\n|\r|\n", text):
        starts.append(m.end())
    return starts


def _offset(starts: list[int], text: str, line: int, column: int) -> int:
    assert 1 <= line <= len(starts), f"line {line} outside the file ({len(starts)} lines)"
    start = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    content_end = start + len(text[start:end].rstrip("\r\n"))
    at = start + column - 1
    # A column may point at the line's end (just before its terminator).
    assert start <= at <= max(content_end, start), f"column {column} outside line {line}"
    return at


def apply_change(original: bytes | None, replacements: list[dict[str, Any]]) -> bytes:
    """The file after one artifactChange's replacements (original coordinates)."""
    text = "" if original is None else original.decode("utf-8")
    starts = _line_starts(text)
    spans = []
    for rep in replacements:
        region = rep["deletedRegion"]
        begin = _offset(starts, text, region["startLine"], region.get("startColumn", 1))
        end_line = region.get("endLine", region["startLine"])
        if "endColumn" in region:
            end = _offset(starts, text, end_line, region["endColumn"])
        else:  # the whole end line, without its terminator (SARIF 3.30.6)
            end = _offset(starts, text, end_line, 1) + len(
                text[starts[end_line - 1] :].split("\n", 1)[0].rstrip("\r")
            )
        if "charOffset" in region:
            assert (region["charOffset"], region["charLength"]) == (begin, end - begin), region
        spans.append((begin, end, rep.get("insertedContent", {}).get("text", "")))
    spans.sort()
    for (_, e1, _), (b2, _, _) in itertools.pairwise(spans):
        assert e1 <= b2, "replacements overlap"
    for begin, end, inserted in reversed(spans):
        text = text[:begin] + inserted + text[end:]
    return text.encode("utf-8")


def artifact_path(run: dict[str, Any], location: dict[str, Any]) -> tuple[str, str]:
    """(uriBaseId, relative path) of an artifactLocation."""
    base = location["uriBaseId"]
    assert base in run.get("originalUriBaseIds", {}), f"{base} has no originalUriBaseIds entry"
    return base, unquote(location["uri"])


def apply_log(log: dict[str, Any], roots: dict[str, Path]) -> list[tuple[str, str]]:
    """Apply every fix of every result to the files under ``roots`` (asset id
    → directory); return the (asset, path) pairs written."""
    changes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in log["runs"]:
        for result in run["results"]:
            for fix in result.get("fixes", []):
                for change in fix["artifactChanges"]:
                    key = artifact_path(run, change["artifactLocation"])
                    changes.setdefault(key, []).extend(change["replacements"])
    for (asset, rel), reps in changes.items():
        path = roots[asset] / rel
        original = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(apply_change(original, reps))
    return sorted(changes)
