"""Thin Celery tasks: they take ids and call the domain."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from . import lifecycle, timeline
from .models import Incident, TimelineEntry

SUBJECTS = {
    "resolved": "[{ref}] Resolved: {title}",
    "closed": "[{ref}] Closed - report: {title}",
}


@shared_task(acks_late=True)
def notify_reporter(incident_id: int, event: str, version: int) -> None:
    """E-mail the reporter that their incident was resolved or closed.

    Sent once per (event, version): running the task twice sends one mail.
    """
    incident = Incident.objects.select_related("domain").get(pk=incident_id)
    recipient = incident.reporter_email or (incident.reporter.email if incident.reporter else "")
    if not recipient or event not in SUBJECTS:
        return
    already = TimelineEntry.objects.filter(
        incident=incident,
        kind=TimelineEntry.Kind.NOTIFICATION,
        data__event=event,
        data__version=version,
    ).exists()
    if already:
        return
    link = f"{settings.SITE_URL}/track/{incident.tracking_token}/"
    # Restricted domains (security, medical): the mail says that something changed, not what.
    if incident.domain is not None and incident.domain.restricted:
        body = f"Your incident {incident.reference} was {event}. Follow it here: {link}"
    elif event == "resolved":
        body = f"{incident.resolution_summary}\n\nIf it is still broken, reopen it here: {link}"
    else:
        body = f"What was done: {incident.measures}\n\nCause: {incident.cause}\n\n{link}"
    send_mail(
        SUBJECTS[event].format(ref=incident.reference, title=incident.title),
        body,
        settings.DEFAULT_FROM_EMAIL,
        [recipient],
    )
    timeline.record_notification(
        incident=incident, channel="email", recipient=recipient, event=event, version=version
    )


@shared_task
def auto_close_resolved() -> int:
    """Close resolved incidents whose quiet period has passed (runs on the scheduler every minute)."""
    return lifecycle.auto_close_resolved(now=timezone.now(), quiet_period=settings.INCIDENT_AUTO_CLOSE_AFTER)
