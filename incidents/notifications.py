"""What the reporter is told, by e-mail through the outbox (incidents.hooks.outbox, kept by escalation).

Every mail is written to the outbox in the transaction of the change it reports, with a key named after
that change, and prompted for delivery after commit: a broker that is down at commit loses nothing (the
engine sweep republishes), and a change reported twice is mailed once.

Restricted domains (security, medical): the mail says that something changed and where to look, never
the content. Internal notes never reach a reporter: only public comments are forwarded.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from . import hooks
from .models import Comment, Incident

SURVEY_SALT = "incidents.survey"


def reporter_address(incident: Incident) -> str:
    if incident.reporter_email:
        return incident.reporter_email
    return incident.reporter.email if incident.reporter is not None else ""


def track_link(incident: Incident) -> str:
    return f"{settings.SITE_URL}{reverse('web:track', args=[incident.tracking_token])}"


def survey_token(incident: Incident) -> str:
    """A signed token naming the incident: the survey link can be neither guessed nor pointed elsewhere."""
    return signing.dumps({"i": incident.pk}, salt=SURVEY_SALT, compress=True)


def incident_pk_from_survey_token(token: str) -> int | None:
    try:
        value = signing.loads(token, salt=SURVEY_SALT)
    except signing.BadSignature:
        return None
    pk = value.get("i") if isinstance(value, dict) else None
    return pk if isinstance(pk, int) else None


def survey_link(incident: Incident, score: int | None = None) -> str:
    link = f"{settings.SITE_URL}{reverse('web:survey', args=[survey_token(incident)])}"
    return f"{link}?score={score}" if score is not None else link


def _restricted(incident: Incident) -> bool:
    """The incident, or the major incident its resolution and report came from, is of a restricted domain:
    the mail says that something changed, never what."""
    if incident.domain is not None and incident.domain.restricted:
        return True
    parent = incident.parent if incident.parent_id else None
    return parent is not None and parent.domain is not None and parent.domain.restricted


def _survey_lines(incident: Incident) -> str:
    scores = "\n".join(f"  {score} - {survey_link(incident, score)}" for score in range(1, 6))
    return f"How satisfied are you with how we handled it? One click (1 = poor, 5 = excellent):\n{scores}\n"


def _content(incident: Incident, event: str) -> tuple[str, str]:
    ref, link = incident.reference, track_link(incident)
    if _restricted(incident):
        words = {"resolved": "was resolved", "closed": "was closed; its report is ready"}[event]
        body = f"Your incident {ref} {words}. Follow it here (keep this link private): {link}\n"
        if event == "closed":
            body += "\n" + _survey_lines(incident)
        return f"[{ref}] Your incident {words.split(';')[0]}", body
    if event == "resolved":
        body = (
            f"We think your incident is fixed:\n\n{incident.resolution_summary}\n\n"
            f"If it is, confirm it; if it is still broken, reopen it here: {link}\n"
        )
        return f"[{ref}] Resolved: {incident.title}", body
    body = (
        f"Incident report for {ref}\n\n"
        f"What happened: {incident.title}\n"
        + (f"{incident.resolution_summary}\n" if incident.resolution_summary else "")
        + f"\nWhy it happened: {incident.cause}\n"
        f"\nWhat was done, and what prevents it from happening again: {incident.measures}\n"
        f"\nThe report stays on your incident's page: {link}\n\n" + _survey_lines(incident)
    )
    return f"[{ref}] Closed - report: {incident.title}", body


def notify_reporter(incident: Incident, event: str) -> list[int]:
    """Queue the reporter's mail about `event` (``resolved`` or ``closed``) of the incident's current version.

    Call inside the lifecycle transaction, after the version was bumped: a second resolution after a
    reopen is a new mail; the same change queued twice is one mail. No address: nothing is queued.
    """
    subject, body = _content(incident, event)
    outbox = hooks.outbox()
    ids = outbox.queue_message(
        incident=incident,
        event=f"reporter_{event}",
        cause=f"reporter:{incident.pk}:{event}:{incident.version}",
        address=reporter_address(incident),
        subject=subject,
        body=body,
        user_id=incident.reporter_id,
    )
    outbox.deliver_after_commit(ids)
    return ids


def notify_child_reporter(child: Incident, *, parent: Incident, comment: Comment) -> list[int]:
    """Forward a public update on a major incident to the reporter of one of its children, once per comment."""
    ref, link = child.reference, track_link(child)
    if _restricted(child) or _restricted(parent):
        subject = f"[{ref}] There is an update on your incident"
        body = f"There is an update on your incident {ref}. Read it here (keep this link private): {link}\n"
    else:
        subject = f"[{ref}] Update: {child.title}"
        body = (
            f"Your incident {ref} is part of a wider incident that the desk is handling as one.\n\n"
            f"{comment.body}\n\nFollow it here: {link}\n"
        )
    outbox = hooks.outbox()
    ids = outbox.queue_message(
        incident=child,
        event="reporter_update",
        cause=f"reporter:{child.pk}:parent_update:{comment.pk}",
        address=reporter_address(child),
        subject=subject,
        body=body,
        user_id=child.reporter_id,
    )
    outbox.deliver_after_commit(ids)
    return ids
