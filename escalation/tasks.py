"""Thin Celery tasks: they take ids and call the domain. Deadlines live in the database.

`deliver_notification` is defined next to the delivery it runs (escalation.delivery), so that the modules
that prompt it do not import this one (no import cycle); it keeps its name, escalation.tasks.deliver_notification.
"""

from __future__ import annotations

from celery import shared_task

from . import engine
from .delivery import deliver_notification, deliver_notifications


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> int:
    """Decide every due timer and republish undelivered notifications (Celery beat, every few seconds)."""
    return engine.sweep().fired


__all__ = ["deliver_notification", "deliver_notifications", "sweep"]
