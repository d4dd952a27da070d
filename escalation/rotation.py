"""On-call rotations: who is on call at an instant, and who is next. Pure Python, no database.

Regular shifts are laid out in LOCAL wall-clock time: shift k starts at local_naive(rotation.start) +
k * shift_length, so a daily 09:00 handover stays at 09:00 across DST (the shift around a change is an hour
shorter or longer in real time). A boundary that falls into a DST gap moves to the first instant after the
gap; one that falls into a fold uses the first occurrence. Shift k is [boundary k, boundary k+1) in real
time; this is the formula floor((local_naive(at) - local_naive(start)) / shift_length) everywhere except
during the repeated hour of a fold, where the wall clock runs backwards and the formula would hand the pager
back; there the shift that started at the first occurrence simply continues.

Overrides (holiday cover, swaps) win over regular shifts; when overrides overlap, the latest-starting one
wins (on equal starts, the later one in the tuple). A `Shift` is one contiguous period of one source: an
override's [start, end) or a regular shift, each clipped where a winning override cuts in. Adjacent shifts
of the same person are not merged. Open-ended periods (before the rotation starts, or for ever when the
rotation has no members) use FAR_PAST / FAR_FUTURE. All returned datetimes are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "FAR_FUTURE",
    "FAR_PAST",
    "Override",
    "Rotation",
    "Shift",
    "next_shift",
    "shift_at",
    "shifts_between",
]

FAR_PAST = datetime.min.replace(tzinfo=UTC)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)

_SECOND = timedelta(seconds=1)


def _require_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got the naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Override:
    """`user_id` is on call during [start, end), whatever the rotation says."""

    user_id: int
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = _require_aware(self.start, "Override.start"), _require_aware(self.end, "Override.end")
        if end <= start:
            raise ValueError(
                f"An override must end after it starts ({start.isoformat()} .. {end.isoformat()})"
            )


@dataclass(frozen=True)
class Shift:
    user_id: int | None  # None: nobody is on call
    start: datetime
    end: datetime
    override: bool


@dataclass(frozen=True)
class Rotation:
    time_zone: str
    start: datetime  # aware; the first shift starts here
    shift_length: timedelta  # LOCAL wall-clock length
    members: tuple[int, ...]  # user ids in order
    overrides: tuple[Override, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.start, "Rotation.start")
        ZoneInfo(self.time_zone)  # raises ZoneInfoNotFoundError for unknown zones
        if self.shift_length <= timedelta(0):
            raise ValueError(f"shift_length must be positive, got {self.shift_length}")


# ------------------------------------------------------------------------------------ local time


def _local_naive(zone: ZoneInfo, instant: datetime) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _to_instant(zone: ZoneInfo, local: datetime) -> datetime:
    """A local wall time as an aware UTC instant: first occurrence in a fold, first instant after a gap."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _local_naive(zone, first) == local:
        return first
    # In a gap. With fold=0 the offset before the change applies, which lands after the change (u_late); with
    # fold=1 the offset after the change applies, which lands before it (u_early). Bisect for the change.
    u_late = first
    u_early = (
        local.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(microsecond=0)
    )  # changes are on whole seconds
    if u_early > u_late:  # pragma: no cover - defensive; zoneinfo follows PEP 495
        u_early, u_late = u_late, u_early
    offset_late = u_late.astimezone(zone).utcoffset()
    lo, hi = 0, int((u_late - u_early) // _SECOND)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (u_early + mid * _SECOND).astimezone(zone).utcoffset() == offset_late:
            hi = mid
        else:
            lo = mid
    return u_early + hi * _SECOND


# ------------------------------------------------------------------------------ regular shifts


class _Regular:
    """The regular shift layout of a rotation (no overrides)."""

    def __init__(self, rotation: Rotation) -> None:
        self.rotation = rotation
        self.zone = ZoneInfo(rotation.time_zone)
        self.start = rotation.start.astimezone(UTC)
        self.local_start = _local_naive(self.zone, self.start)

    def boundary(self, k: int) -> datetime:
        """Start of regular shift k (k >= 0); never before the rotation's start."""
        if k <= 0:
            return self.start
        return max(self.start, _to_instant(self.zone, self.local_start + k * self.rotation.shift_length))

    def shift(self, at: datetime) -> Shift:
        rotation = self.rotation
        if not rotation.members:
            return Shift(None, FAR_PAST, FAR_FUTURE, False)
        if at < self.start:
            return Shift(None, FAR_PAST, self.start, False)
        k = max(0, (_local_naive(self.zone, at) - self.local_start) // rotation.shift_length)
        while k > 0 and self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        member = rotation.members[k % len(rotation.members)]
        return Shift(member, self.boundary(k), self.boundary(k + 1), False)


# -------------------------------------------------------------------------------------- public


def _ranked(rotation: Rotation) -> list[tuple[datetime, datetime, int, int]]:
    """Overrides as (start, end, rank, user_id) in UTC; a higher rank wins."""
    return [
        (o.start.astimezone(UTC), o.end.astimezone(UTC), index, o.user_id)
        for index, o in enumerate(rotation.overrides)
    ]


def shift_at(rotation: Rotation, at: datetime) -> Shift:
    """Who is on call at `at`, and the contiguous period of that shift (see the module docstring)."""
    at = _require_aware(at, "at")
    overrides = _ranked(rotation)
    covering = [o for o in overrides if o[0] <= at < o[1]]
    if covering:
        winner = max(covering, key=lambda o: (o[0], o[2]))
        key = (winner[0], winner[2])
        beaters = [o for o in overrides if (o[0], o[2]) > key]
        start = max([winner[0], *(o[1] for o in beaters if o[1] <= at)])
        end = min([winner[1], *(o[0] for o in beaters if o[0] > at)])
        return Shift(winner[3], start, end, True)
    regular = _Regular(rotation).shift(at)
    start = max([regular.start, *(o[1] for o in overrides if o[1] <= at)])
    end = min([regular.end, *(o[0] for o in overrides if o[0] > at)])
    return Shift(regular.user_id, start, end, False)


def next_shift(rotation: Rotation, at: datetime) -> Shift:
    """The shift after the one at `at` (overrides included): the next handover.

    Returns Shift(None, FAR_FUTURE, FAR_FUTURE, False) if the current period never ends.
    """
    current = shift_at(rotation, at)
    if current.end == FAR_FUTURE:
        return Shift(None, FAR_FUTURE, FAR_FUTURE, False)
    return shift_at(rotation, current.end)


def shifts_between(rotation: Rotation, start: datetime, end: datetime) -> list[Shift]:
    """The shifts overlapping [start, end), in order, contiguous, with their full (unclipped) bounds."""
    cursor, end = _require_aware(start, "start"), _require_aware(end, "end")
    result: list[Shift] = []
    while cursor < end:
        shift = shift_at(rotation, cursor)
        result.append(shift)
        cursor = shift.end
    return result
