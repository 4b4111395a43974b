"""Maintenance windows: parsing, overnight spans, clock changes, next opening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupiter.engine import Engine
from jupiter.errors import InputError
from jupiter.workflows.windows import DAY_NAMES, Window


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_forms() -> None:
    w = Window.parse("Sat 02:00-04:00 Europe/Berlin")
    assert w.days == {5} and (w.start, w.end, w.zone) == (120, 240, "Europe/Berlin")
    assert Window.parse("Mon-Fri 22:00-06:00 UTC").days == {0, 1, 2, 3, 4}
    assert Window.parse("fri-mon 1:00-2:00 UTC").days == {4, 5, 6, 0}
    assert Window.parse("Sat,Sunday 00:00-24:00 UTC").days == {5, 6}
    assert Window.parse("daily 01:00-05:00 America/New_York").days == set(range(7))
    assert Window.parse("  always ").always
    assert str(Window.parse("Sat  02:00 - 04:00   UTC")) == "Sat 02:00 - 04:00 UTC"


def test_start_is_inside_end_is_not() -> None:
    w = Window.parse("Sat 02:00-04:00 UTC")  # 2026-12-05 is a Saturday
    assert not w.is_open(utc(2026, 12, 5, 1, 59, 59))
    assert w.is_open(utc(2026, 12, 5, 2, 0))
    assert w.is_open(utc(2026, 12, 5, 3, 59, 59))
    assert not w.is_open(utc(2026, 12, 5, 4, 0))
    assert not w.is_open(utc(2026, 12, 12, 4, 0) - timedelta(days=1))
    assert w.next_open(utc(2026, 12, 5, 4, 0)) == utc(2026, 12, 12, 2, 0)
    assert w.next_open(utc(2026, 12, 5, 3, 0)) == utc(2026, 12, 5, 3, 0)


def test_zone_is_wall_clock() -> None:
    w = Window.parse("Sat 02:00-04:00 Europe/Berlin")
    assert w.is_open(utc(2026, 12, 5, 1, 30))  # 02:30 CET
    assert not w.is_open(utc(2026, 12, 5, 3, 30))
    assert w.is_open(utc(2026, 7, 4, 0, 30))  # 02:30 CEST
    assert w.next_open(utc(2026, 12, 5, 9, 0)) == utc(2026, 12, 12, 1, 0)


def test_overnight_belongs_to_the_day_it_opens() -> None:
    w = Window.parse("Mon-Fri 22:00-06:00 UTC")
    assert w.is_open(utc(2026, 12, 5, 5, 59))  # Saturday morning: Friday's night
    assert not w.is_open(utc(2026, 12, 5, 22, 0))  # Saturday evening
    assert not w.is_open(utc(2026, 12, 7, 5, 0))  # Monday morning: Sunday had none
    assert w.next_open(utc(2026, 12, 5, 6, 0)) == utc(2026, 12, 7, 22, 0)


def test_clocks_forward_shortens_and_back_lengthens() -> None:
    # Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC);
    # 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
    w = Window.parse("Sun 02:00-04:00 Europe/Berlin")
    assert w.next_open(utc(2026, 3, 28)) == utc(2026, 3, 29, 1, 0)
    assert w.is_open(utc(2026, 3, 29, 1, 59)) and not w.is_open(utc(2026, 3, 29, 2, 0))
    assert w.next_open(utc(2026, 10, 24)) == utc(2026, 10, 25, 0, 0)  # 02:00 CEST
    assert w.is_open(utc(2026, 10, 25, 2, 59)) and not w.is_open(utc(2026, 10, 25, 3, 0))
    # Closed at 02:30 CEST, open again when 03:00 CEST falls back to 02:00 CET.
    short = Window.parse("Sun 01:00-02:30 Europe/Berlin")
    assert not short.is_open(utc(2026, 10, 25, 0, 45))
    assert short.next_open(utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 25, 1, 0)
    # A window inside the hour that does not exist skips that week.
    gap = Window.parse("Sun 02:15-02:45 Europe/Berlin")
    assert gap.next_open(utc(2026, 3, 28)) == utc(2026, 4, 5, 0, 15)


def test_assets_refuse_a_bad_window() -> None:
    from pydantic import ValidationError

    from jupiter.models import AssetSpec

    assert AssetSpec(id="web-1", window="Sat 02:00-04:00 UTC").window == "Sat 02:00-04:00 UTC"
    with pytest.raises(ValidationError, match="names time zone 'CEST', which is not an IANA"):
        AssetSpec(id="web-1", window="Sat 02:00-04:00 CEST")


def test_asset_import_names_the_bad_window(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "assets.yaml"
    path.write_text("assets:\n  - id: web-1\n    window: Saturday nights\n")
    with pytest.raises(InputError) as caught:
        sqlite_engine.import_assets(path)
    assert str(caught.value) == (
        f"{path}: asset #1, field window: window 'Saturday nights' is not a maintenance window; "
        "write DAYS HH:MM-HH:MM ZONE, such as 'Sat 02:00-04:00 Europe/Berlin' or "
        "'Mon-Fri 22:00-06:00 UTC', or 'always'; fix it and import again"
    )


def test_always_is_open_now() -> None:
    w = Window.parse("always")
    now = utc(2026, 12, 5, 15, 0)
    assert w.is_open(now) and w.next_open(now) == now


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Window.parse("Sat 02:00-04:00 UTC").is_open(datetime(2026, 12, 5))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Saturday night", "write DAYS HH:MM-HH:MM ZONE, such as 'Sat 02:00-04:00 Europe/Berlin'"),
        ("Sat 02:00-04:00", "write DAYS HH:MM-HH:MM ZONE"),
        ("", "is not a maintenance window"),
        ("Sat 02:00-04:00 Mars/Olympus", "time zone 'Mars/Olympus', which is not an IANA zone"),
        ("Sat 02:00-04:00 ../../etc/passwd", "is not an IANA zone"),
        ("Xyz 02:00-04:00 UTC", "names day 'xyz'; days are Mon Tue"),
        ("Sa 02:00-04:00 UTC", "names day 'sa'"),
        ("Sat 25:00-04:00 UTC", "times are HH:MM from 00:00 to 23:59"),
        ("Sat 02:60-04:00 UTC", "times are HH:MM"),
        ("Sat 24:00-04:00 UTC", "24:00 only as an end"),
        ("Sat 02:00-02:00 UTC", "starts and ends at the same time"),
    ],
)
def test_bad_text_names_the_form(text: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        Window.parse(text)
    assert says in str(caught.value)


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute clock change
    "Pacific/Chatham",  # a +12:45 offset
    "America/Santiago",
    "Asia/Kolkata",
]
# Clock changes to land near (UTC): Berlin, New York, Lord Howe, Santiago.
CHANGES = [
    utc(2026, 3, 29, 1, 0),
    utc(2026, 10, 25, 1, 0),
    utc(2026, 3, 8, 7, 0),
    utc(2026, 11, 1, 6, 0),
    utc(2026, 4, 4, 15, 0),
    utc(2026, 10, 3, 15, 30),
    utc(2026, 4, 5, 3, 0),
    utc(2026, 9, 6, 4, 0),
]


@st.composite
def windows(draw: st.DrawFn) -> Window:
    days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True))
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(1, 24 * 60).filter(lambda e: e != start))
    zone = draw(st.sampled_from(ZONES))
    text = f"{','.join(days)} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    return Window.parse(f"{text} {zone}")


instants = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.builds(
        lambda base, seconds: base + timedelta(seconds=seconds),
        st.sampled_from(CHANGES),
        st.integers(-3 * 86400, 3 * 86400),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows(), instants)
def test_next_open_is_open_and_nothing_earlier_is(window: Window, now: datetime) -> None:
    found = window.next_open(now)
    assert found >= now and window.is_open(found)
    assert found - now <= timedelta(days=8)
    # Windows start and end on whole minutes and clocks change on whole
    # minutes, so checking now and every minute after it is exhaustive.
    t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert found == now or not window.is_open(now)
    while t < found:
        assert not window.is_open(t), (str(window), now, t, found)
        t += timedelta(minutes=1)
    if found > now:
        assert not window.is_open(found - timedelta(seconds=1))


ZONED_CHANGES = [
    ("Europe/Berlin", CHANGES[0]),
    ("Europe/Berlin", CHANGES[1]),
    ("America/New_York", CHANGES[2]),
    ("America/New_York", CHANGES[3]),
    ("Australia/Lord_Howe", CHANGES[4]),
    ("Australia/Lord_Howe", CHANGES[5]),
]


@st.composite
def near_a_change(draw: st.DrawFn) -> tuple[Window, datetime]:
    """A window that starts or ends within two hours of a clock change, and
    an instant shortly before the change: where wall time jumps."""
    zone, change = draw(st.sampled_from(ZONED_CHANGES))
    from zoneinfo import ZoneInfo

    local = (change - timedelta(minutes=1)).astimezone(ZoneInfo(zone))
    at = local.hour * 60 + local.minute
    start = (at + draw(st.integers(-120, 120))) % (24 * 60)
    length = draw(st.integers(1, 180))
    end = (start + length) % (24 * 60) or 24 * 60
    day = DAY_NAMES[local.weekday()]
    text = f"{day} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d} {zone}"
    now = change - timedelta(minutes=draw(st.integers(0, 6 * 60)))
    return Window.parse(text), now


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_a_change())
def test_next_open_across_clock_changes(case: tuple[Window, datetime]) -> None:
    window, now = case
    found = window.next_open(now)
    assert window.is_open(found)
    t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Within a day of the change: the part where wall time jumps.
    stop = min(found, now + timedelta(days=1))
    while t < stop:
        assert not window.is_open(t), (str(window), now, t, found)
        t += timedelta(minutes=1)
