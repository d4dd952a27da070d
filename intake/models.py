"""Intake channels beyond the form: monitoring integrations, their alert groups, and inbound e-mail."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from incidents.inserts import CompiledInsert
from incidents.models import Category, Domain, Incident, Team

SEVERITIES = ("critical", "error", "warning", "info")
# What a new integration maps each event severity to, as (impact, urgency): admins adjust it.
DEFAULT_SEVERITY_MAPPING: dict[str, dict[str, int]] = {
    "critical": {"impact": 1, "urgency": 1},
    "error": {"impact": 2, "urgency": 1},
    "warning": {"impact": 2, "urgency": 2},
    "info": {"impact": 3, "urgency": 3},
}
KEY_PREFIX_LENGTH = 8


def default_severity_mapping() -> dict[str, dict[str, int]]:
    return {severity: dict(values) for severity, values in DEFAULT_SEVERITY_MAPPING.items()}


def hash_routing_key(raw: str) -> str:
    """Keys are 256-bit random strings, so one round of SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def validate_severity_mapping(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("A mapping of severity to {impact, urgency}."))
    unknown = set(value) - set(SEVERITIES)
    if unknown:
        raise ValidationError(
            f"Unknown severities {', '.join(sorted(map(str, unknown)))}; use {', '.join(SEVERITIES)}."
        )
    for severity, pair in value.items():
        if not isinstance(pair, dict) or set(pair) != {"impact", "urgency"}:
            raise ValidationError(f"{severity}: give exactly impact and urgency.")
        for field, number in pair.items():
            if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 3:
                raise ValidationError(f"{severity}.{field}: must be 1, 2 or 3.")


class Integration(models.Model):
    """A monitoring tool that reports through the events endpoint with its own secret routing key."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(
        max_length=KEY_PREFIX_LENGTH,
        editable=False,
        help_text=_("The first characters, to recognise the key."),
    )
    key_rotated_at = models.DateTimeField(default=timezone.now, editable=False)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    severity_mapping = models.JSONField(
        default=default_severity_mapping,
        validators=[validate_severity_mapping],
        help_text=_('Severity to impact and urgency, e.g. {"critical": {"impact": 1, "urgency": 1}}.'),
    )
    grouping_window_minutes = models.PositiveIntegerField(
        default=60,
        help_text=_(
            "Triggers without a dedup key group by source and summary while they repeat within this window."
        ),
    )
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    active = models.BooleanField(default=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="integration",
        editable=False,
        help_text=_("The service account that reports its incidents."),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        category, domain, team = self.category, self.domain, self.team
        if category is not None and domain is None:
            self.domain = domain = category.domain
        if category is not None and domain is not None and category.domain_id != domain.pk:
            raise ValidationError({"category": f"Category {category.path} is not in domain {domain.slug}."})
        if (
            team is not None
            and domain is not None
            and domain.restricted
            and not team.domains.filter(pk=domain.pk).exists()
        ):
            raise ValidationError({"team": f"Team {team.slug} does not handle {domain.slug} incidents."})

    def set_new_key(self) -> str:
        """Give the integration a new routing key and return it: the only time it is ever seen."""
        raw = secrets.token_urlsafe(32)
        self.key_hash = hash_routing_key(raw)
        self.key_prefix = raw[:KEY_PREFIX_LENGTH]
        self.key_rotated_at = timezone.now()
        return raw

    def mapping_for(self, severity: str) -> tuple[int, int] | None:
        pair = (self.severity_mapping or {}).get(severity)
        return (pair["impact"], pair["urgency"]) if pair else None


class AlertGroup(CompiledInsert, models.Model):  # one per opened incident: its INSERT compiled once
    """The alerts of one dedup key on one incident. At most one group per key is open: a unique index
    (not luck) makes concurrent triggers of the same key land on one incident."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="alert_groups")
    dedup_key = models.CharField(max_length=255)
    incident = models.ForeignKey(Incident, null=True, on_delete=models.PROTECT, related_name="alert_groups")
    open = models.BooleanField(default=True)
    alert_count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_payload = models.JSONField(default=dict, blank=True)
    derived_key = models.BooleanField(default=False, help_text=_("Derived from source and summary."))
    firings = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The start times of the firings counted (the newest few): a redelivery counts once."),
    )
    held_action = models.CharField(
        max_length=12,
        blank=True,
        choices=[("acknowledge", _("Acknowledge")), ("resolve", _("Resolve"))],
        help_text=_("An event that came while the incident was received, applied when it is classified."),
    )
    held_payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "dedup_key"],
                condition=Q(open=True),
                name="alertgroup_one_open_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.integration.slug}:{self.dedup_key} x{self.alert_count}"


class InboundEmail(models.Model):
    """What became of each message read from the MTA pipe or the IMAP mailbox; auto-replies are recorded
    here and nowhere else, so nothing ever answers them."""

    class Outcome(models.TextChoices):
        CREATED = "created", _("Opened an incident")
        COMMENTED = "commented", _("Added a comment")
        REOPENED = "reopened", _("Added a comment and reopened")
        AUTO_REPLY = "auto_reply", _("Auto-reply, ignored")
        BOUNCE = "bounce", _("Bounce, ignored")
        REFUSED = "refused", _("Refused")
        DUPLICATE = "duplicate", _("Already handled")

    message_id = models.CharField(max_length=255, blank=True)
    sender = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    source = models.CharField(max_length=20, default="pipe")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    detail = models.TextField(blank=True)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.PROTECT, related_name="inbound_emails"
    )
    received_at = models.DateTimeField(default=timezone.now)

    HANDLED = (Outcome.CREATED, Outcome.COMMENTED, Outcome.REOPENED)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["message_id"], name="inbound_email_message_id_idx")]
        constraints = [
            # The same message read at once from the pipe and the mailbox (or by two polls) is handled once.
            models.UniqueConstraint(
                fields=["message_id"],
                condition=Q(outcome__in=["created", "commented", "reopened"]) & ~Q(message_id=""),
                name="inbound_email_handled_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.subject} ({self.outcome})"
