"""The web interface: the reporter's form and portal, and the agents' console.

Views parse input and pick what the user may see; every write goes through incidents.services or
incidents.lifecycle, and visibility comes only from incidents.selectors (404 outside it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import BooleanField, IntegerField, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from escalation.oncall import team_oncall

from . import console, export, lifecycle, selectors, services, timeline
from .api.filters import IncidentFilter
from .forms import (
    ACTION_FORMS,
    AttachForm,
    BulkForm,
    CommentForm,
    EditForm,
    ReopenForm,
    ReplyForm,
    ReportForm,
    SaveViewForm,
    categories_of,
)
from .markup import render_markdown
from .models import (
    Attachment,
    Domain,
    Incident,
    SavedQueueView,
    Team,
    TimelineEntry,
)
from .selectors import desk_user

logger = logging.getLogger(__name__)
S = Incident.State
OPEN_STATES = [s for s in S.values if s not in Incident.FINAL_STATES]
PAGE_SIZE = 50
ATTENTION_CAP = 1000
# The queue's "needs attention" pills count to 100 ("100+"): past that the number changes nothing at the desk,
# and each count stays a short index range (reports give the exact figures).
QUEUE_ATTENTION_CAP = 100


# --- helpers -----------------------------------------------------------------------------------------


def _responder_or_404(request: HttpRequest) -> None:
    """The console is for responders; to anyone else it does not exist."""
    if not desk_user(request.user).is_responder:
        raise Http404("No such page.")


def _visible_incident(request: HttpRequest, reference: str) -> Incident:
    incident = selectors.incident_list(request.user).by_reference(reference).first()
    if incident is None:
        raise Http404("No such incident.")
    return incident


def _user_pk(request: HttpRequest) -> int:
    return int(request.user.pk or 0)  # only called behind login_required


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


def _send_tracking_link(incident: Incident, link: str) -> None:
    """Mail the reporter their reference and private link once the report is committed; record it."""
    recipient = incident.reporter_email
    if not recipient:
        return

    def send() -> None:
        try:
            send_mail(
                f"[{incident.reference}] We received your report: {incident.title}",
                f"Thank you. Your incident is {incident.reference}.\n\n"
                f"Follow it, reply and add files here (keep this link private): {link}\n",
                settings.DEFAULT_FROM_EMAIL,
                [recipient],
            )
        except Exception:
            logger.exception("could not mail the tracking link of %s", incident.reference)
            return
        timeline.record_notification(
            incident=incident,
            channel="email",
            recipient=recipient,
            event="received",
            version=incident.version,
        )

    transaction.on_commit(send)


def _apply_errors(form: Any, exc: ValidationError) -> None:
    for field, errors in (exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}).items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def _actor_label(entry: TimelineEntry, incident: Incident, me: selectors.DeskUser) -> str:
    if entry.actor_id is None:
        return "the reporter" if entry.kind == TimelineEntry.Kind.COMMENT else "IncidentDesk"
    if entry.actor_id == incident.reporter_id and not me.can_see_reporter(incident):
        return "the reporter"
    assert entry.actor is not None  # noqa: S101 - select_related loaded it
    return entry.actor.get_full_name() or entry.actor.get_username()


# --- home, reporter form and portal ------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    me = desk_user(request.user)
    if me.is_responder:
        return redirect("web:queue")
    if me.is_authenticated:
        return redirect("web:my_incidents")
    return render(request, "incidents/home.html")


def report(request: HttpRequest) -> HttpResponse:
    """The single point of contact: anyone may report; anonymous reporters leave an e-mail address."""
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
    try:
        with transaction.atomic():
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
            if data["attachment"]:
                services.add_attachment(incident, uploaded_by=user, upload=data["attachment"])
            link = request.build_absolute_uri(reverse("web:track", args=[incident.tracking_token]))
            _send_tracking_link(incident, link)
    except ValidationError as exc:
        _apply_errors(form, exc)
        if "file" in getattr(exc, "error_dict", {}):
            form.add_error("attachment", exc.message_dict["file"])
        return render(request, "incidents/report.html", {"form": form}, status=400)
    return redirect("web:report_done", token=incident.tracking_token)


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
    except lifecycle.InvalidTransition as exc:
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
        _apply_errors(form, exc)
        return _render_track(request, incident, 400, attach_form=form)
    except lifecycle.InvalidTransition as exc:
        return _render_track(request, incident, 409, error=str(exc))
    messages.success(request, "Your file was added.")
    return redirect("web:track", token=token)


@require_POST
def track_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """ "This fixed it": recorded through the lifecycle (it does not close; the desk closes with the report)."""
    incident = _tracked(token)
    try:
        lifecycle.confirm_resolution(incident, actor=_reporter_actor(request, incident))
    except lifecycle.InvalidTransition:
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
    except (lifecycle.InvalidTransition, lifecycle.StaleVersion) as exc:
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
    return _file_response(attachment)


def _file_response(attachment: Attachment) -> FileResponse:
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
def my_incidents(request: HttpRequest) -> HttpResponse:
    """The reporter's own incidents, newest first, with their states in plain words."""
    incidents = (
        Incident.objects.filter(reporter_id=request.user.pk)
        .only("id", "title", "state", "received_at", "updated_at", "tracking_token")
        .order_by("-id")[:200]
    )
    return render(request, "incidents/my_incidents.html", {"incidents": incidents})


# --- the queue ---------------------------------------------------------------------------------------

NO_PRIORITY = 6  # sorts after P5: unprioritised incidents come last
PRIORITY_KEY_SQL = f'COALESCE("incidents_incident"."priority", {NO_PRIORITY})'
INCIDENT_ID_SQL = '"incidents_incident"."id"'
SORTS: dict[str, tuple[str, list[Any]]] = {
    # name: (label, order_by). Each ends in id so that a page boundary is exact (keyset pagination).
    "newest": ("Newest first", ["-id"]),
    "oldest": ("Oldest first", ["id"]),
    # Highest priority first, oldest first within it, unprioritised last: the order of the expression index
    # incident_priority_key_idx, so that a keyset page starts at its cursor in the index (see _keyset).
    "priority": (
        "Priority",
        [Coalesce("priority", Value(NO_PRIORITY), output_field=IntegerField()).asc(), "id"],
    ),
}
PRESETS: list[tuple[str, str, dict[str, Any]]] = [
    ("my-open", "My open", {"assignee": "me", "open": "1", "sort": "priority"}),
    ("unassigned-p1-p2", "Unassigned P1-P2", {"assignee": "none", "priority": ["1", "2"], "open": "1"}),
    # "Breaching soon" is what the SLA engine marks `warning` (its threshold, in business time, paused on hold).
    ("breaching-soon", "Breaching soon", {"sla": "warning", "open": "1", "sort": "priority"}),
    ("unclassified", "To classify", {"state": "received", "sort": "oldest"}),
]
FILTER_KEYS = ("state", "priority", "domain", "category", "team", "assignee", "sla", "q", "open", "sort")
# The export also takes a period (the report dashboard's "Export CSV" passes its own).
EXPORT_KEYS = (*FILTER_KEYS, "received_after", "received_before")
PAGE_KEYS = ("cursor", "before")  # keyset bounds: rows after the last row shown, or before the first
SLA_FILTERS = [("warning", "Warning: breaching soon"), ("breached", "Breached")]
LEGACY_SLA = {"soon": "warning"}  # saved views made before the filter used the engine's states


def _preset_query(params: dict[str, Any]) -> str:
    return urlencode(params, doseq=True)


def _keyset(qs: QuerySet[Incident], sort: str, cursor: str, *, before: bool = False) -> QuerySet[Incident]:
    """Rows after the cursor in the sort order (before it when paging back): no OFFSET, no COUNT.

    `qs` is ordered for reading forward; paging back, the caller reverses the order, takes a page and
    reverses the rows again, so each direction walks the same index from the cursor. The priority sort
    compares (priority, id) as one row value, which PostgreSQL turns into an index bound; an OR of the
    two comparisons would scan and discard every row before the cursor.
    """
    try:
        if sort == "priority":
            raw_priority, raw_id = cursor.split(".", 1)
            key = (NO_PRIORITY if raw_priority == "n" else int(raw_priority), int(raw_id))
            if not all(-(2**63) <= part < 2**63 for part in key):
                return qs  # not a cursor this page made (the database would refuse the number)
            # Constant SQL; the cursor's values are bound parameters.
            after = RawSQL(  # noqa: S611
                f"({PRIORITY_KEY_SQL}, {INCIDENT_ID_SQL}) {'<' if before else '>'} (%s, %s)",
                key,
                BooleanField(),
            )
            return qs.filter(after)
        pk = int(cursor)
    except ValueError:
        return qs
    newer = (sort == "newest") != before
    return qs.filter(id__lt=pk) if newer else qs.filter(id__gt=pk)


def _cursor_of(incident: Incident | dict[str, Any], sort: str) -> str:
    """The keyset position of a row (a model instance or a row of values)."""
    pk, priority = (
        (incident["id"], incident["priority"])
        if isinstance(incident, dict)
        else (incident.pk, incident.priority)
    )
    if sort == "priority":
        return f"{priority if priority is not None else 'n'}.{pk}"
    return str(pk)


def filtered_queue(request: HttpRequest, params: QueryDict) -> tuple[QuerySet[Incident], str]:
    """The visible incidents the queue parameters select, in the chosen order (not yet paged).

    The SLA filter passes the engine's clock states (`warning`, `breached`) to the API's filter, so the
    console and the API agree on what "breaching soon" means.
    """
    filterset, sort = _queue_filter(request, params)
    return _open_and_sorted(filterset.qs, params, sort), sort


def _queue_filter(request: HttpRequest, params: QueryDict) -> tuple[IncidentFilter, str]:
    """The API's filter set over the visible incidents, fed the queue's parameters in the API's terms."""
    sort = params.get("sort") or "newest"
    if sort not in SORTS:
        sort = "newest"
    api_params = params.copy()
    if api_params.get("assignee") == "me":
        api_params["assignee"] = request.user.get_username()
    sla = api_params.pop("sla", [""])[-1]
    sla = LEGACY_SLA.get(sla, sla)
    if sla:
        api_params["sla"] = sla
    return IncidentFilter(api_params, queryset=selectors.incident_list(request.user), request=request), sort


def _open_and_sorted(qs: QuerySet[Incident], params: QueryDict, sort: str) -> QuerySet[Incident]:
    if params.get("open") == "1" and not params.getlist("state"):
        qs = qs.filter(state__in=OPEN_STATES)
    return qs.order_by(*SORTS[sort][1])


def _queue_params(request: HttpRequest) -> QueryDict:
    """The filters, sort and page bound of the request; a blank select means "any"."""
    params = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if key in (*FILTER_KEYS, *PAGE_KEYS) and any(values):
            params.setlist(key, [value for value in values if value])
    sla = params.get("sla", "")
    if sla in LEGACY_SLA:
        params["sla"] = LEGACY_SLA[sla]
    if not any(key in params for key in FILTER_KEYS):
        params["open"] = "1"  # the desk's default: what is still open
    return params


def _page_of(qs: QuerySet[Incident], sort: str, params: QueryDict) -> tuple[list[dict[str, Any]], bool, bool]:
    """One page of rows in either direction, with whether a previous and a next page exist.

    One query whichever way: PAGE_SIZE + 1 rows tell whether there is more beyond this page; the
    other side exists whenever the page was reached through a bound.
    """
    before, after = params.get("before", ""), params.get("cursor", "")
    if before:
        rows = console.queue_page(_keyset(qs, sort, before, before=True).reverse(), PAGE_SIZE + 1)
        has_previous = len(rows) > PAGE_SIZE
        return rows[:PAGE_SIZE][::-1], has_previous, True
    if after:
        qs = _keyset(qs, sort, after)
    rows = console.queue_page(qs, PAGE_SIZE + 1)
    return rows[:PAGE_SIZE], bool(after), len(rows) > PAGE_SIZE


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """The console's incident list: filters, search, sort, saved views, keyset pages, bulk actions."""
    _responder_or_404(request)
    params = _queue_params(request)
    filterset, sort = _queue_filter(request, params)
    if not filterset.is_valid():
        messages.error(request, "Some filters were not understood and were ignored.")
        params = QueryDict(mutable=True)
        params["open"] = "1"
        filterset, sort = _queue_filter(request, params)
    qs = _open_and_sorted(filterset.qs, params, sort)
    page, has_previous, has_next = _page_of(qs, sort, params)
    first_query = params.copy()
    for key in PAGE_KEYS:
        first_query.pop(key, None)

    def bound(key: str, row: dict[str, Any]) -> str:
        query = first_query.copy()
        query[key] = _cursor_of(row, sort)
        return query.urlencode()

    context: dict[str, Any] = {
        "rows": console.queue_rows(page),
        "params": params,
        "sort": sort,
        "sorts": [(key, label) for key, (label, _) in SORTS.items()],
        "next_query": bound("cursor", page[-1]) if has_next and page else None,
        "previous_query": bound("before", page[0]) if has_previous and page else None,
        "first_query": first_query.urlencode(),
        "is_first_page": not has_previous,
        "current_query": first_query.urlencode(),
    }
    if request.htmx and request.htmx.target == "queue-results":  # type: ignore[attr-defined]
        return render(request, "incidents/_queue_results.html", context)  # the poll: rows only
    context |= {
        "attention": console.attention_counts(request.user, QUEUE_ATTENTION_CAP),
        "attention_cap": QUEUE_ATTENTION_CAP,
        "presets": [(slug, label, _preset_query(p)) for slug, label, p in PRESETS],
        "saved_views": SavedQueueView.objects.filter(user_id=_user_pk(request)),
        "choices": console.cached_queue_choices(),
        "states": S.choices,
        "sla_filters": SLA_FILTERS,
        "filters_active": any(key not in ("open", "sort", *PAGE_KEYS) for key in params),
        "selected_states": params.getlist("state"),
        "selected_priorities": params.getlist("priority"),
        "bulk_actions": BulkForm.ACTIONS,
        "impacts": Incident.Impact.choices,
        "urgencies": Incident.Urgency.choices,
        "cancel_reasons": Incident.CancelReason.choices,
        "save_form": SaveViewForm(initial={"query": first_query.urlencode()}),
    }
    return render(request, "incidents/queue.html", context)


@login_required
@require_GET
def queue_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The queue's incidents as CSV, with the queue's filters and sort (all visible ones without filters).

    Streamed through a server-side cursor: a million rows never sit in memory. Unlike the queue page,
    a filter that is not understood is a 400 naming it, not silently ignored: an export must not
    quietly contain something else than what was asked for.
    """
    _responder_or_404(request)
    unknown = sorted(key for key in request.GET if key not in EXPORT_KEYS)
    if unknown:
        return HttpResponse(
            f"{unknown[0]}: not a filter of the export (use {', '.join(EXPORT_KEYS)}).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    params = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if any(values):
            params.setlist(key, [value for value in values if value])
    check = IncidentFilter(params, queryset=Incident.objects.none(), request=request)
    if not check.is_valid():
        errors = "; ".join(f"{field}: {' '.join(texts)}" for field, texts in check.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    qs, _ = filtered_queue(request, params)
    response = StreamingHttpResponse(
        export.stream_csv(qs, desk_user(request.user)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="incidents-{stamp}.csv"'
    return response


@login_required
@require_POST
def queue_bulk(request: HttpRequest) -> HttpResponse:
    """One action on many incidents, each through its lifecycle function; refusals are listed, not fatal."""
    _responder_or_404(request)
    form = BulkForm(request.POST)
    back = reverse("web:queue") + "?" + request.POST.get("query", "")
    if not form.is_valid():
        for field, errors in form.errors.items():
            text = " ".join(str(error) for error in errors)
            messages.error(request, text if field == "__all__" else f"{field}: {text}")
        return redirect(back)
    data = form.cleaned_data
    incidents = list(selectors.incidents_visible_to(request.user).filter(pk__in=data["ids"]))
    done, refused = [], []
    for incident in incidents:
        try:
            if data["bulk_action"] == "assign":
                lifecycle.acknowledge_incident(
                    incident, actor=request.user, assignee=data["assignee"] or request.user
                )
            elif data["bulk_action"] == "classify":
                lifecycle.classify_incident(
                    incident,
                    actor=request.user,
                    domain=data["domain"],
                    category=data["category"],
                    impact=data["impact"],
                    urgency=data["urgency"],
                    team=data["team"],
                )
            else:
                lifecycle.cancel_incident(incident, actor=request.user, reason=data["cancel_reason"])
            done.append(incident.reference)
        except (lifecycle.InvalidTransition, lifecycle.StaleVersion, PermissionDenied) as exc:
            refused.append(f"{incident.reference}: {exc}")
        except ValidationError as exc:
            refused.append(f"{incident.reference}: {' '.join(exc.messages)}")
    if done:
        messages.success(request, f"{form.fields['bulk_action'].label}: done for {', '.join(done)}.")
    for line in refused:
        messages.error(request, line)
    return redirect(back)


@login_required
@require_POST
def queue_save_view(request: HttpRequest) -> HttpResponse:
    _responder_or_404(request)
    form = SaveViewForm(request.POST)
    if form.is_valid():
        SavedQueueView.objects.update_or_create(
            user_id=_user_pk(request),
            name=form.cleaned_data["name"],
            defaults={"query": form.cleaned_data["query"]},
        )
        messages.success(request, f"Saved the view “{form.cleaned_data['name']}”.")
        return redirect(reverse("web:queue") + "?" + form.cleaned_data["query"])
    messages.error(request, "Give the view a name.")
    return redirect("web:queue")


@login_required
@require_POST
def queue_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    _responder_or_404(request)
    view = get_object_or_404(SavedQueueView, pk=pk, user_id=_user_pk(request))
    view.delete()
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("web:queue")


# --- the incident page -------------------------------------------------------------------------------


@dataclass
class ConsoleEntry:
    entry: TimelineEntry
    who: str


def _render_incident(
    request: HttpRequest,
    incident: Incident,
    *,
    status: int = 200,
    error: str = "",
    conflict: str = "",
    bound: dict[str, Any] | None = None,
) -> HttpResponse:
    me = desk_user(request.user)
    bound = bound or {}
    allowed = lifecycle.allowed_actions(incident, request.user)
    action_forms = []
    for name in allowed:
        form = bound.get(name) or ACTION_FORMS[name](initial=_action_initial(incident, name), prefix=name)
        action_forms.append((name, form))
    entries = [
        ConsoleEntry(entry, _actor_label(entry, incident, me))
        for entry in selectors.timeline_for(incident, request.user)
    ]
    context = {
        "incident": incident,
        "allowed": allowed,
        "action_forms": action_forms,
        "open_action": next(iter(bound), ""),
        "entries": entries,
        "children": selectors.incidents_visible_to(request.user)
        .filter(parent_id=incident.pk)
        .only("id", "title", "state", "priority")[:100],
        "parent_ref": incident.parent.reference if incident.parent_id else "",  # type: ignore[union-attr]
        "attachments": Attachment.objects.filter(incident=incident).select_related("uploaded_by"),
        "reporter_visible": me.can_see_reporter(incident),
        "sla": selectors.sla_status(incident),
        "comment_form": bound.get("comment") or CommentForm(),
        "attach_form": bound.get("attach") or AttachForm(),
        "edit_form": bound.get("edit")
        or EditForm(
            initial={
                "version": incident.version,
                "title": incident.title,
                "description": incident.description,
                "impact": incident.impact,
                "urgency": incident.urgency,
                "outcome": incident.outcome,
            }
        ),
        "error": error,
        "conflict": conflict,
    }
    return render(request, "incidents/incident.html", context, status=status)


def _action_initial(incident: Incident, action: str) -> dict[str, Any]:
    initial: dict[str, Any] = {"version": incident.version}
    if action == "classify":
        initial.update(
            domain=incident.domain_id,
            category=incident.category_id,
            impact=incident.impact,
            urgency=incident.urgency,
            team=incident.team_id or (incident.category.default_team_id if incident.category else None),
            assignee=incident.assignee_id,
            outcome=incident.outcome,
            harm_level=incident.harm_level,
        )
    return initial


@login_required
def incident_detail(request: HttpRequest, reference: str) -> HttpResponse:
    _responder_or_404(request)
    incident = _visible_incident(request, reference)
    return _render_incident(request, incident)


@login_required
@require_POST
def incident_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    """Run one lifecycle action with its form's inputs; refusals are shown as the API words them."""
    _responder_or_404(request)
    incident = _visible_incident(request, reference)
    if action not in ACTION_FORMS:
        raise Http404("No such action.")
    form = ACTION_FORMS[action](request.POST, prefix=action)
    if not form.is_valid():
        return _render_incident(request, incident, status=400, bound={action: form})
    kwargs = form.domain_kwargs()
    if action == "cancel" and form.cleaned_data.get("duplicate_of"):
        survivor = (
            selectors.incidents_visible_to(request.user)
            .by_reference(form.cleaned_data["duplicate_of"])
            .first()
        )
        if survivor is None:
            form.add_error("duplicate_of", f"No incident {form.cleaned_data['duplicate_of']}.")
            return _render_incident(request, incident, status=400, bound={action: form})
        kwargs["duplicate_of"] = survivor
    try:
        lifecycle.ACTIONS[lifecycle.Action(action)](incident, actor=request.user, **kwargs)
    except lifecycle.StaleVersion as exc:
        return _render_incident(request, _visible_incident(request, reference), status=409, conflict=str(exc))
    except lifecycle.InvalidTransition as exc:
        return _render_incident(request, _visible_incident(request, reference), status=409, error=str(exc))
    except PermissionDenied as exc:
        return _render_incident(request, incident, status=403, error=str(exc))
    except ValidationError as exc:
        _apply_errors(form, exc)
        return _render_incident(request, incident, status=400, bound={action: form})
    messages.success(request, f"{reference}: {form_label(action)} done.")
    return redirect("web:incident", reference=incident.reference)


def form_label(action: str) -> str:
    from .templatetags.desk import action_label

    return action_label(action)


@login_required
@require_POST
def incident_edit(request: HttpRequest, reference: str) -> HttpResponse:
    _responder_or_404(request)
    incident = _visible_incident(request, reference)
    form = EditForm(request.POST)
    if not form.is_valid():
        return _render_incident(request, incident, status=400, bound={"edit": form})
    data = dict(form.cleaned_data)
    version = data.pop("version")
    try:
        services.edit_incident(incident, actor=request.user, version=version, **data)
    except lifecycle.StaleVersion as exc:
        return _render_incident(request, _visible_incident(request, reference), status=409, conflict=str(exc))
    except lifecycle.InvalidTransition as exc:
        return _render_incident(request, incident, status=409, error=str(exc))
    except ValidationError as exc:
        _apply_errors(form, exc)
        return _render_incident(request, incident, status=400, bound={"edit": form})
    messages.success(request, f"{reference}: saved.")
    return redirect("web:incident", reference=reference)


@login_required
@require_POST
def incident_comment(request: HttpRequest, reference: str) -> HttpResponse:
    _responder_or_404(request)
    incident = _visible_incident(request, reference)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _render_incident(request, incident, status=400, bound={"comment": form})
    try:
        services.add_comment(
            incident, author=request.user, body=form.cleaned_data["body"], public=form.cleaned_data["public"]
        )
    except lifecycle.InvalidTransition as exc:
        return _render_incident(request, incident, status=409, error=str(exc))
    kind = "Public reply" if form.cleaned_data["public"] else "Internal note"
    messages.success(request, f"{kind} added.")
    return redirect(reverse("web:incident", args=[reference]) + "#timeline")


@login_required
@require_POST
def incident_attach(request: HttpRequest, reference: str) -> HttpResponse:
    _responder_or_404(request)
    incident = _visible_incident(request, reference)
    form = AttachForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_incident(request, incident, status=400, bound={"attach": form})
    try:
        services.add_attachment(
            incident,
            uploaded_by=request.user,
            upload=form.cleaned_data["file"],
            public=form.cleaned_data["public"],
        )
    except ValidationError as exc:
        _apply_errors(form, exc)
        return _render_incident(request, incident, status=400, bound={"attach": form})
    except lifecycle.InvalidTransition as exc:
        return _render_incident(request, incident, status=409, error=str(exc))
    messages.success(request, "File attached.")
    return redirect("web:incident", reference=reference)


@login_required
def incident_download(request: HttpRequest, reference: str, attachment_id: int) -> FileResponse:
    _responder_or_404(request)
    incident = _visible_incident(request, reference)
    return _file_response(get_object_or_404(Attachment, pk=attachment_id, incident=incident))


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """What a comment will look like: the same renderer and sanitiser as the stored comment."""
    body = request.POST.get("body", "")[:50_000]
    return render(request, "incidents/_preview.html", {"html": render_markdown(body) if body.strip() else ""})


# --- teams -------------------------------------------------------------------------------------------


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    _responder_or_404(request)
    teams = Team.objects.select_related("manager").prefetch_related("domains", "members")
    return render(request, "incidents/teams.html", {"teams": teams})


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    _responder_or_404(request)
    team = get_object_or_404(Team.objects.select_related("manager").prefetch_related("domains"), slug=slug)
    members = team.memberships.select_related("user").order_by("user__username")
    open_count = (
        selectors.incidents_visible_to(request.user)
        .filter(team=team, state__in=OPEN_STATES)[:ATTENTION_CAP]
        .count()
    )
    context = {
        "team": team,
        "members": members,
        "open_count": open_count,
        "oncall": team_oncall(team, at=timezone.now()),
    }
    return render(request, "incidents/team.html", context)
