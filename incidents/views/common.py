"""Helpers shared by the web pages of every audience: visibility (404 outside it), errors, files."""

from __future__ import annotations

import http.client
import logging
from typing import Any, ClassVar

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase

from .. import audit, selectors
from ..models import Attachment, AuditEvent, Incident, TimelineEntry
from ..templatetags.desk import action_label

logger = logging.getLogger(__name__)


S = Incident.State


def visible_incident(request: HttpRequest, reference: str) -> Incident:
    """An incident of the console: one the user sees as a responder. One they only reported (outside their
    teams' domains) does not exist here; they follow it in their portal, as its reporter."""
    incident = selectors.handled_incident(request.user, reference)
    if incident is None:
        raise Http404("No such incident.")
    what = AuditEvent.What.VIEW if request.method in ("GET", "HEAD") else AuditEvent.What.CHANGE
    match = request.resolver_match
    audit.note(
        request.user, [incident], what=what, detail=f"{request.method} {match.url_name if match else ''}"
    )
    return incident


def user_pk(request: HttpRequest) -> int:
    return int(request.user.pk or 0)  # only called behind login_required


def apply_errors(form: Any, exc: ValidationError) -> None:
    for field, errors in (exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def actor_label(entry: TimelineEntry, incident: Incident, me: selectors.DeskUser) -> str:
    if entry.actor_id is None:
        # A report through the web form or by mail, a comment, a confirmation or a rating without an
        # account came from the reporter; clocks, chains, notifications and sweeps are the desk itself.
        by_reporter = {
            TimelineEntry.Kind.COMMENT,
            TimelineEntry.Kind.REPORTER_CONFIRMED,
            TimelineEntry.Kind.RATING,
        }
        if entry.kind in by_reporter or (
            entry.kind == TimelineEntry.Kind.CREATED
            and (entry.data or {}).get("channel") in ("web", "email", "api", "phone")
        ):
            return reporter_label(incident, me)
        return "IncidentDesk (automatic)"
    if entry.actor_id == incident.reporter_id and not me.can_see_reporter(incident):
        return "the reporter"
    assert entry.actor is not None  # noqa: S101 - select_related loaded it
    return entry.actor.get_full_name() or entry.actor.get_username()


def reporter_label(incident: Incident, me: selectors.DeskUser) -> str:
    """ "the reporter", with their name for those who may see who reported."""
    if not me.can_see_reporter(incident):
        return "the reporter"
    if incident.reporter_id is not None and incident.reporter is not None:
        return f"{incident.reporter.get_full_name() or incident.reporter.get_username()} (the reporter)"
    if incident.reporter_name:
        return f"{incident.reporter_name} (the reporter)"
    return "the reporter"


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


# What a view's decorator (csp.decorators) sets on its response to change the policy: a response with none of
# these, to a request that used no nonce, gets the policy of the settings as it is.
_POLICY_CHANGES = (
    "_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
)  # fmt: skip


class CSPMiddleware(_CSPMiddleware):
    """django-csp's middleware, with the two headers of a response that no decorator and no nonce changes
    built once per process (again when the settings change) rather than on every response: building them
    from the settings was a twenty-fifth of an API create's CPU. Any other response goes through
    django-csp as it is."""

    _built: ClassVar[dict[bool, str]] = {}

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _POLICY_CHANGES
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (
            http.client.INTERNAL_SERVER_ERROR,
            http.client.NOT_FOUND,
        ):
            return response
        for report_only, header, exempt, setting in (
            (False, HEADER, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
            (True, HEADER_REPORT_ONLY, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            policy = self._built.get(report_only)
            if policy is None:
                policy = self._built[report_only] = build_policy(report_only=report_only)
            if not policy or header in response or getattr(response, exempt, False) is not False:
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header was written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


def _forget_policies(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        CSPMiddleware._built.clear()


setting_changed.connect(_forget_policies)
