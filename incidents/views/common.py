"""Helpers shared by the web pages of every audience: visibility (404 outside it), errors, files."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest

from .. import selectors
from ..models import Attachment, Incident, TimelineEntry
from ..templatetags.desk import action_label

logger = logging.getLogger(__name__)


S = Incident.State


def visible_incident(request: HttpRequest, reference: str) -> Incident:
    incident = selectors.incident_list(request.user).by_reference(reference).first()
    if incident is None:
        raise Http404("No such incident.")
    return incident


def user_pk(request: HttpRequest) -> int:
    return int(request.user.pk or 0)  # only called behind login_required


def apply_errors(form: Any, exc: ValidationError) -> None:
    for field, errors in (exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def actor_label(entry: TimelineEntry, incident: Incident, me: selectors.DeskUser) -> str:
    if entry.actor_id is None:
        return "the reporter" if entry.kind == TimelineEntry.Kind.COMMENT else "IncidentDesk"
    if entry.actor_id == incident.reporter_id and not me.can_see_reporter(incident):
        return "the reporter"
    assert entry.actor is not None  # noqa: S101 - select_related loaded it
    return entry.actor.get_full_name() or entry.actor.get_username()


def file_response(attachment: Attachment) -> FileResponse:
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def form_label(action: str) -> str:
    return action_label(action)
