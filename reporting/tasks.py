"""Thin Celery tasks: they call the domain."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True)
def send_weekly_digests() -> int:
    """Last week's figures to every team manager, once per manager and week (beat runs it hourly)."""
    from .digest import send_weekly_digests as send

    return send(now=timezone.now())


@shared_task(acks_late=True)
def refresh_day_figures() -> int:
    """Rebuild the per-day report figures of the days changed since the last run (beat runs it every
    minute). Idempotent; two at once take turns on an advisory lock."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0  # the per-day figures are PostgreSQL's; elsewhere reports read the incidents
    from .daily import refresh

    return refresh()
