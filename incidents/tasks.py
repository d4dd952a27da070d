"""Thin Celery tasks: they take ids and call the domain."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import lifecycle, notifications, problems
from .models import Incident


@shared_task(acks_late=True)
def notify_reporter(incident_id: int, event: str, version: int) -> None:
    """Kept for prompts queued before reporter mail moved to the outbox: queue the same outbox row.

    The lifecycle now writes the mail in its own transaction (incidents.notifications); this task only
    drains old prompts. The outbox key names (event, version), so it never mails twice.
    """
    with transaction.atomic():
        incident = Incident.objects.select_related("domain", "reporter").get(pk=incident_id)
        if incident.version == version and event in ("resolved", "closed"):
            notifications.notify_reporter(incident, event)


@shared_task
def auto_close_resolved() -> int:
    """Close resolved incidents whose quiet period has passed (runs on the scheduler every minute)."""
    return lifecycle.auto_close_resolved(now=timezone.now(), quiet_period=settings.INCIDENT_AUTO_CLOSE_AFTER)


@shared_task
def remind_follow_ups() -> int:
    """Remind owners of open follow-up actions (runs on the scheduler daily; once per action per day)."""
    return problems.remind_follow_ups()
