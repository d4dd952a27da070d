"""The incident core: domains, categories, teams, incidents and their append-only timeline."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import date
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .inserts import CompiledInsert

REFERENCE_PREFIX = "INC-"
REFERENCE_RE = re.compile(r"^INC-(\d{1,12})$", re.IGNORECASE)


def reference_for(pk: int | None) -> str | None:
    """The reference of an incident by its id (INC-000042), without loading it."""
    return f"{REFERENCE_PREFIX}{pk:06d}" if pk else None


class Domain(models.Model):
    """A field of incidents (IT service, security, medical). Admins may add more."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    restricted = models.BooleanField(
        default=False,
        help_text=_("Incidents of a restricted domain are visible only to teams that handle it."),
    )
    requires_harm_level = models.BooleanField(
        default=False, help_text=_("Classifying needs a patient-impact level (medical incidents).")
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    class Tier(models.IntegerChoices):
        DESK = 1, _("Tier 1 (service desk)")
        SPECIALIST = 2, _("Tier 2 (specialists)")
        EXPERT = 3, _("Tier 3 (experts and vendors)")

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, default=Tier.DESK)
    email = models.EmailField(blank=True)
    domains = models.ManyToManyField(
        Domain, blank=True, related_name="teams", help_text=_("Domains it handles.")
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
    )

    class Meta:
        ordering = ["tier", "name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class Qualification(models.Model):
    """A skill or licence (a nursing licence, a security clearance) that a category may require."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    holders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="qualifications", through="QualificationHolder"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class QualificationHolderQuerySet(models.QuerySet["QualificationHolder"]):
    def valid_on(self, day: date) -> QualificationHolderQuerySet:
        """Holds valid on `day` (an open start or end is no limit)."""
        return self.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=day)).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=day)
        )


class QualificationHolder(models.Model):
    """Someone holds a qualification, from and until a date (a licence that expires); open ends are no limit."""

    qualification = models.ForeignKey(Qualification, on_delete=models.CASCADE, related_name="holds")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualification_holds"
    )
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)

    objects = QualificationHolderQuerySet.as_manager()

    class Meta:
        # The table of the plain many-to-many this replaced (migration 0015 keeps its rows).
        db_table = "incidents_qualification_holders"
        unique_together = [("qualification", "user")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=F("valid_from")),
                name="qualification_holder_dates_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} holds {self.qualification}"


class Category(models.Model):
    """A node of a domain's category tree, addressed by its slash path (``network/vpn``)."""

    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="categories")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    path = models.CharField(max_length=400, editable=False)
    default_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    required_qualification = models.ForeignKey(
        Qualification,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="categories",
        help_text=_("Only people holding it are assigned or paged."),
    )
    active = models.BooleanField(
        default=True,
        help_text=_("Inactive: no longer offered for new reports; kept on the incidents that have it."),
    )

    class Meta:
        ordering = ["domain__slug", "path"]
        verbose_name_plural = "categories"
        constraints = [models.UniqueConstraint(fields=["domain", "path"], name="category_path_unique")]

    def __str__(self) -> str:
        return f"{self.domain.slug}:{self.path}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.path = f"{self.parent.path}/{self.slug}" if self.parent_id and self.parent else self.slug
        super().save(*args, **kwargs)


PROBLEM_REFERENCE_PREFIX = "PRB-"


class Problem(models.Model):
    """A common cause behind several incidents: its root cause, workaround and follow-up actions.

    States: ``proposed`` (suggested by the recurrence check, not yet accepted by a person), ``open``
    (being investigated), ``known_error`` (root cause and workaround known; the ``known_error`` flag
    stays set from then on), ``resolved`` (the fix is in place) and ``closed`` (every follow-up done, or
    a proposal turned down). Only incidents.problems changes the state.
    """

    class State(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        OPEN = "open", _("Open")
        KNOWN_ERROR = "known_error", _("Known error")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    workaround = models.TextField(blank=True)
    known_error = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="problems",
        help_text=_("A problem of a restricted domain is visible only to the teams that handle it."),
    )  # fmt: skip
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="problems"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="problems")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_problems",
    )
    # Set only on proposals of the recurrence check: the same cluster is proposed once.
    proposal_key = models.CharField(max_length=120, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["proposed", "open", "known_error", "resolved", "closed"]),
                name="problem_state_valid",
            )
        ]
        indexes = [models.Index(fields=["state", "-id"], name="problem_state_idx")]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        return f"{PROBLEM_REFERENCE_PREFIX}{self.pk:06d}" if self.pk else ""


class FollowUpAction(models.Model):
    """Something to do so that the problem does not come back; its owner is reminded daily until done."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="follow_ups")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="follow_up_actions"
    )
    due_date = models.DateField()
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [
            models.Index(
                fields=["due_date"], name="follow_up_open_due_idx", condition=Q(done_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return self.title


class IncidentQuerySet(models.QuerySet["Incident"]):
    def open(self) -> IncidentQuerySet:
        """Not closed or cancelled: resolved incidents are still open (they may be reopened)."""
        return self.filter(state__in=Incident.OPEN_STATES)

    def active(self) -> IncidentQuerySet:
        """Being worked on: open and not yet resolved (the backlog)."""
        return self.filter(state__in=Incident.ACTIVE_STATES)

    def final(self) -> IncidentQuerySet:
        """Closed or cancelled: the record is frozen."""
        return self.filter(state__in=Incident.FINAL_STATES)

    def by_reference(self, reference: str) -> IncidentQuerySet:
        pk = Incident.pk_from_reference(reference)
        return self.filter(pk=pk) if pk is not None else self.none()


class SlaStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    WARNING = "warning", _("Warning")
    BREACHED = "breached", _("Breached")
    MET = "met", _("Met")
    PAUSED = "paused", _("Paused")
    # The condition cleared by itself (a monitoring resolve) before anyone responded: no response to measure.
    CLEARED = "cleared", _("Cleared before a response")


STATE_VALUES = [
    "received",
    "classified",
    "responding",
    "escalated",
    "on_hold",
    "resolved",
    "closed",
    "cancelled",
]


class Incident(CompiledInsert, models.Model):  # inserted on every report: its INSERT compiled once
    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        CLASSIFIED = "classified", _("Classified")
        RESPONDING = "responding", _("Responding")
        ESCALATED = "escalated", _("Escalated")
        ON_HOLD = "on_hold", _("On hold")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")

    class Outcome(models.TextChoices):
        NEAR_MISS = "near_miss", _("Near miss (stopped before it happened)")
        NO_HARM = "no_harm", _("Happened, no harm")
        HARM = "harm", _("Harm done")

    class HarmLevel(models.TextChoices):
        L0 = "0", _("0 - did not reach the patient")
        L1 = "1", _("1 - reached the patient, no harm")
        L2 = "2", _("2 - observation needed")
        L3A = "3a", _("3a - simple treatment")
        L3B = "3b", _("3b - intensive treatment")
        L4A = "4a", _("4a - lasting harm, no functional impairment")
        L4B = "4b", _("4b - lasting harm with functional impairment")
        L5 = "5", _("5 - death")

    class Impact(models.IntegerChoices):
        ORGANISATION = 1, _("Organisation-wide")
        DEPARTMENT = 2, _("A department or many users")
        USER = 3, _("One user")

    class Urgency(models.IntegerChoices):
        HIGH = 1, _("High")
        MEDIUM = 2, _("Medium")
        LOW = 3, _("Low")

    class Channel(models.TextChoices):
        WEB = "web", _("Web form")
        API = "api", _("API")
        EMAIL = "email", _("E-mail")
        MONITORING = "monitoring", _("Monitoring")
        PHONE = "phone", _("Phone")
        IMPORT = "import", _("Import")

    class HoldReason(models.TextChoices):
        AWAITING_REPORTER = "awaiting_reporter", _("Awaiting the reporter")
        AWAITING_VENDOR = "awaiting_vendor", _("Awaiting a vendor")

    class ResolutionCode(models.TextChoices):
        FIXED = "fixed", _("Fixed")
        WORKAROUND = "workaround", _("Workaround in place")
        CONFIGURATION = "configuration", _("Configuration changed")
        USER_ERROR = "user_error", _("User error / training")
        THIRD_PARTY = "third_party", _("Fixed by a third party")
        NO_FAULT_FOUND = "no_fault_found", _("No fault found")
        OTHER = "other", _("Other")

    class CancelReason(models.TextChoices):
        DUPLICATE = "duplicate", _("Duplicate")
        SPAM = "spam", _("Spam")
        NOT_AN_INCIDENT = "not_an_incident", _("Not an incident")
        WITHDRAWN = "withdrawn", _("Withdrawn by the reporter")

    # The one definition of each group of states (SPEC section 2); every module uses these or the
    # queryset methods of the same names.
    FINAL_STATES = (State.CLOSED, State.CANCELLED)
    ACTIVE_STATES = (State.RECEIVED, State.CLASSIFIED, State.RESPONDING, State.ESCALATED, State.ON_HOLD)
    OPEN_STATES = (*ACTIVE_STATES, State.RESOLVED)

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    description_html = models.TextField(blank=True, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)

    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents"
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    harm_level = models.CharField(max_length=2, choices=HarmLevel.choices, blank=True)
    impact = models.PositiveSmallIntegerField(choices=Impact.choices, null=True, blank=True)
    urgency = models.PositiveSmallIntegerField(choices=Urgency.choices, null=True, blank=True)
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    priority_override_reason = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEB)

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reported_incidents",
    )
    reporter_email = models.EmailField(blank=True)
    confidential = models.BooleanField(default=False)
    tracking_token = models.CharField(max_length=64, unique=True, editable=False)

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_incidents",
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    hold_reason = models.CharField(max_length=24, choices=HoldReason.choices, blank=True)
    held_from = models.CharField(max_length=16, choices=State.choices, blank=True)
    held_at = models.DateTimeField(null=True, blank=True)

    received_at = models.DateTimeField(default=timezone.now)
    classified_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # Kept by the SLA engine (escalation.sla) under the incident's row lock; null while no target applies.
    sla_response = models.CharField(max_length=10, choices=SlaStatus.choices, blank=True)
    sla_resolution = models.CharField(max_length=10, choices=SlaStatus.choices, blank=True)

    resolution_summary = models.TextField(blank=True)
    # When the reporter said "this fixed it" (confirmed for this resolution when >= resolved_at).
    reporter_confirmed_at = models.DateTimeField(null=True, blank=True)
    cause = models.TextField(blank=True)
    measures = models.TextField(blank=True)
    resolution_code = models.CharField(max_length=20, choices=ResolutionCode.choices, blank=True)
    auto_closed = models.BooleanField(default=False)
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="duplicates"
    )
    problem = models.ForeignKey(
        Problem, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    external_id = models.CharField(max_length=120, null=True, blank=True, unique=True)
    # Imported history (incidents.importer): the run that brought it, the other tool's names of people who
    # have no account here, and whether the export cut the history's beginning (its earlier milestones are
    # unknown, so the report's durations and rates leave it out; docs/reporting.md).
    import_run = models.ForeignKey(
        "ImportRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    reporter_name = models.CharField(max_length=200, blank=True)
    assignee_name = models.CharField(max_length=200, blank=True)
    history_started_late = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        permissions = [("view_confidential_reporter", "Can see who reported a confidential incident")]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=STATE_VALUES), name="incident_state_valid"),
            models.CheckConstraint(
                condition=Q(priority__isnull=True) | Q(priority__gte=1, priority__lte=5),
                name="incident_priority_1_5",
            ),
            models.CheckConstraint(
                condition=Q(impact__isnull=True) | Q(impact__gte=1, impact__lte=3), name="incident_impact_1_3"
            ),
            models.CheckConstraint(
                condition=Q(urgency__isnull=True) | Q(urgency__gte=1, urgency__lte=3),
                name="incident_urgency_1_3",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "priority", "-received_at"], name="incident_queue_idx"),
            # Equality filters, then -id: a filtered, newest-first page is an index range scan, not a sort.
            models.Index(fields=["team", "state", "-id"], name="incident_team_state_idx"),
            models.Index(fields=["assignee", "state", "-id"], name="incident_assignee_state_idx"),
            models.Index(fields=["state", "-id"], name="incident_state_idx"),
            models.Index(fields=["-priority", "-id"], name="incident_priority_idx"),
            # Few incidents are in warning or breach at a time: partial indexes make `sla=` filters cheap.
            models.Index(
                fields=["sla_response", "-id"],
                name="incident_sla_response_idx",
                condition=Q(sla_response__in=["warning", "breached"]),
            ),
            models.Index(
                fields=["sla_resolution", "-id"],
                name="incident_sla_resolution_idx",
                condition=Q(sla_resolution__in=["warning", "breached"]),
            ),
            models.Index(fields=["reporter", "-id"], name="incident_reporter_idx"),
            models.Index(fields=["domain", "-id"], name="incident_domain_idx"),
            models.Index(fields=["-created_at"], name="incident_created_idx"),
            models.Index(fields=["state", "resolved_at"], name="incident_state_resolved_idx"),
            # The console's priority sort (P1 first, unprioritised last, oldest first within a priority): its
            # keyset cursor, a row comparison on (COALESCE(priority, 6), id), is a range of this index.
            models.Index(
                Coalesce("priority", models.Value(6), output_field=models.IntegerField()),
                "id",
                name="incident_priority_key_idx",
            ),
            # "To classify", counted on every queue page up to a cap: newest received first, wherever they are.
            models.Index(fields=["-id"], name="incident_received_idx", condition=Q(state="received")),
            # Reports (reporting.figures): the period is a range of received_at, and the backlog looks up
            # incidents by when they left it (resolved, else closed, else cancelled; null while open).
            models.Index(fields=["received_at"], name="incident_received_at_idx"),
            models.Index(Coalesce("resolved_at", "closed_at", "cancelled_at"), name="incident_ended_idx"),
            # The recurrence probes (incidents.problems): the incidents that count, by category or by domain.
            models.Index(
                fields=["category", "received_at"],
                name="incident_recurrence_cat_idx",
                condition=Q(problem__isnull=True) & ~Q(state="cancelled"),
            ),
            models.Index(
                fields=["domain", "received_at"],
                name="incident_recurrence_dom_idx",
                condition=Q(problem__isnull=True) & ~Q(state="cancelled"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.tracking_token:
            self.tracking_token = secrets.token_urlsafe(32)  # 256 bits
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("api:incident-detail", kwargs={"reference": self.reference})

    @property
    def reference(self) -> str:
        return reference_for(self.pk) or ""

    @staticmethod
    def pk_from_reference(reference: str) -> int | None:
        match = REFERENCE_RE.match(reference.strip())
        return int(match.group(1)) if match else None

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES


class TimelineQuerySet(models.QuerySet["TimelineEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("The timeline is append-only: entries cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The timeline is append-only: entries cannot be deleted.")


class AppendOnlyError(Exception):
    pass


class TimelineEntry(CompiledInsert, models.Model):
    """One change to an incident. Written once, never edited or deleted (a PostgreSQL trigger enforces it too)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Reported")
        STATE_CHANGED = "state_changed", _("State changed")
        FIELDS_CHANGED = "fields_changed", _("Fields changed")
        ASSIGNED = "assigned", _("Assigned")
        PRIORITY_OVERRIDDEN = "priority_overridden", _("Priority overridden")
        COMMENT = "comment", _("Comment")
        ATTACHMENT = "attachment", _("Attachment")
        SLA = "sla", _("SLA")
        ESCALATION = "escalation", _("Escalation")
        NOTIFICATION = "notification", _("Notification sent")
        REPORTER_CONFIRMED = "reporter_confirmed", _("Reporter confirmed the fix")
        RATING = "rating", _("Satisfaction rating")
        PROBLEM = "problem", _("Problem record")
        MAJOR_INCIDENT = "major_incident", _("Major incident")
        ALERT = "alert", _("Monitoring alert")

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    action = models.CharField(max_length=20, blank=True)
    public = models.BooleanField(default=False, help_text=_("Shown to the reporter."))
    data = models.JSONField(default=dict, blank=True)
    comment = models.ForeignKey("Comment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    attachment = models.ForeignKey(
        "Attachment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TimelineQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"
        indexes = [models.Index(fields=["incident", "at", "id"], name="timeline_incident_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("The timeline is append-only: entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The timeline is append-only: entries cannot be deleted.")


class Comment(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    body = models.TextField()
    body_html = models.TextField(editable=False)
    public = models.BooleanField(default=False, help_text=_("Public comments are shown to the reporter."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "created_at"], name="comment_incident_idx")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.incident_id}"


def attachment_storage() -> Storage:
    return storages["attachments"]


def attachment_path(instance: Attachment, filename: str) -> str:
    # Never the uploader's file name: a random name, sharded by incident.
    return f"{instance.incident_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="attachments")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    file = models.FileField(upload_to=attachment_path, storage=attachment_storage, max_length=200)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    public = models.BooleanField(default=True, help_text=_("Visible to the reporter."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.filename


assert Incident.State.values == STATE_VALUES, "STATE_VALUES must list Incident.State in order"  # noqa: S101


class SavedQueueView(models.Model):
    """A console queue filter a user saved under a name ("my open", "unassigned P1-P2", ...)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_views")
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=1000, blank=True, help_text=_("The queue's query string."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_queue_view_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class SatisfactionRating(models.Model):
    """The reporter's one-click rating of a closed incident (1 poor .. 5 excellent); the last click counts."""

    incident = models.OneToOneField(Incident, on_delete=models.PROTECT, related_name="rating")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="satisfaction_score_1_5")
        ]

    def __str__(self) -> str:
        return f"{self.incident_id}: {self.score}/5"


class AuditEvent(models.Model):
    """Who read or changed a restricted (security, medical) incident, when and how (issue 11, Build 8).

    Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE, whoever asks (migration 0014). The
    references are plain ids without foreign-key constraints, so deleting a user or an incident can never
    cascade into the audit trail; the username is kept as it was at the time.
    """

    class What(models.TextChoices):
        VIEW = "view", _("Viewed")
        CHANGE = "change", _("Changed")

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    username = models.CharField(max_length=150)
    incident = models.ForeignKey(
        Incident, on_delete=models.DO_NOTHING, db_constraint=False, related_name="audit_events"
    )
    what = models.CharField(max_length=10, choices=What.choices)
    detail = models.CharField(
        max_length=200, blank=True, help_text=_("The route or action, e.g. GET timeline.")
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"], name="audit_incident_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.what} {self.incident_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("The audit trail is append-only.")


class ImportRun(models.Model):
    """One run of ``import_incidents`` that wrote something: who, when, the mapping, the counts, warnings."""

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_by = models.CharField(
        max_length=150, blank=True, help_text=_("The operator as the command saw them.")
    )
    source = models.CharField(max_length=500, help_text=_("The file imported."))
    mapping_name = models.CharField(max_length=500, blank=True)
    mapping = models.JSONField(null=True, blank=True, help_text=_("The mapping used, as read."))
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    imported = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    existing = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    teams_created = models.JSONField(default=list, blank=True)
    messages = models.JSONField(
        default=list, blank=True, help_text=_("Errors and warnings (the first 1,000).")
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.source}"


class ReportSubmission(models.Model):
    """One sending of the web report form, keyed by the form's one-time token.

    The row is claimed first, in the transaction that then creates the incident and links it: a second
    submit of the same form (a double click, a resend after a timeout, the back button) waits on the unique
    key, writes nothing, and finds the incident the first submit made.
    """

    token = models.CharField(max_length=64, unique=True)
    incident = models.OneToOneField(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="report_submission"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"report form {self.token[:8]}…"
