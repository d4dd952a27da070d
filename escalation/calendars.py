"""Business-time arithmetic for SLA clocks: exact to the second and correct across DST changes.

An instant counts as business time iff its local wall time (in the calendar's zone) lies inside one of the
intervals of that local weekday and its local date is not a holiday. The code never does arithmetic on
local wall times across an offset change: it walks UTC in segments of constant UTC offset, maps each
segment linearly to local naive time, intersects it with the day's intervals and maps the pieces back.
So a local hour that does not exist (spring forward) counts zero times and a local hour that happens twice
(fall back) counts twice, exactly as a clock on the wall would be watched.

Pure Python, no database: the models build a `CalendarSpec` and call the functions here.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from django.core.exceptions import ValidationError

__all__ = [
    "TWENTY_FOUR_SEVEN",
    "CalendarSpec",
    "add_business_seconds",
    "business_intervals",
    "business_seconds_between",
    "validate_calendar",
]

MINUTES_PER_DAY = 1440
SEARCH_LIMIT = timedelta(days=400)  # add_business_seconds gives up after this long without business time

_SECOND = timedelta(seconds=1)
_ZERO = timedelta(0)
_SCAN_STEP = timedelta(hours=6)  # offset changes are searched at this step, then bisected to the second
_CHUNK = timedelta(days=32)  # add_business_seconds walks forward in windows of this size

_DAY_NAMES = {
    name: index
    for index, names in enumerate(
        [
            ("mon", "monday"),
            ("tue", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        ]
    )
    for name in names
}
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


# --------------------------------------------------------------------------------------------- the spec


@functools.lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str, year: int) -> frozenset[date]:
    """Public holidays of one year, from the `holidays` package (cached per country, subdivision, year)."""
    calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return frozenset(day for day in calendar if day.year == year)


@dataclass(frozen=True)
class CalendarSpec:
    """A business calendar: opening hours per local weekday plus closed dates, in one IANA time zone."""

    time_zone: str
    # weekday 0=Mon..6=Sun -> [(start_minute, end_minute)], 0 <= start < end <= 1440, sorted, non-overlapping
    weekly_hours: Mapping[int, Sequence[tuple[int, int]]]
    always_open: bool = False  # 24x7: every instant counts; hours and holidays are ignored
    holiday_country: str = ""  # country code for the `holidays` package, e.g. "DE"; "" = none
    holiday_subdivision: str = ""  # e.g. "BE"
    extra_holidays: frozenset[date] = field(default_factory=frozenset)  # custom closed local dates

    def is_holiday(self, day: date) -> bool:
        """True if the local date `day` is closed: a custom date or a public holiday of the country."""
        if day in self.extra_holidays:
            return True
        if not self.holiday_country:
            return False
        return day in _holiday_dates(self.holiday_country.upper(), self.holiday_subdivision, day.year)


TWENTY_FOUR_SEVEN = CalendarSpec(time_zone="UTC", weekly_hours=MappingProxyType({}), always_open=True)


# ----------------------------------------------------------------------------------------- validation


def _parse_minute(value: Any, *, is_end: bool) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _HHMM.match(value.strip())
        if match:
            hours, minutes = int(match.group(1)), int(match.group(2))
            if minutes < 60 and (hours < 24 or (hours == 24 and minutes == 0 and is_end)):
                return hours * 60 + minutes
            if hours == 24 and minutes == 0:
                raise ValueError('"24:00" is allowed only as the end of an interval')
        raise ValueError(f'{value!r} is not a time of day ("HH:MM", 00:00..24:00)')
    raise ValueError(f"{value!r} is not a time (minutes since midnight or HH:MM)")


def _parse_day(key: Any) -> int:
    if isinstance(key, bool):
        raise ValueError(f"{key!r} is not a weekday")
    if isinstance(key, int):
        day = key
    elif isinstance(key, str) and key.strip().isdigit():
        day = int(key.strip())
    elif isinstance(key, str) and key.strip().lower() in _DAY_NAMES:
        return _DAY_NAMES[key.strip().lower()]
    else:
        raise ValueError(f'{key!r} is not a weekday (0 = Monday .. 6 = Sunday, or "mon".."sun")')
    if not 0 <= day <= 6:
        raise ValueError(f"{key!r} is not a weekday (0 = Monday .. 6 = Sunday)")
    return day


def _fmt(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _normalise_hours(weekly_hours: Any, errors: list[str]) -> dict[int, list[tuple[int, int]]]:
    result: dict[int, list[tuple[int, int]]] = {day: [] for day in range(7)}
    if weekly_hours is None:
        return result
    if not isinstance(weekly_hours, Mapping):
        errors.append("Weekly hours must be an object mapping weekdays to lists of [start, end] intervals.")
        return result
    seen: dict[int, Any] = {}
    for key, raw_intervals in weekly_hours.items():
        try:
            day = _parse_day(key)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if day in seen:
            errors.append(f"Weekday {day} is given twice ({seen[day]!r} and {key!r}).")
            continue
        seen[day] = key
        if raw_intervals is None:
            continue
        if isinstance(raw_intervals, str | bytes) or not isinstance(raw_intervals, Sequence):
            errors.append(f"Day {key!r}: expected a list of [start, end] intervals.")
            continue
        intervals: list[tuple[int, int]] = []
        for raw in raw_intervals:
            if isinstance(raw, str | bytes) or not isinstance(raw, Sequence) or len(raw) != 2:
                errors.append(f"Day {key!r}: {raw!r} is not a [start, end] pair.")
                continue
            try:
                start, end = _parse_minute(raw[0], is_end=False), _parse_minute(raw[1], is_end=True)
            except ValueError as exc:
                errors.append(f"Day {key!r}: {exc}.")
                continue
            if not (0 <= start <= MINUTES_PER_DAY and 0 <= end <= MINUTES_PER_DAY):
                errors.append(f"Day {key!r}: minutes must lie within 0..1440, got [{start}, {end}].")
                continue
            if start >= end:
                errors.append(
                    f"Day {key!r}: an interval must start before it ends, got {_fmt(start)}-{_fmt(end)}."
                )
                continue
            intervals.append((start, end))
        intervals.sort()
        for (s1, e1), (s2, e2) in itertools.pairwise(intervals):
            if s2 < e1:
                errors.append(
                    f"Day {key!r}: intervals {_fmt(s1)}-{_fmt(e1)} and {_fmt(s2)}-{_fmt(e2)} overlap."
                )
        result[day] = intervals
    return result


def validate_calendar(
    time_zone: str, weekly_hours: Any, holiday_country: str = "", holiday_subdivision: str = ""
) -> dict[int, list[tuple[int, int]]]:
    """Check a calendar given as JSON-ish data and return its weekly hours normalised.

    `weekly_hours` maps weekdays (0..6, "0".."6" or "mon".."sun") to intervals, each [start, end] in minutes
    since local midnight or as "HH:MM" strings ("24:00" allowed as an end). The result has all seven days
    0..6 as keys, each with its intervals as sorted (start_minute, end_minute) tuples (empty = closed).
    Raises ValidationError with a message list per field: time_zone, weekly_hours, holiday_country,
    holiday_subdivision.
    """
    errors: dict[str, list[str]] = {}

    if not isinstance(time_zone, str) or not time_zone.strip():
        errors["time_zone"] = ["A time zone is required (an IANA name such as Europe/Berlin)."]
    else:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            errors["time_zone"] = [
                f'Unknown time zone "{time_zone}" (use an IANA name such as Europe/Berlin).'
            ]

    hour_errors: list[str] = []
    hours = _normalise_hours(weekly_hours, hour_errors)
    if hour_errors:
        errors["weekly_hours"] = hour_errors

    if holiday_subdivision and not holiday_country:
        errors["holiday_subdivision"] = ["A subdivision needs a holiday country."]
    elif holiday_country:
        supported = holidays.list_supported_countries()
        country = holiday_country.upper() if isinstance(holiday_country, str) else ""
        if country not in supported:
            errors["holiday_country"] = [
                f'Unknown holiday country "{holiday_country}" (use a code such as DE).'
            ]
        elif holiday_subdivision:
            try:
                holidays.country_holidays(country, subdiv=holiday_subdivision)
            except NotImplementedError:
                known = ", ".join(supported[country]) or "none"
                errors["holiday_subdivision"] = [
                    f'Unknown subdivision "{holiday_subdivision}" for {country} (known: {known}).'
                ]

    if errors:
        raise ValidationError(errors)
    return hours


# ------------------------------------------------------------------------------- UTC offset segments


def _offset_at(zone: ZoneInfo, utc_naive: datetime) -> timedelta:
    offset = zone.fromutc(utc_naive.replace(tzinfo=zone)).utcoffset()
    if offset is None:  # pragma: no cover - a ZoneInfo always has an offset
        raise ValueError(f"{zone.key} has no UTC offset at {utc_naive.isoformat()}")
    return offset


@functools.lru_cache(maxsize=256)
def _offset_changes(zone_name: str, year: int) -> tuple[tuple[datetime, timedelta], ...]:
    """The offset changes of a zone within UTC year `year`: (first UTC instant of the new offset, new offset).

    Found by stepping six hours at a time and bisecting to the second (tz transitions are on whole seconds).
    """
    zone = ZoneInfo(zone_name)
    changes: list[tuple[datetime, timedelta]] = []
    lo = datetime(year, 1, 1)
    last = datetime(year + 1, 1, 1) if year < 9999 else datetime.max.replace(microsecond=0)
    lo_offset = _offset_at(zone, lo)
    while lo < last:
        hi = min(lo + _SCAN_STEP, last)
        hi_offset = _offset_at(zone, hi)
        while hi_offset != lo_offset:
            # first second in (lo, hi] whose offset differs from lo_offset
            a, b = 0, int((hi - lo).total_seconds())
            while b - a > 1:
                mid = (a + b) // 2
                if _offset_at(zone, lo + timedelta(seconds=mid)) == lo_offset:
                    a = mid
                else:
                    b = mid
            lo = lo + timedelta(seconds=b)
            lo_offset = _offset_at(zone, lo)
            changes.append((lo, lo_offset))
        lo, lo_offset = hi, hi_offset
    return tuple(changes)


def _segments(
    zone_name: str, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """Split the naive-UTC range [start, end) into pieces of constant UTC offset."""
    zone = ZoneInfo(zone_name)
    offset = _offset_at(zone, start)
    cursor = start
    for year in range(start.year, end.year + 1):
        for instant, new_offset in _offset_changes(zone_name, year):
            if instant <= cursor:
                continue
            if instant >= end:
                break
            yield cursor, instant, offset
            cursor, offset = instant, new_offset
    yield cursor, end, offset


# ----------------------------------------------------------------------------------- business time


def _to_utc_naive(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got the naive {value.isoformat()}")
    return value.astimezone(UTC).replace(tzinfo=None)


def _day_table(spec: CalendarSpec) -> tuple[tuple[tuple[timedelta, timedelta], ...], ...]:
    return tuple(
        tuple(
            (timedelta(minutes=s), timedelta(minutes=e))
            for s, e in sorted(spec.weekly_hours.get(day, ()) or ())
            if s < e
        )
        for day in range(7)
    )


def _raw_intervals(spec: CalendarSpec, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Business parts of the naive-UTC range [start, end), in order, possibly touching each other."""
    if start >= end:
        return
    if spec.always_open:
        yield start, end
        return
    table = _day_table(spec)
    if not any(table):
        return
    for seg_start, seg_end, offset in _segments(spec.time_zone, start, end):
        local_start, local_end = seg_start + offset, seg_end + offset
        day = local_start.date()
        last_day = (local_end - _SECOND).date() if local_end.time() == time(0) else local_end.date()
        while day <= last_day:
            intervals = table[day.weekday()]
            if intervals and not spec.is_holiday(day):
                midnight = datetime.combine(day, time(0))
                for s, e in intervals:
                    a, b = max(midnight + s, local_start), min(midnight + e, local_end)
                    if a < b:
                        yield a - offset, b - offset
            day += timedelta(days=1)


def _merged(pieces: Iterator[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    current: tuple[datetime, datetime] | None = None
    for a, b in pieces:
        if current is not None and a <= current[1]:
            current = (current[0], max(current[1], b))
            continue
        if current is not None:
            yield current
        current = (a, b)
    if current is not None:
        yield current


def business_intervals(
    spec: CalendarSpec, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The business parts of [start, end) as disjoint, ordered, maximal (start, end) pairs of aware UTC datetimes."""
    a, b = _to_utc_naive(start, "start"), _to_utc_naive(end, "end")
    for x, y in _merged(_raw_intervals(spec, a, b)):
        yield x.replace(tzinfo=UTC), y.replace(tzinfo=UTC)


def business_seconds_between(spec: CalendarSpec, start: datetime, end: datetime) -> int:
    """Whole seconds (floored) of business time in [start, end); 0 if end <= start."""
    a, b = _to_utc_naive(start, "start"), _to_utc_naive(end, "end")
    if b <= a:
        return 0
    total = _ZERO
    for x, y in _raw_intervals(spec, a, b):
        total += y - x
    return total // _SECOND


def add_business_seconds(spec: CalendarSpec, start: datetime, seconds: int) -> datetime:
    """The earliest instant t >= start with business_seconds_between(spec, start, t) == seconds (aware, UTC).

    Raises ValueError for negative seconds and if a stretch of 400 days holds no business time at all.
    """
    cursor = _to_utc_naive(start, "start")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    if seconds == 0:
        return start.astimezone(UTC)
    remaining = timedelta(seconds=seconds)
    if spec.always_open:
        return (cursor + remaining).replace(tzinfo=UTC)
    last_business = cursor
    while True:
        window_end = cursor + _CHUNK
        for a, b in _raw_intervals(spec, cursor, window_end):
            if b - a >= remaining:
                return (a + remaining).replace(tzinfo=UTC)
            remaining -= b - a
            last_business = b
        cursor = window_end
        if cursor - last_business > SEARCH_LIMIT:
            raise ValueError(
                f"No business time within {SEARCH_LIMIT.days} days after {last_business.isoformat()} UTC "
                f"in calendar {spec.time_zone} (empty weekly hours or every day a holiday?)"
            )
