"""Streaming SARIF for reports too large to hold in memory.

:mod:`jupiter.ingest.sarif` parses a whole report with orjson (fastest, but
peak memory is about five times the file). Above ``STREAM_BYTES`` (default
256 MiB, ``JUPITER_STREAM_BYTES`` overrides it) a report is read with ijson's
C backend instead, in passes over the file, so memory stays bounded by one
result plus the rule tables:

1. each run's ``tool`` (its rule tables) and ``originalUriBaseIds``;
2. the results, one at a time, turned into records by the same code as the
   in-memory parser.

A result must be tied to its run's rule table. With a single run (what
scanners write) that is free; a report with several runs is parsed in
memory instead, since ijson cannot say which run a streamed result is from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import ijson

from jupiter.errors import InputError
from jupiter.ingest.common import ProgressCallback
from jupiter.models import FindingRecord

STREAM_BYTES = 256 * 2**20


def threshold() -> int:
    raw = os.environ.get("JUPITER_STREAM_BYTES")
    return int(raw) if raw and raw.isdecimal() else STREAM_BYTES


class _Counting:
    """A binary file that reports how far it has been read."""

    def __init__(self, handle: IO[bytes], on_progress: ProgressCallback | None) -> None:
        self._handle, self._on_progress, self.done = handle, on_progress, 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.done += len(data)
        if self._on_progress is not None and data:
            self._on_progress(self.done)
        return data


@contextmanager
def _items(path: Path, prefix: str, on_progress: ProgressCallback | None) -> Iterator[Any]:
    with path.open("rb") as handle:
        counting = _Counting(handle, on_progress)
        try:
            yield ijson.items(counting, prefix, use_float=True)
        except ijson.JSONError as exc:
            truncated = "incomplete" in str(exc).lower()
            raise InputError(
                f"{path}: invalid JSON near byte {counting.done}: {exc}"
                + (" (the file looks truncated)" if truncated else "")
                + "; regenerate the report or repair the file."
            ) from None


def runs_meta(path: Path) -> list[dict[str, Any]]:
    """Each run without its results: ``tool`` and ``originalUriBaseIds``."""
    with _items(path, "runs.item.tool", None) as tools:
        metas: list[dict[str, Any]] = [{"tool": tool} for tool in tools]
    with _items(path, "runs.item.originalUriBaseIds", None) as bases:
        found = list(bases)
    if len(found) == len(metas):  # only then can they be matched to their runs
        for meta, base in zip(metas, found, strict=True):
            meta["originalUriBaseIds"] = base
    return metas


def results(path: Path, on_progress: ProgressCallback | None) -> Iterator[Any]:
    with _items(path, "runs.item.results.item", on_progress) as items:
        yield from items


def parse(path: Path, on_progress: ProgressCallback | None) -> Iterator[FindingRecord] | None:
    """Records of a single-run report, streamed; ``None`` when the report
    has several runs (the caller parses it in memory)."""
    from jupiter.ingest.sarif import parse_run

    metas = runs_meta(path)
    if len(metas) != 1:
        return None
    return parse_run(path, metas[0], 0, results(path, on_progress))
