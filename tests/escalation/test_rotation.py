"""On-call rotations: regular shifts in local wall-clock time, overrides, next shift, and a consistency property."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.rotation import (
    FAR_FUTURE,
    FAR_PAST,
    Override,
    Rotation,
    Shift,
    next_shift,
    shift_at,
    shifts_between,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


EIGHT_HOURS = Rotation(
    time_zone="UTC", start=utc(2026, 1, 5, 6), shift_length=timedelta(hours=8), members=(ALICE, BOB, CAROL)
)


def test_three_members_eight_hour_shifts() -> None:
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 5, 6)) == Shift(
        ALICE, utc(2026, 1, 5, 6), utc(2026, 1, 5, 14), False
    )
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 5, 13, 59, 59)).user_id == ALICE
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 5, 14)) == Shift(
        BOB, utc(2026, 1, 5, 14), utc(2026, 1, 5, 22), False
    )
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 6, 3)) == Shift(
        CAROL, utc(2026, 1, 5, 22), utc(2026, 1, 6, 6), False
    )
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 6, 6)).user_id == ALICE
    # a month later the cycle still lines up: 3 shifts a day, 3 members -> same member at the same hour
    assert shift_at(EIGHT_HOURS, utc(2026, 2, 5, 15)).user_id == BOB
    assert [s.user_id for s in shifts_between(EIGHT_HOURS, utc(2026, 1, 5, 6), utc(2026, 1, 7, 6))] == [
        ALICE,
        BOB,
        CAROL,
    ] * 2


def test_before_the_start_nobody_is_on_call() -> None:
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 1)) == Shift(None, FAR_PAST, utc(2026, 1, 5, 6), False)
    assert next_shift(EIGHT_HOURS, utc(2026, 1, 1)) == Shift(
        ALICE, utc(2026, 1, 5, 6), utc(2026, 1, 5, 14), False
    )


def test_aware_inputs_in_any_zone_and_naive_refused() -> None:
    assert shift_at(EIGHT_HOURS, utc(2026, 1, 5, 14).astimezone(NEW_YORK)).user_id == BOB
    with pytest.raises(ValueError, match="aware"):
        shift_at(EIGHT_HOURS, datetime(2026, 1, 5, 14))
    with pytest.raises(ValueError, match="aware"):
        Rotation(
            time_zone="UTC", start=datetime(2026, 1, 5), shift_length=timedelta(hours=8), members=(ALICE,)
        )
    with pytest.raises(ValueError, match="positive"):
        Rotation(time_zone="UTC", start=utc(2026, 1, 5), shift_length=timedelta(0), members=(ALICE,))
    with pytest.raises(ValueError, match="end after it starts"):
        Override(ALICE, utc(2026, 1, 5), utc(2026, 1, 5))


DAILY_0900 = Rotation(
    time_zone="Europe/Berlin",
    start=berlin(2026, 3, 27, 9, 0),
    shift_length=timedelta(days=1),
    members=(ALICE, BOB, CAROL),
)


def test_daily_handover_stays_at_0900_local_across_spring_forward() -> None:
    shifts = shifts_between(DAILY_0900, berlin(2026, 3, 27, 9), berlin(2026, 3, 31, 9))
    assert [s.start.astimezone(BERLIN).hour for s in shifts] == [9, 9, 9, 9]
    assert [s.user_id for s in shifts] == [ALICE, BOB, CAROL, ALICE]
    saturday = shifts[1]
    assert (saturday.start, saturday.end) == (utc(2026, 3, 28, 8), utc(2026, 3, 29, 7))
    assert saturday.end - saturday.start == timedelta(hours=23)
    assert shift_at(DAILY_0900, berlin(2026, 3, 29, 8, 59)).user_id == BOB
    assert shift_at(DAILY_0900, berlin(2026, 3, 29, 9, 0)).user_id == CAROL


def test_daily_handover_stays_at_0900_local_across_fall_back() -> None:
    shifts = shifts_between(DAILY_0900, berlin(2026, 10, 23, 9), berlin(2026, 10, 27, 9))
    assert [s.start.astimezone(BERLIN).hour for s in shifts] == [9, 9, 9, 9]
    saturday = shift_at(DAILY_0900, berlin(2026, 10, 24, 12))
    assert saturday.end - saturday.start == timedelta(hours=25)
    assert saturday.end == berlin(2026, 10, 25, 9)
    days = (berlin(2026, 10, 24, 9) - berlin(2026, 3, 27, 9)).days  # local days since the start
    assert saturday.user_id == (ALICE, BOB, CAROL)[days % 3]


def test_boundary_in_the_gap_moves_to_the_first_instant_after_it() -> None:
    rotation = Rotation(
        time_zone="Europe/Berlin",
        start=berlin(2026, 3, 28, 2, 30),
        shift_length=timedelta(days=1),
        members=(1, 2),
    )
    first = shift_at(rotation, berlin(2026, 3, 28, 12))
    assert first == Shift(1, berlin(2026, 3, 28, 2, 30), utc(2026, 3, 29, 1), False)  # 03:00 CEST
    assert shift_at(rotation, utc(2026, 3, 29, 1)).user_id == 2
    assert shift_at(rotation, utc(2026, 3, 29, 1)).end == berlin(2026, 3, 30, 2, 30)


def test_boundary_in_the_fold_uses_the_first_occurrence_and_the_shift_continues() -> None:
    rotation = Rotation(
        time_zone="America/New_York",
        start=datetime(2026, 10, 31, 1, 30, tzinfo=NEW_YORK),
        shift_length=timedelta(days=1),
        members=(1, 2),
    )
    handover = utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first 01:30
    assert shift_at(rotation, handover - timedelta(seconds=1)).user_id == 1
    second = shift_at(rotation, handover)
    assert second == Shift(2, handover, utc(2026, 11, 2, 6, 30), False)  # 25 h: the fold's hour is in it
    # 01:45 EST, the second time the clock shows 01:45: still member 2, no hand back to member 1.
    assert shift_at(rotation, utc(2026, 11, 1, 6, 45)).user_id == 2


def test_holiday_cover_override_cuts_the_regular_shift() -> None:
    cover = Override(DAVE, utc(2026, 1, 5, 10), utc(2026, 1, 5, 12))
    rotation = Rotation("UTC", utc(2026, 1, 5, 6), timedelta(hours=8), (ALICE, BOB, CAROL), (cover,))
    assert shift_at(rotation, utc(2026, 1, 5, 9)) == Shift(
        ALICE, utc(2026, 1, 5, 6), utc(2026, 1, 5, 10), False
    )
    assert shift_at(rotation, utc(2026, 1, 5, 11)) == Shift(
        DAVE, utc(2026, 1, 5, 10), utc(2026, 1, 5, 12), True
    )
    assert shift_at(rotation, utc(2026, 1, 5, 12)) == Shift(
        ALICE, utc(2026, 1, 5, 12), utc(2026, 1, 5, 14), False
    )
    assert next_shift(rotation, utc(2026, 1, 5, 9)).user_id == DAVE
    assert next_shift(rotation, utc(2026, 1, 5, 11)) == Shift(
        ALICE, utc(2026, 1, 5, 12), utc(2026, 1, 5, 14), False
    )
    assert next_shift(rotation, utc(2026, 1, 5, 13)) == Shift(
        BOB, utc(2026, 1, 5, 14), utc(2026, 1, 5, 22), False
    )


def test_swap_two_shifts() -> None:
    # Alice and Bob swap their shifts on 5 January: two overrides, each over the other's regular shift.
    swap = (
        Override(BOB, utc(2026, 1, 5, 6), utc(2026, 1, 5, 14)),
        Override(ALICE, utc(2026, 1, 5, 14), utc(2026, 1, 5, 22)),
    )
    rotation = Rotation("UTC", utc(2026, 1, 5, 6), timedelta(hours=8), (ALICE, BOB, CAROL), swap)
    shifts = shifts_between(rotation, utc(2026, 1, 5, 6), utc(2026, 1, 6, 14))
    assert [(s.user_id, s.override) for s in shifts] == [
        (BOB, True),
        (ALICE, True),
        (CAROL, False),
        (ALICE, False),
    ]


def test_latest_starting_override_wins() -> None:
    week = Override(DAVE, utc(2026, 1, 5), utc(2026, 1, 12))
    afternoon = Override(CAROL, utc(2026, 1, 7, 12), utc(2026, 1, 7, 18))
    rotation = Rotation("UTC", utc(2026, 1, 1), timedelta(days=1), (ALICE, BOB), (afternoon, week))
    assert shift_at(rotation, utc(2026, 1, 7, 11)) == Shift(DAVE, utc(2026, 1, 5), utc(2026, 1, 7, 12), True)
    assert shift_at(rotation, utc(2026, 1, 7, 13)) == Shift(
        CAROL, utc(2026, 1, 7, 12), utc(2026, 1, 7, 18), True
    )
    assert shift_at(rotation, utc(2026, 1, 7, 18)) == Shift(DAVE, utc(2026, 1, 7, 18), utc(2026, 1, 12), True)
    assert shift_at(rotation, utc(2026, 1, 12)).override is False


def test_no_members() -> None:
    rotation = Rotation("Europe/Berlin", berlin(2026, 1, 5, 9), timedelta(days=7), ())
    assert shift_at(rotation, utc(2026, 2, 1)) == Shift(None, FAR_PAST, FAR_FUTURE, False)
    assert next_shift(rotation, utc(2026, 2, 1)) == Shift(None, FAR_FUTURE, FAR_FUTURE, False)
    cover = Override(DAVE, utc(2026, 2, 2), utc(2026, 2, 3))
    covered = Rotation("Europe/Berlin", berlin(2026, 1, 5, 9), timedelta(days=7), (), (cover,))
    assert shift_at(covered, utc(2026, 2, 1)) == Shift(None, FAR_PAST, utc(2026, 2, 2), False)
    assert next_shift(covered, utc(2026, 2, 1)) == Shift(DAVE, utc(2026, 2, 2), utc(2026, 2, 3), True)
    assert next_shift(covered, utc(2026, 2, 2, 12)) == Shift(None, utc(2026, 2, 3), FAR_FUTURE, False)


# ------------------------------------------------------------------------------------------ property

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
# 2026 offset changes (UTC instant, zone): spring forward and fall back in Berlin, New York and Sydney
CHANGES = [
    (datetime(2026, 3, 29, 1, tzinfo=UTC), "Europe/Berlin"),
    (datetime(2026, 10, 25, 1, tzinfo=UTC), "Europe/Berlin"),
    (datetime(2026, 3, 8, 7, tzinfo=UTC), "America/New_York"),
    (datetime(2026, 11, 1, 6, tzinfo=UTC), "America/New_York"),
    (datetime(2026, 4, 4, 16, tzinfo=UTC), "Australia/Sydney"),
    (datetime(2026, 10, 3, 16, tzinfo=UTC), "Australia/Sydney"),
]
LENGTHS = [timedelta(minutes=m) for m in (30, 60, 90, 8 * 60, 12 * 60, 24 * 60, 48 * 60)]


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rotation, datetime, datetime]:
    """A rotation and a window [first, end), mostly around an offset change of the rotation's zone.

    The rotation usually starts 0-3 days before the change at about the wall time of the change (local time
    just before it, +-90 min), so that with shifts of whole hours or days a boundary falls into the gap or
    the fold; the window then spans the change.
    """
    change, zone = draw(st.sampled_from(CHANGES))
    if draw(st.integers(0, 3)) == 0:  # a quarter of the cases: any zone, anywhere within 30 days
        zone = draw(st.sampled_from(ZONES))
        change += minutes(draw(st.integers(-30 * 1440, 30 * 1440)))
    tz = ZoneInfo(zone)
    wall = (change - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) + timedelta(seconds=1)
    start_wall = wall - timedelta(days=draw(st.integers(0, 3))) + minutes(draw(st.integers(-90, 90)))
    start = start_wall.replace(tzinfo=tz)
    first = change - minutes(draw(st.integers(0, 1440)))
    end = change + minutes(draw(st.integers(1, 1440)))
    overrides = tuple(
        Override(user, change + minutes(offset), change + minutes(offset + length))
        for user, offset, length in draw(
            st.lists(
                st.tuples(st.integers(10, 12), st.integers(-1440, 1440), st.integers(1, 1440)), max_size=3
            )
        )
    )
    rotation = Rotation(
        time_zone=zone,
        start=start,
        shift_length=draw(st.one_of(st.sampled_from(LENGTHS), st.integers(15, 3000).map(minutes))),
        members=tuple(draw(st.lists(st.integers(1, 5), max_size=4))),
        overrides=overrides,
    )
    return rotation, first, end


def expected_user(rotation: Rotation, at: datetime) -> tuple[int | None, bool] | None:
    """Who should be on call, by the definition; None where the wall clock is ambiguous (second pass of a fold)."""
    covering = [(o.start, i, o) for i, o in enumerate(rotation.overrides) if o.start <= at < o.end]
    if covering:
        return max(covering, key=lambda c: (c[0], c[1]))[2].user_id, True
    if not rotation.members or at < rotation.start:
        return None, False
    zone = ZoneInfo(rotation.time_zone)
    # via UTC: astimezone() into the datetime's own zone would keep a wall time that does not exist
    local_at = at.astimezone(UTC).astimezone(zone)
    if local_at.fold == 1 and local_at.replace(fold=0).astimezone(UTC) != at:
        return None  # the repeated hour: the formula on wall time does not apply there
    local_start = rotation.start.astimezone(UTC).astimezone(zone)
    naive = local_at.replace(tzinfo=None) - local_start.replace(tzinfo=None)
    return rotation.members[(naive // rotation.shift_length) % len(rotation.members)], False


@settings(deadline=None, database=None, max_examples=1000)
@given(scenario=scenarios(), probes=st.lists(st.floats(0, 1), max_size=5))
def test_property_shift_at_is_consistent_with_shifts_between(
    scenario: tuple[Rotation, datetime, datetime], probes: list[float]
) -> None:
    rotation, first, end = scenario
    shifts = shifts_between(rotation, first, end)
    assert shifts
    assert shifts[0].start <= first < shifts[0].end
    assert shifts[-1].start < end <= shifts[-1].end
    for a, b in itertools.pairwise(shifts):
        assert a.end == b.start  # contiguous, no gaps, no overlaps
        assert next_shift(rotation, a.start) == b
    for shift in shifts:
        assert shift.start < shift.end
        assert shift_at(rotation, shift.start) == shift
        assert shift_at(rotation, shift.end - timedelta(seconds=1)) == shift
    points = [min(first + (end - first) * fraction, end - timedelta(microseconds=1)) for fraction in probes]
    points += [shift.start for shift in shifts if first <= shift.start]
    points += [
        t + delta
        for t, _ in CHANGES
        for delta in (timedelta(0), minutes(17), minutes(59))
        if first <= t + delta < end
    ]
    for at in points:
        found = shift_at(rotation, at)
        assert found.start <= at < found.end
        assert found in shifts
        expected = expected_user(rotation, at)
        if expected is not None:
            assert (found.user_id, found.override) == expected
