"""Counts the reliability suite reports: trials run, faults injected and
defects found, printed at the end of the session (``-s`` not needed: the
summary goes through pytest's terminal reporter, see conftest.py)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()


def count(what: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``what`` (``trials``, ``faults``, ...)."""
    COUNTS[what] += n
