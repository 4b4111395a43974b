"""Maintenance windows: when a deploy may change production.

``Sat 02:00-04:00 Europe/Berlin``, ``Mon-Fri 22:00-06:00 UTC`` (a window
that ends before it starts runs overnight into the next day; the days name
the day it opens), ``Sat,Sun 00:00-24:00 UTC``, ``daily 01:00-05:00
America/New_York``, or ``always``.

A window is wall-clock time in its zone: on the night the clocks go forward
a ``02:00-04:00`` window is open one hour (02:00-03:00 does not exist), on
the night they go back, three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jupiter.errors import InputError
from jupiter.limits import quote

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FORM = (
    "write DAYS HH:MM-HH:MM ZONE, such as 'Sat 02:00-04:00 Europe/Berlin' or "
    "'Mon-Fri 22:00-06:00 UTC', or 'always'"
)
_TEXT = re.compile(
    r"^\s*(?P<days>\S+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+(?P<zone>\S+)\s*$"
)
_DAY_MINUTES = 24 * 60
# Every opening is within a week of any instant; two weeks leave room for a
# weekly window swallowed by a clock change.
_HORIZON_DAYS = 15


@dataclass(frozen=True)
class Window:
    """Days of the week (0 = Monday) and minutes since local midnight;
    ``start > end`` spans midnight. ``days`` empty means always open."""

    days: frozenset[int]
    start: int
    end: int
    zone: str
    text: str

    @classmethod
    def parse(cls, text: str) -> Window:
        """A window from its text; InputError names the form expected."""
        if not isinstance(text, str):
            raise InputError(f"window {quote(text)} is not text; {_FORM}")
        if text.strip().lower() == "always":
            return cls(frozenset(), 0, _DAY_MINUTES, "UTC", "always")
        m = _TEXT.match(text)
        if m is None:
            raise InputError(f"window {quote(text)} is not a maintenance window; {_FORM}")
        days = _days(m.group("days"), text)
        start = _minutes(m.group("start"), text, end=False)
        end = _minutes(m.group("end"), text, end=True)
        if start == end:
            raise InputError(
                f"window {quote(text)} starts and ends at the same time; give a span "
                "such as 00:00-24:00 for whole days, or 'always'"
            )
        zone = m.group("zone")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(
                f"window {quote(text)} names time zone {quote(zone)}, which is not an IANA zone "
                "such as UTC or Europe/Berlin; " + _FORM
            ) from None
        return cls(days, start, end, zone, " ".join(text.split()))

    @property
    def always(self) -> bool:
        return not self.days

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def __str__(self) -> str:
        return self.text

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware) is inside the window."""
        if self.always:
            return True
        local = _aware(now).astimezone(self.tz)
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        weekday = local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or (
            (weekday - 1) % 7 in self.days and minute < self.end
        )

    def next_open(self, now: datetime) -> datetime:
        """``now`` when the window is open, else the first instant after it
        that is (in UTC)."""
        now = _aware(now)
        if self.is_open(now):
            return now
        best: datetime | None = None
        for candidate in self._openings(now):
            if candidate > now and self.is_open(candidate) and (best is None or candidate < best):
                best = candidate
        if best is None:  # pragma: no cover - every window with days opens within a week
            raise InputError(f"window {quote(self.text)} never opens; {_FORM}")
        return best

    def _openings(self, now: datetime) -> list[datetime]:
        """Instants where the window may go from closed to open: each local
        start time (both readings of a repeated hour) and each clock change,
        where wall time jumps (into the window, or back into it)."""
        tz = self.tz
        first = now.astimezone(tz).date() - timedelta(days=1)
        out: list[datetime] = []
        hour, minute = divmod(self.start, 60)
        for n in range(_HORIZON_DAYS):
            day = first + timedelta(days=n)
            if day.weekday() in self.days:
                for fold in (0, 1):
                    wall = datetime.combine(day, time(hour, minute, fold=fold), tzinfo=tz)
                    out.append(wall.astimezone(UTC))
            out.extend(_changes(day, tz))
        return out


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("a window needs a timezone-aware datetime, such as datetime.now(UTC)")
    return now


def _changes(day: date, tz: ZoneInfo) -> list[datetime]:
    """The instants during local ``day`` at which ``tz``'s offset changes."""
    lo = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    out: list[datetime] = []
    while lo < hi and lo.astimezone(tz).utcoffset() != hi.astimezone(tz).utcoffset():
        # Bisect to the second: the first instant with the later offset.
        a, b = lo, hi
        after = b.astimezone(tz).utcoffset()
        while b - a > timedelta(seconds=1):
            mid = a + (b - a) / 2
            mid = mid.replace(microsecond=0)
            if mid.astimezone(tz).utcoffset() == after:
                b = mid
            else:
                a = mid
        out.append(b)
        lo = b  # a day with two changes: look again after this one
    return out


def _days(spec: str, text: str) -> frozenset[int]:
    spec = spec.strip().lower()
    if spec in ("daily", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        lo, dash, hi = part.partition("-")
        first = _day(lo, text)
        if not dash:
            days.add(first)
            continue
        last = _day(hi, text)
        n = first
        days.add(n)
        while n != last:  # Fri-Mon wraps over the weekend
            n = (n + 1) % 7
            days.add(n)
    return frozenset(days)


def _day(name: str, text: str) -> int:
    name = name.strip().lower()
    for i, full in enumerate(_FULL):
        if len(name) >= 3 and full.startswith(name):
            return i
    raise InputError(
        f"window {quote(text)} names day {quote(name)}; days are Mon Tue Wed Thu Fri Sat Sun, "
        "a range (Mon-Fri), a list (Sat,Sun) or daily"
    )


def _minutes(value: str, text: str, *, end: bool) -> int:
    hours, minutes = (int(x) for x in value.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        raise InputError(
            f"window {quote(text)} has time {quote(value)}; times are HH:MM from 00:00 to 23:59 "
            "(24:00 only as an end)"
        )
    return hours * 60 + minutes


def check_window(value: str | None) -> str | None:
    """A pydantic field validator: ``value`` parses as a window (the
    InputError's sentence becomes the field's ValueError)."""
    if value is None:
        return None
    try:
        Window.parse(value)
    except InputError as exc:
        raise ValueError(exc.message) from None
    return value
