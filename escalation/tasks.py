"""Thin Celery tasks: they take ids and call the domain. Deadlines live in the database."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> int:
    """Decide every due timer and republish undelivered notifications (Celery beat, every few seconds)."""
    from .engine import sweep as run

    return run().fired


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_notification(notification_id: int) -> str:
    from .delivery import deliver

    return deliver(notification_id)
