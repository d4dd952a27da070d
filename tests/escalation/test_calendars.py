"""Business-time arithmetic: hand examples, DST edges, validation, and properties against a reference.

The reference is deliberately simple and independent of escalation.calendars: it steps UTC minute by minute,
converts each minute to local time with zoneinfo, and checks the local weekday's hours and the local date
against the `holidays` package and the custom dates. To keep 10,000 examples within CI time, the minute ->
local conversion is done once per zone for all of 2026 and kept in an array (still one astimezone per minute).
"""

from __future__ import annotations

import functools
import itertools
from array import array
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.calendars import (
    TWENTY_FOUR_SEVEN,
    CalendarSpec,
    add_business_seconds,
    business_intervals,
    business_seconds_between,
    validate_calendar,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = 3600
NINE_TO_FIVE = {day: [(9 * 60, 17 * 60)] for day in range(5)}
ALL_DAY = {day: [(0, 1440)] for day in range(7)}


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def office(**kwargs: object) -> CalendarSpec:
    return CalendarSpec(time_zone="Europe/Berlin", weekly_hours=NINE_TO_FIVE, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ hand examples


def test_24_business_hours_from_friday_afternoon_end_on_wednesday_afternoon() -> None:
    friday = berlin(2026, 5, 8, 16, 0)
    assert friday.weekday() == 4
    due = add_business_seconds(office(), friday, 24 * H)
    assert due == berlin(2026, 5, 13, 16, 0)
    assert due.tzinfo is UTC
    assert business_seconds_between(office(), friday, due) == 24 * H


def test_start_outside_hours_counts_from_next_opening() -> None:
    saturday = berlin(2026, 5, 9, 12, 0)
    assert add_business_seconds(office(), saturday, H) == berlin(2026, 5, 11, 10, 0)
    assert business_seconds_between(office(), saturday, berlin(2026, 5, 11, 9, 0)) == 0


def test_result_is_earliest_instant_closing_time_not_next_morning() -> None:
    monday = berlin(2026, 5, 11, 9, 0)
    assert add_business_seconds(office(), monday, 8 * H) == berlin(2026, 5, 11, 17, 0)
    assert add_business_seconds(office(), monday, 8 * H + 1) == berlin(2026, 5, 12, 9, 0, 1)


def test_zero_seconds_is_start_and_negative_is_refused() -> None:
    saturday = berlin(2026, 5, 9, 12, 0)
    assert add_business_seconds(office(), saturday, 0) == saturday
    with pytest.raises(ValueError, match="negative"):
        add_business_seconds(office(), saturday, -1)


def test_between_is_zero_for_reversed_range_and_floors_seconds() -> None:
    start = utc(2026, 5, 11, 10, 0, 0)
    assert business_seconds_between(office(), start, start - timedelta(hours=1)) == 0
    assert (
        business_seconds_between(TWENTY_FOUR_SEVEN, start, start + timedelta(seconds=1, microseconds=999_999))
        == 1
    )
    assert business_seconds_between(office(), start, start + timedelta(microseconds=999_999)) == 0


def test_fractional_start_is_exact() -> None:
    start = utc(2026, 5, 11, 10, 0, 0, 250_000)
    due = add_business_seconds(office(), start, 10)
    assert due == start + timedelta(seconds=10)
    assert business_seconds_between(office(), start, due) == 10
    assert business_seconds_between(office(), start, due - timedelta(microseconds=1)) == 9


def test_public_holidays_from_the_holidays_package() -> None:
    spec = office(holiday_country="DE", holiday_subdivision="BE")
    assert spec.is_holiday(date(2026, 12, 25))
    assert spec.is_holiday(date(2026, 12, 26))
    assert not spec.is_holiday(date(2026, 12, 24))
    assert not spec.is_holiday(date(2026, 12, 28))
    # Thursday 24 Dec 16:00: one hour left that day, Friday 25th is Christmas, then the weekend.
    assert add_business_seconds(spec, berlin(2026, 12, 24, 16, 0), 2 * H) == berlin(2026, 12, 28, 10, 0)
    assert business_seconds_between(spec, berlin(2026, 12, 24, 0, 0), berlin(2026, 12, 29, 0, 0)) == 16 * H
    # Women's Day (8 March) is a holiday in Berlin only.
    assert office(holiday_country="DE", holiday_subdivision="BE").is_holiday(date(2026, 3, 8))
    assert not office(holiday_country="DE", holiday_subdivision="BY").is_holiday(date(2026, 3, 8))


def test_custom_closed_dates() -> None:
    spec = office(extra_holidays=frozenset({date(2026, 5, 11)}))
    assert spec.is_holiday(date(2026, 5, 11))
    assert add_business_seconds(spec, berlin(2026, 5, 8, 16, 0), 24 * H) == berlin(2026, 5, 14, 16, 0)


def test_twenty_four_seven_counts_every_instant_even_across_dst() -> None:
    start = berlin(2026, 3, 28, 12, 0)
    assert add_business_seconds(TWENTY_FOUR_SEVEN, start, 86400) == berlin(
        2026, 3, 29, 13, 0
    )  # 24 real hours
    berlin_247 = CalendarSpec(
        time_zone="Europe/Berlin", weekly_hours={}, always_open=True, holiday_country="DE"
    )
    assert business_seconds_between(berlin_247, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
    assert business_seconds_between(berlin_247, berlin(2026, 12, 25), berlin(2026, 12, 26)) == 24 * H
    assert list(business_intervals(berlin_247, berlin(2026, 1, 1), berlin(2026, 1, 2))) == [
        (utc(2025, 12, 31, 23), utc(2026, 1, 1, 23))
    ]


def test_night_shift_over_midnight_is_one_interval() -> None:
    night = CalendarSpec(
        time_zone="Europe/Berlin", weekly_hours={d: [(0, 360), (1320, 1440)] for d in range(7)}
    )
    start = berlin(2026, 6, 10, 21, 0)
    assert add_business_seconds(night, start, 3 * H) == berlin(2026, 6, 11, 1, 0)
    assert list(business_intervals(night, start, berlin(2026, 6, 11, 12, 0))) == [
        (berlin(2026, 6, 10, 22, 0), berlin(2026, 6, 11, 6, 0))
    ]
    assert business_seconds_between(night, berlin(2026, 6, 8), berlin(2026, 6, 15)) == 7 * 8 * H


def test_night_shift_after_a_holiday_starts_on_the_local_date() -> None:
    night = CalendarSpec(
        time_zone="Europe/Berlin",
        weekly_hours={d: [(0, 360), (1320, 1440)] for d in range(7)},
        extra_holidays=frozenset({date(2026, 6, 11)}),
    )
    # 22:00-24:00 on the 10th counts, 00:00-06:00 on the 11th does not (its local date is closed).
    assert business_seconds_between(night, berlin(2026, 6, 10, 12), berlin(2026, 6, 11, 12)) == 2 * H


# ---------------------------------------------------------------------------------------------- DST


def test_spring_forward_day_has_23_hours_in_berlin() -> None:
    spec = CalendarSpec(time_zone="Europe/Berlin", weekly_hours=ALL_DAY)
    assert business_seconds_between(spec, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
    assert business_seconds_between(spec, berlin(2026, 3, 28), berlin(2026, 3, 29)) == 24 * H
    assert add_business_seconds(spec, berlin(2026, 3, 29, 1, 30), 2 * H) == berlin(2026, 3, 29, 4, 30)


def test_fall_back_day_has_25_hours_in_new_york() -> None:
    spec = CalendarSpec(time_zone="America/New_York", weekly_hours=ALL_DAY)
    start, end = datetime(2026, 11, 1, tzinfo=NEW_YORK), datetime(2026, 11, 2, tzinfo=NEW_YORK)
    assert business_seconds_between(spec, start, end) == 25 * H
    assert add_business_seconds(spec, start, 25 * H) == end


def test_hours_touching_the_berlin_gap() -> None:
    sunday = berlin(2026, 3, 29)
    assert sunday.weekday() == 6

    def hours(*intervals: tuple[int, int]) -> CalendarSpec:
        return CalendarSpec(time_zone="Europe/Berlin", weekly_hours={6: list(intervals)})

    day = (sunday, sunday + timedelta(days=1))
    assert business_seconds_between(hours((60, 180)), *day) == H  # 01:00-02:00 CET; 02:00-03:00 never happens
    assert business_seconds_between(hours((120, 180)), *day) == 0  # entirely inside the gap
    assert business_seconds_between(hours((150, 240)), *day) == H  # 03:00-04:00 CEST
    assert list(business_intervals(hours((60, 240)), *day)) == [(utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))]
    assert add_business_seconds(hours((60, 240)), sunday, H) == utc(2026, 3, 29, 1)  # 02:00 CET == 03:00 CEST
    assert add_business_seconds(hours((60, 240)), sunday, H + 1) == berlin(2026, 3, 29, 3, 0, 1)


def test_hours_touching_the_new_york_fold() -> None:
    sunday = datetime(2026, 11, 1, tzinfo=NEW_YORK)
    assert sunday.weekday() == 6

    def hours(*intervals: tuple[int, int]) -> CalendarSpec:
        return CalendarSpec(time_zone="America/New_York", weekly_hours={6: list(intervals)})

    day = (sunday, sunday + timedelta(days=1))
    assert business_seconds_between(hours((60, 120)), *day) == 2 * H  # 01:00-02:00 happens twice
    assert business_seconds_between(hours((90, 180)), *day) == 2 * H  # 01:30-02:00 twice, then 02:00-03:00
    assert business_seconds_between(hours((120, 180)), *day) == H
    assert list(business_intervals(hours((60, 120)), *day)) == [(utc(2026, 11, 1, 5), utc(2026, 11, 1, 7))]
    due = add_business_seconds(hours((60, 120)), sunday, 90 * 60)
    assert due == utc(2026, 11, 1, 6, 30)
    assert due.astimezone(NEW_YORK).fold == 1  # 01:30 EST, the second 01:30
    assert list(business_intervals(hours((90, 180)), *day)) == [
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6)),
        (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 8)),
    ]


def test_inputs_in_any_zone_and_naive_refused() -> None:
    start = berlin(2026, 5, 8, 16, 0)
    assert add_business_seconds(office(), start.astimezone(NEW_YORK), 24 * H) == berlin(2026, 5, 13, 16, 0)
    with pytest.raises(ValueError, match="aware"):
        business_seconds_between(office(), datetime(2026, 5, 8), start)
    with pytest.raises(ValueError, match="aware"):
        add_business_seconds(office(), datetime(2026, 5, 8), 1)
    with pytest.raises(ValueError, match="aware"):
        list(business_intervals(office(), start, datetime(2026, 5, 9)))


def test_no_business_time_at_all_raises() -> None:
    closed = CalendarSpec(time_zone="Europe/Berlin", weekly_hours={})
    with pytest.raises(ValueError, match="No business time within 400 days"):
        add_business_seconds(closed, berlin(2026, 1, 1), 1)
    assert business_seconds_between(closed, berlin(2026, 1, 1), berlin(2027, 1, 1)) == 0


def test_long_targets_span_many_months() -> None:
    due = add_business_seconds(office(), berlin(2026, 1, 5, 9, 0), 200 * 8 * H)  # 200 working days
    assert due == berlin(2026, 10, 9, 17, 0)
    assert business_seconds_between(office(), berlin(2026, 1, 5, 9, 0), due) == 200 * 8 * H


# --------------------------------------------------------------------------------------- validation


def test_validate_normalises_json_input() -> None:
    hours = validate_calendar(
        "Europe/Berlin",
        {
            "mon": [["13:00", "17:00"], ["09:00", "12:00"]],
            "1": [[540, 1020]],
            4: [["22:00", "24:00"]],
            "Sun": [],
        },
        "DE",
        "BE",
    )
    assert hours == {
        0: [(540, 720), (780, 1020)],
        1: [(540, 1020)],
        2: [],
        3: [],
        4: [(1320, 1440)],
        5: [],
        6: [],
    }
    assert validate_calendar("UTC", {}) == {day: [] for day in range(7)}
    assert validate_calendar("UTC", {"0": [[540, 600], [600, 660]]})[0] == [
        (540, 600),
        (600, 660),
    ]  # touching


@pytest.mark.parametrize(
    ("args", "field", "fragment"),
    [
        (("Mars/Olympus", NINE_TO_FIVE), "time_zone", "Unknown time zone"),
        (("", NINE_TO_FIVE), "time_zone", "required"),
        (("../etc/passwd", NINE_TO_FIVE), "time_zone", "Unknown time zone"),
        (("UTC", {"0": [["09:00", "12:00"], ["11:00", "13:00"]]}), "weekly_hours", "overlap"),
        (("UTC", {"0": [["17:00", "09:00"]]}), "weekly_hours", "start before it ends"),
        (("UTC", {"0": [[600, 600]]}), "weekly_hours", "start before it ends"),
        (("UTC", {"0": [[0, 1441]]}), "weekly_hours", "0..1440"),
        (("UTC", {"0": [[-5, 60]]}), "weekly_hours", "0..1440"),
        (("UTC", {"0": [["24:00", "24:00"]]}), "weekly_hours", "only as the end"),
        (("UTC", {"0": [["9h", "17h"]]}), "weekly_hours", "not a time"),
        (("UTC", {"funday": [[0, 60]]}), "weekly_hours", "not a weekday"),
        (("UTC", {"7": [[0, 60]]}), "weekly_hours", "not a weekday"),
        (("UTC", {"0": [[0, 60]], "mon": [[60, 120]]}), "weekly_hours", "given twice"),
        (("UTC", {"0": [[0, 60, 120]]}), "weekly_hours", "not a [start, end] pair"),
        (("UTC", [[0, 60]]), "weekly_hours", "must be an object"),
        (("UTC", {}, "XX"), "holiday_country", "Unknown holiday country"),
        (("UTC", {}, "DE", "ZZ"), "holiday_subdivision", "Unknown subdivision"),
        (("UTC", {}, "", "BE"), "holiday_subdivision", "needs a holiday country"),
    ],
)
def test_validate_refuses_bad_calendars(args: tuple, field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_calendar(*args)
    errors = info.value.message_dict
    assert list(errors) == [field]
    assert any(fragment in message for message in errors[field]), errors


def test_validate_reports_every_field_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        validate_calendar("Nowhere/City", {"0": [[600, 500]]}, "XX")
    assert set(info.value.message_dict) == {"time_zone", "weekly_hours", "holiday_country"}


# ------------------------------------------------------------------------------- reference + properties

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
TABLE_START = datetime(2026, 1, 1, tzinfo=UTC)
TABLE_MINUTES = 366 * 1440  # all of 2026 and the first day of 2027 (UTC)
MINUTE = timedelta(minutes=1)
HOLIDAY_SETS = [("", ""), ("DE", "BE"), ("US", "NY"), ("AU", "NSW"), ("IN", "")]
# Offset changes in 2026 (UTC): Berlin 03-29 01:00, 10-25 01:00; New York 03-08 07:00, 11-01 06:00;
# Sydney 04-04 16:00, 10-03 16:00.
ANCHORS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 16, tzinfo=UTC),
    datetime(2026, 10, 3, 16, tzinfo=UTC),
]
MAX_SPAN = 10 * 1440  # minutes
EDGE_MINUTES = [0, 60, 90, 120, 150, 180, 330, 360, 1380, 1440]


@functools.cache
def local_minutes(zone_name: str) -> array:
    """Minute i of the table is the UTC minute TABLE_START + i; its local wall time as ordinal * 1440 + minute."""
    zone = ZoneInfo(zone_name)
    table = array("q")
    instant = TABLE_START
    for _ in range(TABLE_MINUTES):
        local = instant.astimezone(zone)
        table.append(local.toordinal() * 1440 + local.hour * 60 + local.minute)
        instant += MINUTE
    return table


@functools.cache
def public_holidays(country: str, subdivision: str) -> frozenset[int]:
    if not country:
        return frozenset()
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=[2025, 2026, 2027])
    return frozenset(day.toordinal() for day in found)


def reference_business_minutes(spec: CalendarSpec, first: int, last: int) -> list[int]:
    """Indices i in [first, last) of the table whose UTC minute [i, i+1) is business time."""
    table = local_minutes(spec.time_zone)
    closed = {day.toordinal() for day in spec.extra_holidays} | public_holidays(
        spec.holiday_country, spec.holiday_subdivision
    )
    is_open = bytearray(7 * 1440)  # weekday * 1440 + minute of the day -> 1 if within that day's hours
    for weekday, intervals in spec.weekly_hours.items():
        for start, end in intervals:
            is_open[weekday * 1440 + start : weekday * 1440 + end] = b"\x01" * (end - start)
    result = []
    for i in range(first, last):
        ordinal, minute = divmod(table[i], 1440)
        # date.toordinal() == 1 is a Monday, so (ordinal - 1) % 7 is the local weekday
        if is_open[(ordinal - 1) % 7 * 1440 + minute] and ordinal not in closed:
            result.append(i)
    return result


def at_minute(i: int) -> datetime:
    return TABLE_START + i * MINUTE


# Strategies are built once; each example makes few draws (Hypothesis' cost is per draw).
# A boundary point is a minute 0..1440, or one of EDGE_MINUTES (hours around DST changes) for larger draws.
_points = st.lists(st.integers(0, 1440 + len(EDGE_MINUTES) - 1), min_size=2, max_size=6)
_holiday_sets = st.sampled_from(HOLIDAY_SETS)
_zones = st.sampled_from(ZONES)
_day_masks = st.integers(1, 127)


def intervals_from(raw: list[int]) -> list[tuple[int, int]]:
    """1-3 sorted, disjoint intervals from 2-6 boundary points."""
    points = sorted({value if value <= 1440 else EDGE_MINUTES[value - 1441] for value in raw})
    if len(points) < 2:
        return [(points[0], 1440)] if points[0] < 1440 else [(0, 1440)]
    return [(points[k], points[k + 1]) for k in range(0, len(points) - 1, 2)]


@st.composite
def calendars(draw: st.DrawFn) -> CalendarSpec:
    """Random open days (a weekday mask), each with one of two random sets of 1-3 intervals."""
    open_days, which = draw(_day_masks), draw(_day_masks)
    first, second = intervals_from(draw(_points)), intervals_from(draw(_points))
    country, subdivision = draw(_holiday_sets)
    return CalendarSpec(
        time_zone=draw(_zones),
        weekly_hours={day: first if which >> day & 1 else second for day in range(7) if open_days >> day & 1},
        holiday_country=country,
        holiday_subdivision=subdivision,
    )


def anchor_index(anchor: datetime) -> int:
    return (anchor - TABLE_START) // MINUTE


# starts: within 3 days of an offset change (6 of 7 choices), or anywhere in 2026
start_minutes = st.builds(
    lambda choice, delta, anywhere: (
        anchor_index(ANCHORS[choice]) + delta if choice < len(ANCHORS) else anywhere
    ),
    st.integers(0, len(ANCHORS)),
    st.integers(-3 * 1440, 3 * 1440),
    st.integers(0, TABLE_MINUTES - MAX_SPAN - 1),
)
spans = st.integers(0, MAX_SPAN)
# custom closed dates near the start, as day offsets from the start's UTC date
closed_offsets = st.lists(st.integers(-1, 11), max_size=2)
PROPERTY = settings(deadline=None, database=None)


def with_closed_dates(spec: CalendarSpec, first: int, offsets: list[int]) -> CalendarSpec:
    base = at_minute(first).date()
    return replace(spec, extra_holidays=frozenset(base + timedelta(days=offset) for offset in offsets))


@settings(PROPERTY, max_examples=5000)
@given(spec=calendars(), first=start_minutes, span=spans, closed=closed_offsets, show_in_zone=st.booleans())
def test_property_business_seconds_match_minute_reference(
    spec: CalendarSpec, first: int, span: int, closed: list[int], show_in_zone: bool
) -> None:
    spec = with_closed_dates(spec, first, closed)
    start, end = at_minute(first), at_minute(first + span)
    if show_in_zone:  # inputs may be in any zone
        start = start.astimezone(ZoneInfo(spec.time_zone))
    expected = reference_business_minutes(spec, first, first + span)
    assert business_seconds_between(spec, start, end) == 60 * len(expected)
    intervals = list(business_intervals(spec, start, end))
    assert sum(((b - a) for a, b in intervals), timedelta()) == len(expected) * MINUTE
    for (_, b), (c, _) in itertools.pairwise(intervals):
        assert b < c  # disjoint and maximal
    assert all(start <= a < b <= end for a, b in intervals)


@settings(PROPERTY, max_examples=5000)
@given(spec=calendars(), first=start_minutes, span=spans, closed=closed_offsets, data=st.data())
def test_property_add_business_seconds_is_earliest_instant(
    spec: CalendarSpec, first: int, span: int, closed: list[int], data: st.DataObject
) -> None:
    spec = with_closed_dates(spec, first, closed)
    business = reference_business_minutes(spec, first, first + span)
    whole = data.draw(st.integers(0, len(business)), label="whole minutes")
    extra = data.draw(st.integers(0, 59), label="extra seconds") if whole < len(business) else 0
    seconds = whole * 60 + extra
    start = at_minute(first)
    if seconds == 0:
        expected = start
    elif extra == 0:
        expected = at_minute(business[whole - 1] + 1)  # the end of the last business minute needed
    else:
        expected = at_minute(business[whole]) + timedelta(seconds=extra)
    due = add_business_seconds(spec, start, seconds)
    assert due == expected
    assert business_seconds_between(spec, start, due) == seconds
    if seconds > 0:
        assert business_seconds_between(spec, start, due - timedelta(seconds=1)) < seconds
        assert business_seconds_between(spec, start, due - MINUTE) < seconds
