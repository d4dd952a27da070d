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

from django.db import connection
from django.db.models import F, QuerySet
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


def note_handled(user: Any, qs: QuerySet[Incident], *, detail: str) -> None:
    """A list, page or export shows every incident of `qs` to `user`, who reads them as a responder (the
    caller passes the incidents the user handles: `handled_incident_list`, `incidents_handled_by`, or the
    admin's own rows). Audits the restricted ones as viewed, in one INSERT ... SELECT written at once: an
    export of a million rows never loads their ids, and a page costs one statement whatever it shows."""
    me = desk_user(user)
    if not me.is_authenticated:
        return
    restricted = qs.filter(domain__restricted=True).order_by().values(audited_id=F("pk"))
    ids_sql, ids_params = restricted.query.sql_with_params()
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (at, user_id, username, incident_id, what, detail) "  # noqa: S608
            f"SELECT %s, %s, %s, picked.audited_id, %s, %s FROM ({ids_sql}) AS picked",
            [
                timezone.now(),
                int(me.user_id or 0),
                user.get_username(),
                AuditEvent.What.VIEW,
                detail[:200],
                *ids_params,
            ],
        )


def note_viewed_ids(user: Any, ids: list[int], *, detail: str) -> None:
    """`note_handled` for a page whose rows are already in hand: `ids` are the restricted incidents among
    them (the caller read each row's `domain__restricted` with the row), all handled by `user`. One INSERT
    of those ids, none when there are none: the query compiler is not run again for rows already read."""
    me = desk_user(user)
    if not me.is_authenticated or not ids:
        return
    row = [timezone.now(), int(me.user_id or 0), user.get_username(), AuditEvent.What.VIEW, detail[:200]]
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (at, user_id, username, what, detail, incident_id) VALUES "  # noqa: S608
            + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(ids)),
            [value for pk in ids for value in (*row, int(pk))],
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
