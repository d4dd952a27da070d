"""The reporter's pages: the home page, the report form, the private tracking page and "my incidents"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from .. import hooks, lifecycle, notifications, selectors, services, timeline
from ..errors import InvalidTransition, StaleVersion
from ..forms import AttachForm, ReopenForm, ReplyForm, ReportForm, categories_of
from ..models import Attachment, Domain, Incident, ReportSubmission, TimelineEntry
from ..selectors import desk_user
from .common import S, apply_errors, file_response


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _rate_limited(request: HttpRequest) -> bool:
    """Count anonymous reports per client address in the cache; True when over WEB_REPORT_RATE."""
    count_text, _, period = settings.WEB_REPORT_RATE.partition("/")
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}.get(period.rstrip("s"), 3600)
    key = f"web-report:{_client_ip(request)}"
    cache.add(key, 0, timeout=seconds)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds)
        used = 1
    return used > int(count_text)


def home(request: HttpRequest) -> HttpResponse:
    me = desk_user(request.user)
    if me.is_responder:
        return redirect("web:queue")
    if me.is_authenticated and request.session.get("interviews_nav"):  # set at sign-in by interviews
        return redirect("interviews:sessions")
    if me.is_authenticated:
        return redirect("web:my_incidents")
    return render(request, "incidents/home.html")


def report(request: HttpRequest) -> HttpResponse:
    """The single point of contact: anyone may report; anonymous reporters leave an e-mail address.

    The form carries a one-time token: sending the same form twice (a double click, a resend) makes one
    incident, and the second submit shows it.
    """
    user = request.user if request.user.is_authenticated else None
    if request.method != "POST":
        return render(request, "incidents/report.html", {"form": ReportForm(user=user)})
    form = ReportForm(request.POST, request.FILES, user=user)
    if form.is_bot:
        return render(request, "incidents/report_refused.html", status=400)
    if user is None and _rate_limited(request):
        return render(request, "incidents/report_refused.html", {"rate_limited": True}, status=429)
    if not form.is_valid():
        return render(request, "incidents/report.html", {"form": form}, status=400)
    data = form.cleaned_data
    token = data["form_token"]
    try:
        with transaction.atomic():
            # The claim comes first: a second submit of this form waits here until the first commits, then
            # writes nothing. It reads the configuration stamp too, so the receivers of `created` take what
            # they read under it (which webhooks hear of a new incident) instead of reading it again.
            claim = _claim_submission(token)
            if claim is None:
                raise _AlreadySent
            submission, stamp = claim
            with hooks.configuration(stamp):
                incident = services.create_incident(
                    title=data["title"],
                    description=data["description"],
                    reporter=user,
                    reporter_email=data.get("reporter_email", ""),
                    domain=data["domain"],
                    category=data["category"],
                    impact=data["affected"],
                    urgency=data["urgency"],
                    outcome=data["outcome"],
                    harm_level=data["harm_level"],
                    confidential=data["confidential"],
                    channel=Incident.Channel.WEB,
                )
            _link_submission(submission, incident)
            if data["attachment"]:
                services.add_attachment(incident, uploaded_by=user, upload=data["attachment"])
            notifications.notify_received(incident)
    except ValidationError as exc:
        apply_errors(form, exc)
        if "file" in getattr(exc, "error_dict", {}):
            form.add_error("attachment", exc.message_dict["file"])
        return render(request, "incidents/report.html", {"form": form}, status=400)
    except _AlreadySent:
        return _already_reported(request, form, token)
    return redirect("web:report_done", token=incident.tracking_token)


class _AlreadySent(Exception):
    """This form's token was sent before: this submit writes nothing (its claim inserted no row)."""


def _claim_submission(token: str) -> tuple[int, int | None] | None:
    """Insert the form's ReportSubmission row (its incident is linked once made: `_link_submission`); None
    when this token was already sent. Else the row's id and the configuration stamp (hooks.config_stamp_sql,
    None without one), read in the same statement.

    One statement (INSERT ... ON CONFLICT DO NOTHING RETURNING), with no savepoint around it: a second
    submit of the same form waits on the unique key until the first commits, then inserts nothing.
    """
    table = ReportSubmission._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{table}" ("token", "incident_id", "created_at") VALUES (%s, NULL, %s) '  # noqa: S608
            f'ON CONFLICT ("token") DO NOTHING RETURNING "id", ({hooks.config_stamp_sql() or "NULL"})',
            [token, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row is not None else None


def _link_submission(submission: int, incident: Incident) -> None:
    """The claimed submission row gets its incident, in the transaction that made both."""
    table = ReportSubmission._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" SET "incident_id" = %s WHERE "id" = %s',  # noqa: S608 (the model's table)
            [incident.pk, submission],
        )


def _already_reported(request: HttpRequest, form: ReportForm, token: str) -> HttpResponse:
    """A second submit of a form already sent: the same sender sees their incident; anyone else holding
    the token (it was in a page they should not have) learns nothing and gets a fresh form."""
    first = ReportSubmission.objects.select_related("incident").filter(token=token).first()
    incident = first.incident if first is not None else None
    if incident is not None and _same_sender(request, form, incident):
        messages.info(request, "This report was already sent; here it is. Nothing was sent twice.")
        return redirect("web:report_done", token=incident.tracking_token)
    error = (
        "This form was already sent. Nothing was sent twice; to report something else, fill in this new form."
    )
    return render(
        request, "incidents/report.html", {"form": ReportForm(user=form.user), "error": error}, status=409
    )


def _same_sender(request: HttpRequest, form: ReportForm, incident: Incident) -> bool:
    if request.user.is_authenticated:
        return incident.reporter_id == request.user.pk
    email = str(form.cleaned_data.get("reporter_email", ""))
    return incident.reporter_id is None and bool(email) and email.lower() == incident.reporter_email.lower()


@require_GET
def report_categories(request: HttpRequest) -> HttpResponse:
    """The category options of the chosen domain (htmx swaps them into the form)."""
    domain = None
    if request.GET.get("domain", "").isdigit():
        domain = Domain.objects.filter(pk=int(request.GET["domain"])).first()
    return render(request, "incidents/_category_options.html", {"categories": categories_of(domain)})


def _tracked(token: str) -> Incident:
    if len(token) < 22:  # secrets.token_urlsafe(32) is 43 characters; never match a short guess
        raise Http404("No such incident.")
    return get_object_or_404(
        Incident.objects.select_related("domain", "category", "rating"), tracking_token=token
    )


def report_done(request: HttpRequest, token: str) -> HttpResponse:
    incident = _tracked(token)
    link = request.build_absolute_uri(reverse("web:track", args=[token]))
    return render(request, "incidents/report_done.html", {"incident": incident, "link": link})


def _reporter_actor(request: HttpRequest, incident: Incident) -> Any:
    """The signed-in reporter acts as themselves; a tracking-link holder acts as the anonymous reporter."""
    if request.user.is_authenticated and request.user.pk == incident.reporter_id:
        return request.user
    return None


@dataclass
class PublicEntry:
    at: datetime
    kind: str
    action: str
    who: str
    data: dict[str, Any]
    comment_html: str
    attachment: Attachment | None


def _public_timeline(incident: Incident) -> list[PublicEntry]:
    entries = selectors.timeline_for(incident, None)  # the reporter's view: public entries only
    result = []
    for entry in entries:
        mine = entry.actor_id is not None and entry.actor_id == incident.reporter_id
        anonymous_reply = entry.actor_id is None and entry.kind in (
            TimelineEntry.Kind.CREATED,
            TimelineEntry.Kind.COMMENT,
            TimelineEntry.Kind.ATTACHMENT,
            TimelineEntry.Kind.REPORTER_CONFIRMED,
            TimelineEntry.Kind.RATING,
        )
        result.append(
            PublicEntry(
                at=entry.at,
                kind=entry.kind,
                action=entry.action,
                who="You" if mine or anonymous_reply else "Service desk",
                data=timeline.public_data(entry),
                comment_html=entry.comment.body_html if entry.comment is not None else "",
                attachment=entry.attachment,
            )
        )
    return result


def track(request: HttpRequest, token: str) -> HttpResponse:
    """The reporter's page of one incident, reached by its private link: status and the public timeline."""
    incident = _tracked(token)
    return _render_track(request, incident)


def _render_track(request: HttpRequest, incident: Incident, status: int = 200, **forms: Any) -> HttpResponse:
    context = {
        "incident": incident,
        "entries": _public_timeline(incident),
        "reply_form": forms.get("reply_form") or ReplyForm(),
        "reopen_form": forms.get("reopen_form") or ReopenForm(),
        "attach_form": forms.get("attach_form") or AttachForm(),
        "confirmed": incident.state == S.RESOLVED
        and incident.reporter_confirmed_at is not None
        and incident.resolved_at is not None
        and incident.reporter_confirmed_at >= incident.resolved_at,
        "rating": getattr(incident, "rating", None),
        "error": forms.get("error"),
    }
    return render(request, "incidents/track.html", context, status=status)


@require_POST
def track_reply(request: HttpRequest, token: str) -> HttpResponse:
    incident = _tracked(token)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _render_track(request, incident, 400, reply_form=form)
    try:
        services.add_comment(
            incident, author=_reporter_actor(request, incident), body=form.cleaned_data["body"], public=True
        )
    except InvalidTransition as exc:
        return _render_track(request, incident, 409, error=str(exc))
    messages.success(request, "Your reply was added.")
    return redirect("web:track", token=token)


@require_POST
def track_attach(request: HttpRequest, token: str) -> HttpResponse:
    incident = _tracked(token)
    form = AttachForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_track(request, incident, 400, attach_form=form)
    try:
        services.add_attachment(
            incident, uploaded_by=_reporter_actor(request, incident), upload=form.cleaned_data["file"]
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return _render_track(request, incident, 400, attach_form=form)
    except InvalidTransition as exc:
        return _render_track(request, incident, 409, error=str(exc))
    messages.success(request, "Your file was added.")
    return redirect("web:track", token=token)


@require_POST
def track_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """ "This fixed it": recorded through the lifecycle (it does not close; the desk closes with the report)."""
    incident = _tracked(token)
    try:
        lifecycle.confirm_resolution(incident, actor=_reporter_actor(request, incident))
    except InvalidTransition:
        return _render_track(
            request,
            incident,
            409,
            error=f"Only a resolved incident can be confirmed; this one is {incident.state}.",
        )
    messages.success(request, "Thank you for confirming. The desk will close the incident with its report.")
    return redirect("web:track", token=token)


@require_POST
def track_reopen(request: HttpRequest, token: str) -> HttpResponse:
    """ "Still broken": reopen through the lifecycle, as the reporter."""
    incident = _tracked(token)
    form = ReopenForm(request.POST)
    if not form.is_valid():
        return _render_track(request, incident, 400, reopen_form=form)
    try:
        lifecycle.reopen_incident(
            incident, actor=_reporter_actor(request, incident), reason=form.cleaned_data["reason"]
        )
    except (InvalidTransition, StaleVersion) as exc:
        return _render_track(request, incident, 409, error=str(exc))
    messages.success(request, "The incident is open again; the desk has been told.")
    return redirect("web:track", token=token)


@require_POST
def track_rate(request: HttpRequest, token: str) -> HttpResponse:
    incident = _tracked(token)
    score = request.POST.get("score", "")
    if incident.state != S.CLOSED or score not in {"1", "2", "3", "4", "5"}:
        return _render_track(request, incident, 400, error="Rate a closed incident from 1 to 5.")
    try:
        services.rate_incident(incident, score=int(score), comment=request.POST.get("comment", ""))
    except ValidationError as exc:
        return _render_track(request, incident, 400, error=" ".join(exc.messages))
    messages.success(request, "Thank you for your rating.")
    return redirect("web:track", token=token)


def track_download(request: HttpRequest, token: str, attachment_id: int) -> FileResponse:
    incident = _tracked(token)
    attachment = get_object_or_404(Attachment, pk=attachment_id, incident=incident, public=True)
    return file_response(attachment)


@login_required
def my_incidents(request: HttpRequest) -> HttpResponse:
    """The reporter's own incidents, newest first, with their states in plain words."""
    incidents = (
        Incident.objects.filter(reporter_id=request.user.pk)
        .only("id", "title", "state", "received_at", "updated_at", "tracking_token")
        .order_by("-id")[:200]
    )
    return render(request, "incidents/my_incidents.html", {"incidents": incidents})
