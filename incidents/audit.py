"""The audit trail of restricted incidents (issue 11, Build 8): every view and change of a security or
medical incident by a responder leaves one row (who, when, what).

Read and write paths call `note()`; inside a request the notes are collected and written by
`AuditMiddleware` as one INSERT when the response is ready, so auditing costs one statement per request
whatever the page shows. Outside a request (a management command, a test calling a view function) each
note is written at once. The rows cannot be changed: see AuditEvent and migration 0014.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .models import AuditEvent, Incident
from .selectors import desk_user

_pending: contextvars.ContextVar[list[AuditEvent] | None] = contextvars.ContextVar(
    "audit_pending", default=None
)


def is_audited(incident: Incident) -> bool:
    """Restricted domains (security and medical by default) are audited; the domain must be loaded."""
    return incident.domain_id is not None and bool(incident.domain and incident.domain.restricted)


def note(user: Any, incidents: Iterable[Incident], *, what: str, detail: str = "") -> None:
    """Record that `user` viewed or changed `incidents`, for each one that is audited and that the user sees
    as a responder. A reporter reading their own report is not audited (it is theirs)."""
    me = desk_user(user)
    if not me.is_authenticated:
        return
    now = timezone.now()
    rows = [
        AuditEvent(
            at=now,
            user_id=int(me.user_id or 0),
            username=user.get_username(),
            incident_id=incident.pk,
            what=what,
            detail=detail[:200],
        )
        for incident in incidents
        if is_audited(incident) and me.as_responder(incident)
    ]
    if not rows:
        return
    pending = _pending.get()
    if pending is None:
        AuditEvent.objects.bulk_create(rows)
    else:
        pending.extend(rows)


def note_export(user: Any, qs: QuerySet[Incident], *, detail: str) -> None:
    """An export reads every incident of `qs`: audit the restricted ones in one INSERT of their ids (the
    export itself streams afterwards, outside the request's collection)."""
    me = desk_user(user)
    if not me.is_authenticated or not me.is_responder:
        return
    now = timezone.now()
    ids = qs.filter(domain__restricted=True).order_by().values_list("pk", flat=True)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                at=now,
                user_id=int(me.user_id or 0),
                username=user.get_username(),
                incident_id=pk,
                what=AuditEvent.What.VIEW,
                detail=detail,
            )
            for pk in ids.iterator(chunk_size=2000)
        ],
        batch_size=1000,
    )


def flush() -> None:
    pending = _pending.get()
    if pending:
        # One INSERT for the whole request; a repeated view of one incident in one request counts once.
        unique = {(row.user_id, row.incident_id, row.what, row.detail): row for row in pending}
        AuditEvent.objects.bulk_create(list(unique.values()))
        pending.clear()


class AuditMiddleware:
    """Collects the request's audit notes and writes them in one INSERT once the view has answered."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _pending.set([])
        try:
            return self.get_response(request)
        finally:
            try:
                flush()
            finally:
                _pending.reset(token)
