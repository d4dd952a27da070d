"""SLA policies and clocks, timers, escalation policies, on-call schedules and the notification outbox.

Deadlines and decisions live here, in the database; Celery only carries prompts to look.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from incidents.inserts import CompiledInsert
from incidents.models import Domain, Incident, Team

from .calendars import TWENTY_FOUR_SEVEN, CalendarSpec, validate_calendar


class BusinessCalendar(models.Model):
    """Time zone, weekly hours and holidays; SLA targets count only the time inside them."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    time_zone = models.CharField(max_length=64, default="UTC")
    always_open = models.BooleanField(default=False, help_text=_("24x7: hours and holidays are ignored."))
    weekly_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Weekday (0 = Monday) to intervals in minutes or "HH:MM", e.g. {"0": [["09:00", "17:00"]]}.'
        ),
    )
    holiday_country = models.CharField(
        max_length=8, blank=True, help_text=_("Country code for public holidays.")
    )
    holiday_subdivision = models.CharField(max_length=16, blank=True)
    extra_holidays = models.JSONField(default=list, blank=True, help_text=_('Closed dates, "YYYY-MM-DD".'))

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Normalised and validated on every save, whatever the path (admin, API, config file, ORM).
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        hours = validate_calendar(
            self.time_zone, self.weekly_hours, self.holiday_country, self.holiday_subdivision
        )
        self.weekly_hours = {
            str(day): [list(interval) for interval in intervals]
            for day, intervals in hours.items()
            if intervals
        }
        try:
            self.extra_holidays = sorted(
                {date.fromisoformat(str(d)).isoformat() for d in self.extra_holidays or []}
            )
        except (TypeError, ValueError) as exc:
            raise ValidationError({"extra_holidays": [f"Dates must be YYYY-MM-DD: {exc}"]}) from exc
        if not self.always_open and not any(hours.values()):
            raise ValidationError({"weekly_hours": ["A calendar that is not 24x7 needs opening hours."]})

    def spec(self) -> CalendarSpec:
        if self.always_open:
            return CalendarSpec(time_zone=self.time_zone, weekly_hours={}, always_open=True)
        return CalendarSpec(
            time_zone=self.time_zone,
            weekly_hours={
                int(day): [tuple(i) for i in intervals] for day, intervals in self.weekly_hours.items()
            },
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
            extra_holidays=frozenset(date.fromisoformat(d) for d in self.extra_holidays),
        )


def calendar_spec(calendar: BusinessCalendar | None) -> CalendarSpec:
    return calendar.spec() if calendar is not None else TWENTY_FOUR_SEVEN


class EscalationPolicy(models.Model):
    """An ordered ladder of steps. Copied onto an incident when its escalation starts."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    team = models.OneToOneField(
        Team,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="escalation_policy",
        help_text=_("Incidents of this team use this policy; otherwise the SLA policy's applies."),
    )

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return self.name


class SlaPolicy(models.Model):
    """Response and resolution targets for incidents of a priority (and optionally a domain)."""

    name = models.CharField(max_length=120)
    priority = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("Empty: any priority."))
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, help_text=_("Empty: any.")
    )
    calendar = models.ForeignKey(
        BusinessCalendar, null=True, blank=True, on_delete=models.PROTECT, help_text=_("Empty: 24x7.")
    )
    response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    warning_percent = models.PositiveSmallIntegerField(default=75)
    escalation_policy = models.ForeignKey(EscalationPolicy, null=True, blank=True, on_delete=models.PROTECT)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.CheckConstraint(condition=Q(response_minutes__gt=0), name="sla_response_positive"),
            models.CheckConstraint(condition=Q(resolution_minutes__gt=0), name="sla_resolution_positive"),
            models.CheckConstraint(
                condition=Q(warning_percent__gte=1, warning_percent__lte=99), name="sla_warn_1_99"
            ),
            models.CheckConstraint(
                condition=Q(priority__isnull=True) | Q(priority__gte=1, priority__lte=5),
                name="sla_priority_1_5",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if not self.response_minutes or self.response_minutes <= 0:
            errors["response_minutes"] = ["Must be a positive number of minutes."]
        if not self.resolution_minutes or self.resolution_minutes <= 0:
            errors["resolution_minutes"] = ["Must be a positive number of minutes."]
        if not 1 <= (self.warning_percent or 0) <= 99:
            errors["warning_percent"] = ["Must be between 1 and 99."]
        if errors:
            raise ValidationError(errors)


FINAL_SUFFIX = "-final"


class SlaTarget(models.Model):
    """A regulatory or reporting deadline held as a clock (e.g. a preliminary report within 72 h)."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=160)
    minutes = models.PositiveIntegerField()
    business_time = models.BooleanField(
        default=False, help_text=_("Count only business hours (usually not).")
    )
    harm_levels = models.JSONField(
        default=list, blank=True, help_text=_("Only for these harm levels; empty: all.")
    )
    category_prefix = models.CharField(
        max_length=400, blank=True, help_text=_("Only for categories under it.")
    )
    final_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("A final report is due this long after the incident was received; empty: none."),
    )

    class Meta:
        ordering = ["policy", "minutes"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "slug"], name="sla_target_unique"),
            models.CheckConstraint(condition=Q(minutes__gt=0), name="sla_target_positive"),
            models.CheckConstraint(
                condition=Q(final_minutes__isnull=True) | Q(final_minutes__gt=F("minutes")),
                name="sla_target_final_after_preliminary",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: {self.name}"

    @property
    def final_slug(self) -> str:
        """The clock name of the final report that follows the preliminary one (the target's own slug)."""
        return f"{self.slug}{FINAL_SUFFIX}"

    def applies_to(self, incident: Incident) -> bool:
        if self.harm_levels and incident.harm_level not in self.harm_levels:
            return False
        if self.category_prefix:
            path = incident.category.path if incident.category_id and incident.category else ""
            prefix = self.category_prefix.strip("/")
            return path == prefix or path.startswith(f"{prefix}/")
        return True


class SlaClock(models.Model):
    """One SLA target of one incident in one cycle, in business seconds."""

    class Kind(models.TextChoices):
        RESPONSE = "response", _("Response")
        RESOLUTION = "resolution", _("Resolution")
        TARGET = "target", _("Reporting target")

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="sla_clocks")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    name = models.CharField(max_length=60, default="", blank=True)
    cycle = models.PositiveSmallIntegerField(default=1)
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL)
    calendar = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL)
    target_seconds = models.PositiveIntegerField()
    warn_seconds = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    consumed_seconds = models.PositiveIntegerField(
        default=0, help_text=_("Business seconds used before the run.")
    )
    running_since = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Ended because the condition cleared by itself (no response).")
    )
    epoch = models.PositiveIntegerField(
        default=0, help_text=_("Bumped whenever the clock's timers are re-armed.")
    )

    class Meta:
        ordering = ["incident", "kind", "cycle"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "kind", "name", "cycle"], name="sla_clock_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind}{':' + self.name if self.name else ''} #{self.cycle}"

    @property
    def is_running(self) -> bool:
        return self.running_since is not None and self.completed_at is None and self.cancelled_at is None

    @property
    def status(self) -> str:
        if self.cleared_at is not None:
            return "cleared"
        if self.cancelled_at is not None and self.completed_at is None:
            return "breached" if self.breached_at else ""
        if self.completed_at is not None:
            return (
                "breached" if self.breached_at or (self.due_at and self.completed_at > self.due_at) else "met"
            )
        if self.breached_at is not None:
            return "breached"
        if self.running_since is None:
            return "paused"
        return "warning" if self.warned_at is not None else "pending"


class Timer(models.Model):
    """A decision due at a time: an SLA warning or breach, or an escalation step. Fired at most once."""

    class Kind(models.TextChoices):
        SLA_WARNING = "sla_warning", _("SLA warning")
        SLA_BREACH = "sla_breach", _("SLA breach")
        ESCALATION_STEP = "escalation_step", _("Escalation step")

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        FIRED = "fired", _("Fired")
        CANCELLED = "cancelled", _("Cancelled")

    key = models.CharField(max_length=120, unique=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timers")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    clock = models.ForeignKey(
        SlaClock, null=True, blank=True, on_delete=models.CASCADE, related_name="timers"
    )
    escalation = models.ForeignKey(
        "IncidentEscalation", null=True, blank=True, on_delete=models.CASCADE, related_name="timers"
    )
    step = models.PositiveSmallIntegerField(null=True, blank=True)
    repeat = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at"]
        indexes = [
            models.Index(fields=["due_at"], name="timer_pending_due_idx", condition=Q(state="pending")),
            models.Index(fields=["incident", "state"], name="timer_incident_state_idx"),
        ]

    def __str__(self) -> str:
        return self.key


class EscalationStep(models.Model):
    class Trigger(models.TextChoices):
        SLA_SHARE = "sla_share", _("A share of an SLA target used")
        UNACKNOWLEDGED = "unacknowledged", _("Not acknowledged N minutes after the previous step")

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    sla_kind = models.CharField(
        max_length=12, choices=[("response", "Response"), ("resolution", "Resolution")], default="response"
    )
    share_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    delay_minutes = models.PositiveIntegerField(null=True, blank=True)
    notify_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    notify_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notify_schedule = models.ForeignKey(
        "Schedule", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notify_email = models.EmailField(blank=True)
    notify_webhook = models.ForeignKey(
        "WebhookEndpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notify_manager = models.BooleanField(default=False, help_text=_("Hierarchical: the team's manager."))
    reassign_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    repeat_count = models.PositiveSmallIntegerField(default=0)
    repeat_minutes = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [models.UniqueConstraint(fields=["policy", "position"], name="escalation_step_unique")]

    def __str__(self) -> str:
        return f"{self.policy} step {self.position}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.trigger == self.Trigger.SLA_SHARE and not (
            self.share_percent and 0 < self.share_percent <= 500
        ):
            errors["share_percent"] = ["A share between 1 and 500 % is required for an SLA-share trigger."]
        if self.trigger == self.Trigger.UNACKNOWLEDGED and not self.delay_minutes:
            errors["delay_minutes"] = ["A positive number of minutes is required for this trigger."]
        if self.repeat_count and not self.repeat_minutes:
            errors["repeat_minutes"] = ["Repeating needs an interval."]
        actions = [
            self.notify_team_id, self.notify_user_id, self.notify_schedule_id, self.notify_email,
            self.notify_webhook_id, self.notify_manager, self.reassign_team_id,
        ]  # fmt: skip
        if not any(actions):
            errors["notify_team"] = ["A step needs at least one action."]
        if errors:
            raise ValidationError(errors)

    def snapshot(self) -> dict[str, Any]:
        """What the incident's copy of the policy keeps of this step."""
        return {
            "position": self.position,
            "trigger": self.trigger,
            "sla_kind": self.sla_kind,
            "share_percent": self.share_percent,
            "delay_minutes": self.delay_minutes,
            "notify_team": self.notify_team_id,
            "notify_user": self.notify_user_id,
            "notify_schedule": self.notify_schedule_id,
            "notify_email": self.notify_email,
            "notify_webhook": self.notify_webhook_id,
            "notify_manager": self.notify_manager,
            "reassign_team": self.reassign_team_id,
            "repeat_count": self.repeat_count,
            "repeat_minutes": self.repeat_minutes,
        }


class IncidentEscalation(CompiledInsert, models.Model):  # one per opened incident: its INSERT compiled once
    """A copy of the policy on one incident: editing the policy later changes nothing here."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="escalations")
    epoch = models.PositiveIntegerField()
    policy = models.ForeignKey(EscalationPolicy, null=True, on_delete=models.SET_NULL)
    steps = models.JSONField(default=list)
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["incident", "epoch"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "epoch"], name="incident_escalation_unique")
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} escalation {self.epoch}"


class Schedule(models.Model):
    """An on-call rotation: members in order, shifts of a set length from a start, in a time zone."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="schedules")
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    time_zone = models.CharField(max_length=64, default="UTC")
    start = models.DateTimeField()
    shift_length = models.DurationField(default=timedelta(days=1))

    class Meta:
        ordering = ["team", "slug"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_calendar(self.time_zone, {})
        if not self.shift_length or self.shift_length <= timedelta(0):
            raise ValidationError({"shift_length": ["Shifts must be longer than zero."]})


class ScheduleMember(models.Model):
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["schedule", "position"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "position"], name="schedule_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.schedule}: {self.position}. {self.user}"


class ScheduleOverride(models.Model):
    class Reason(models.TextChoices):
        HOLIDAY = "holiday", _("Holiday cover")
        SWAP = "swap", _("Swap")
        OTHER = "other", _("Other")

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.SWAP)

    class Meta:
        ordering = ["schedule", "start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="override_end_after_start")
        ]

    def __str__(self) -> str:
        return f"{self.schedule}: {self.user} {self.start:%Y-%m-%d %H:%M}"


BLOCKED_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}


def validate_webhook_url(url: str) -> None:
    """http(s) only; never link-local or cloud metadata addresses (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("Only http:// and https:// URLs with a host are allowed.")
    host = parts.hostname.lower().rstrip(".")
    if host in BLOCKED_HOSTS:
        raise ValidationError("Metadata addresses are not allowed.")
    try:
        addresses = {
            str(info[4][0]) for info in socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        }
    except (socket.gaierror, UnicodeError):
        addresses = set()
    for address in addresses | ({host} if _is_ip(host) else set()):
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise ValidationError(f"The address {ip} (link-local, metadata or reserved) is not allowed.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# The incident events an outgoing webhook may subscribe to (sent by escalation.webhooks).
WEBHOOK_CREATED = "incident.created"
WEBHOOK_STATE_CHANGED = "incident.state_changed"
WEBHOOK_PUBLIC_COMMENT = "incident.public_comment"
WEBHOOK_SLA_WARNING = "incident.sla_warning"
WEBHOOK_SLA_BREACHED = "incident.sla_breached"
WEBHOOK_EVENTS = (
    WEBHOOK_CREATED, WEBHOOK_STATE_CHANGED, WEBHOOK_PUBLIC_COMMENT, WEBHOOK_SLA_WARNING, WEBHOOK_SLA_BREACHED
)  # fmt: skip


class WebhookEndpoint(models.Model):
    """An outgoing webhook: JSON bodies signed with HMAC-SHA256 over id.timestamp.body."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500, validators=[validate_webhook_url])
    secret = models.CharField(max_length=100, default=new_secret)
    active = models.BooleanField(default=True)
    # Subscriptions (escalation.webhooks): the incident events it hears of, and whose eyes it has. An
    # endpoint with no events is only a target of escalation steps.
    events = models.JSONField(default=list, blank=True, help_text=_("Incident events it is sent."))
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("It carries only incidents this user may see."),
    )  # fmt: skip
    owner_team = models.ForeignKey(
        "incidents.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("It carries only incidents this team may see."),
    )  # fmt: skip

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_user__isnull=True) | Q(owner_team__isnull=True),
                name="webhook_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        events = self.events if isinstance(self.events, list) else None
        if events is None or any(e not in WEBHOOK_EVENTS for e in events):
            raise ValidationError({"events": f"A list of: {', '.join(WEBHOOK_EVENTS)}."})
        if self.owner_user_id is not None and self.owner_team_id is not None:
            raise ValidationError({"owner_team": "An owner user or an owner team, not both."})
        if events and self.owner_user_id is None and self.owner_team_id is None:
            raise ValidationError({"owner_user": "A webhook with events needs an owner (a user or a team)."})


class Notification(models.Model):
    """The outbox: one row per (event, recipient, channel), created with the decision, delivered after."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Webhook")

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEAD = "dead", _("Dead")

    key = models.CharField(max_length=64, unique=True, help_text=_("Idempotency key, sent with the message."))
    # One of the two: an incident's notification, or a problem's (a follow-up reminder to its owner).
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    problem = models.ForeignKey(
        "incidents.Problem", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    webhook = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.SET_NULL)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due_idx",
                condition=Q(state__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.recipient} ({self.state})"


class EngineHeartbeat(models.Model):
    """When the sweeper last ran, for /health/."""

    name = models.CharField(max_length=40, primary_key=True)
    beat_at = models.DateTimeField()
    fired = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"


class ReportFiling(models.Model):
    """A report filed with an authority (a preliminary or final patient-safety or data-protection report):
    who filed it, when, under which reference. Filing meets the incident's reporting target of that name."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="report_filings")
    target = models.CharField(max_length=60, help_text=_("The name of the reporting target it meets."))
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    filed_at = models.DateTimeField()
    reference = models.CharField(max_length=200, help_text=_("The authority's reference for the report."))
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["incident", "filed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "target"], name="report_filing_once_per_target"),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.target}: {self.reference}"


class AutoAssign(models.Model):
    """How a team's newly classified incidents get an assignee: off, in turn, or to the least loaded."""

    class Mode(models.TextChoices):
        OFF = "off", _("Off")
        ROUND_ROBIN = "round_robin", _("Round-robin")
        LEAST_LOADED = "least_loaded", _("Least loaded (open incidents per member)")

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="auto_assign")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.OFF)
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text=_("Round-robin: the member who had the last turn."),
    )  # fmt: skip

    def __str__(self) -> str:
        return f"{self.team}: {self.mode}"


class ConfigStamp(models.Model):
    """One row whose `token` changes whenever the configuration that opening an incident reads changes: SLA
    policies and their targets, business calendars, escalation policies and their steps, webhook endpoints,
    auto-assign rules (their mode). Database triggers (migration 0006) replace it with a random value on every
    statement that writes those tables, whatever the path (ORM, queryset update, admin, SQL); a rolled-back
    write leaves the old token, and a new write never brings back one seen before. escalation.configcache keeps
    what it read under the token it read with."""

    token = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"configuration {self.token}"
