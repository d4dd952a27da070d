"""What reporting keeps: which weekly digests were sent, so that each goes out once."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class DigestSent(models.Model):
    """One weekly digest e-mailed to one manager. The unique pair makes a second run a no-op."""

    manager = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week = models.DateField(help_text="The Monday the reported week starts on (desk time zone).")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-week", "manager"]
        constraints = [models.UniqueConstraint(fields=["manager", "week"], name="digest_once_per_week")]

    def __str__(self) -> str:
        return f"digest {self.week} to {self.manager_id}"


class ArrayField(models.Field):
    """A PostgreSQL array of `base` (a column type), as psycopg2 reads and writes Python lists. Not
    django.contrib.postgres's: importing that needs psycopg2, which a SQLite installation may not have (the
    per-day figures are used on PostgreSQL only; on SQLite the table exists and stays empty)."""

    def __init__(self, base: str = "integer", **kwargs: Any) -> None:
        self.base = base
        super().__init__(**kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["base"] = self.base
        return name, path, args, kwargs

    def db_type(self, connection: Any) -> str:
        return f"{self.base}[]"


# The per-day counts a report sums (reporting.daily): one column each, named as figures.headline_counts names them.
DAY_COUNTS: tuple[str, ...] = (
    "total",
    "state_received",
    "state_classified",
    "state_responding",
    "state_escalated",
    "state_on_hold",
    "state_resolved",
    "state_closed",
    "state_cancelled",
    "late",
    "resolution_unknown",
    "late_responded",
    "late_resolved",
    "late_ever_resolved",
    "late_classified",
    "mtta_count",
    "mttr_count",
    "response_met",
    "response_breached",
    "response_cleared",
    "resolution_met",
    "resolution_breached",
    "response_none",
    "resolution_none",
    "classified",
    "escalated",
    "ever_resolved",
    "reopened",
    "fcr",
    "with_outcome",
    "near_miss",
    "rated",
    "satisfied",
    "score_sum",
)


class DayFigures(models.Model):
    """The report's counts and duration histograms of the incidents received on one day (desk time zone)
    with one domain, team, category and priority, as they stand at the last rebuild of that day.

    Rebuilt, never edited: reporting.daily.rebuild recomputes whole days from the incidents. A day with a
    change since (a row of DirtySlot) is read from the incidents instead, so a report is always exact.
    Keys are plain integers, not foreign keys: a deleted category must not cascade here (the day is dirty).
    """

    day = models.DateField(db_index=True)
    domain_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    category_id = models.BigIntegerField(null=True)
    priority = models.SmallIntegerField(null=True)
    for _name in DAY_COUNTS:
        vars()[_name] = models.IntegerField(default=0)
    del _name
    # Sparse log-histograms of the response and resolution times: bin numbers, how many durations in each
    # and their sum in seconds (reporting.daily.BIN_RATIO; docs/reporting.md).
    mtta_bins = ArrayField("smallint", default=list)
    mtta_counts = ArrayField("integer", default=list)
    mtta_sums = ArrayField("double precision", default=list)
    mttr_bins = ArrayField("smallint", default=list)
    mttr_counts = ArrayField("integer", default=list)
    mttr_sums = ArrayField("double precision", default=list)

    def __str__(self) -> str:
        return f"{self.day} d{self.domain_id} t{self.team_id} c{self.category_id} p{self.priority}"


class DirtySlot(models.Model):
    """A quarter hour of `received_at` whose incidents changed in transaction `xid`: its day's DayFigures
    are stale until the rebuild that sees the change. Written by database triggers on the incidents and
    their ratings (migration 0002), so no write path can forget it; a quarter hour maps to one local day
    in every time zone. One row per slot and writing transaction: the rebuild deletes only the rows its
    snapshot saw, so a change committed during a rebuild leaves its day dirty."""

    slot = models.DateTimeField()
    xid = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slot", "xid"], name="dirty_slot_once_per_xact")]

    def __str__(self) -> str:
        return f"{self.slot} by {self.xid}"


class WeekHistograms(models.Model):
    """The response and resolution time histograms of the incidents received in one ISO week (Monday, desk
    time zone) with one domain: DayFigures' histograms of the week's seven days, merged (reporting.daily).

    A roll-up for long reports: a day row holds a few dozen durations, so its histogram has as many bins as
    durations and a year of day rows is as many bins as incidents; a week of a domain merges them into a few
    hundred. Rebuilt with its days, in the same transaction (reporting.daily.rebuild), so it always equals
    the sum of its DayFigures; a report uses it only for a week whose seven days are whole, inside the
    period and clean, and only when the report is narrowed by nothing finer than the domain.
    """

    week = models.DateField()
    domain_id = models.BigIntegerField(null=True)
    mtta_bins = ArrayField("smallint", default=list)
    mtta_counts = ArrayField("integer", default=list)
    mtta_sums = ArrayField("double precision", default=list)
    mttr_bins = ArrayField("smallint", default=list)
    mttr_counts = ArrayField("integer", default=list)
    mttr_sums = ArrayField("double precision", default=list)

    class Meta:
        indexes = [models.Index(fields=["week"], name="week_histograms_week_idx")]

    def __str__(self) -> str:
        return f"week {self.week} d{self.domain_id}"


class DayIncidents(models.Model):
    """How many incidents were received on one day (desk time zone) and left the backlog on another (or are
    open: `ended_day` null), with one domain, team, category, priority and problem record: what the backlog
    and the recurring problems of a report read (reporting.daily), instead of every incident of the period.

    Rebuilt with its received day (reporting.daily.rebuild), like DayFigures: a change to an incident marks
    its received day dirty (the triggers of migration 0002), so a change of when it ended is seen too.
    """

    day = models.DateField()
    ended_day = models.DateField(null=True)
    domain_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    category_id = models.BigIntegerField(null=True)
    priority = models.SmallIntegerField(null=True)
    problem_id = models.BigIntegerField(null=True)
    n = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="day_incidents_day_idx"),
            models.Index(fields=["ended_day"], name="day_incidents_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} to {self.ended_day}: {self.n}"
