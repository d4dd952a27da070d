"""The escalation app's sections of the configuration file (see incidents.deskconfig).

Each goes through the API's own serializer (escalation.api.serializers), so the file is held to exactly
the rules of the API and the admin. Webhook endpoints are exported without their secrets; one created
from the file gets a new secret (shown in the admin), and applying never changes an existing secret.
"""

from __future__ import annotations

from typing import Any

from escalation.api import serializers as s
from escalation.models import BusinessCalendar, EscalationPolicy, Schedule, SlaPolicy, WebhookEndpoint
from incidents.deskconfig import SerializedSection

CALENDARS = SerializedSection("calendars", s.CalendarSerializer, BusinessCalendar.objects.all, "slug")
WEBHOOKS = SerializedSection(
    "webhooks", s.WebhookSerializer, WebhookEndpoint.objects.all, "slug", drop=("secret",)
)
SCHEDULES = SerializedSection(
    "schedules",
    s.ScheduleSerializer,
    lambda: Schedule.objects.select_related("team").prefetch_related("overrides__user"),
    "slug",
)
ESCALATION_POLICIES = SerializedSection(
    "escalation_policies",
    s.EscalationPolicySerializer,
    lambda: EscalationPolicy.objects.select_related("team").prefetch_related("steps"),
    "slug",
)
# SLA policies have no slug: their name is the key, so names must be unique in the file.
SLA_POLICIES = SerializedSection(
    "sla_policies",
    s.SlaPolicySerializer,
    lambda: SlaPolicy.objects.select_related("domain", "calendar", "escalation_policy"),
    "name",
    drop=("id",),
)


def export_calendars() -> list[dict[str, Any]]:
    return CALENDARS.export()


def apply_calendars(items: Any, *, dry_run: bool = False) -> list[str]:
    return CALENDARS.apply(items, dry_run=dry_run)


def export_webhooks() -> list[dict[str, Any]]:
    return WEBHOOKS.export()


def apply_webhooks(items: Any, *, dry_run: bool = False) -> list[str]:
    return WEBHOOKS.apply(items, dry_run=dry_run)


def export_schedules() -> list[dict[str, Any]]:
    return SCHEDULES.export()


def apply_schedules(items: Any, *, dry_run: bool = False) -> list[str]:
    return SCHEDULES.apply(items, dry_run=dry_run)


def export_escalation_policies() -> list[dict[str, Any]]:
    return ESCALATION_POLICIES.export()


def apply_escalation_policies(items: Any, *, dry_run: bool = False) -> list[str]:
    return ESCALATION_POLICIES.apply(items, dry_run=dry_run)


def export_sla_policies() -> list[dict[str, Any]]:
    return SLA_POLICIES.export()


def apply_sla_policies(items: Any, *, dry_run: bool = False) -> list[str]:
    return SLA_POLICIES.apply(items, dry_run=dry_run)
