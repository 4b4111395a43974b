"""Any wrong-typed value anywhere in a report gives an InputError, never a traceback."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from jupiter.errors import InputError
from jupiter.ingest import parse_report

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scanners"
REPLACEMENTS: list[Any] = ["x", 7, [1], {"k": None}, None]


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _swap(doc: Any, path: tuple, value: Any) -> Any:
    """Put ``value`` at ``path`` and return what was there."""
    for step in path[:-1]:
        doc = doc[step]
    old = doc[path[-1]]
    doc[path[-1]] = value
    return old


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("bandit.json", "bandit"),
        ("bandit.sarif", "sarif"),
        ("codeql.sarif", "sarif"),
        ("trivy.sarif", "sarif"),
        ("checkov.json", "checkov"),
        ("trivy.json", "trivy"),
        ("pip-audit.json", "pip-audit"),
        ("osv-scanner.json", "osv"),
        ("seed-list.json", "seed"),
    ],
)
def test_wrong_types_anywhere_raise_input_error_only(tmp_path: Path, name: str, fmt: str) -> None:
    doc = json.loads((FIXTURES / name).read_text())
    paths = list(_paths(doc))
    rng = random.Random(name)  # deterministic sample per fixture
    sample = paths if len(paths) <= 80 else rng.sample(paths, 80)
    target = tmp_path / name
    failures = []
    for path in sample:
        for value in REPLACEMENTS:
            old = _swap(doc, path, value)
            target.write_bytes(orjson.dumps(doc))
            _swap(doc, path, old)
            try:
                list(parse_report(target, fmt))
            except InputError as exc:
                assert str(target) in str(exc)
            except Exception as exc:  # noqa: BLE001 - the point is to catch any other type
                failures.append(f"{path} = {value!r}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:20])
