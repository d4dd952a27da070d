"""Thin Celery tasks: they take ids and call the domain."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import lifecycle, problems


@shared_task
def auto_close_resolved() -> int:
    """Close resolved incidents whose quiet period has passed (runs on the scheduler every minute)."""
    return lifecycle.auto_close_resolved(now=timezone.now(), quiet_period=settings.INCIDENT_AUTO_CLOSE_AFTER)


@shared_task
def remind_follow_ups() -> int:
    """Remind owners of open follow-up actions (runs on the scheduler daily; once per action per day)."""
    return problems.remind_follow_ups()
