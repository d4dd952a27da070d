"""Thin Celery tasks: they call the domain."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True)
def send_weekly_digests() -> int:
    """Last week's figures to every team manager, once per manager and week (beat runs it hourly)."""
    from .digest import send_weekly_digests as send

    return send(now=timezone.now())
