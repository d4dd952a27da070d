"""The responders' queue: filters, sorts, keyset pages, saved views, bulk actions and the CSV export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, Case, DateTimeField, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_POST

from .. import audit, console, export, lifecycle, selectors
from ..api.filters import IncidentFilter
from ..errors import InvalidTransition, StaleVersion
from ..forms import BulkForm, SaveViewForm
from ..models import Incident, SavedQueueView
from ..permissions import responder_or_404
from ..selectors import desk_user
from .common import S, user_pk

PAGE_SIZE = 50
VIEW_PK = 987654321  # a saved view's id in its reversed delete URL, replaced by each view's own


# The queue's "needs attention" pills count to 100 ("100+"): past that the number changes nothing at the desk,
# and each count stays a short index range (reports give the exact figures).
QUEUE_ATTENTION_CAP = 100


NO_PRIORITY = 6  # sorts after P5: unprioritised incidents come last


PRIORITY_KEY_SQL = f'COALESCE("incidents_incident"."priority", {NO_PRIORITY})'


INCIDENT_ID_SQL = '"incidents_incident"."id"'


# The deadline of the clock a responder races now (console.running_clock says the same for one row):
# the response clock until someone responded, then the resolution clock. Paused (on hold), met and
# final incidents have none and sort last, as a far-future key so that a keyset page has a bound.
NO_DEADLINE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
DEADLINE_KEY = Coalesce(
    Case(
        When(~Q(state__in=Incident.ACTIVE_STATES) | Q(state=S.ON_HOLD), then=Value(None)),
        When(responded_at__isnull=True, sla_response__in=console.RUNNING, then=F("response_due_at")),
        When(sla_resolution__in=console.RUNNING, then=F("resolution_due_at")),
        default=Value(None),
        output_field=DateTimeField(),
    ),
    Value(NO_DEADLINE),
    output_field=DateTimeField(),
)


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
    # The nearest SLA deadline first (already breached ones before them), no running clock last.
    "deadline": ("SLA deadline", ["deadline_key", "id"]),
}


PRESETS: list[tuple[str, str, dict[str, Any]]] = [
    ("my-open", "My open", {"assignee": "me", "open": "1", "sort": "priority"}),
    ("unassigned-p1-p2", "Unassigned P1-P2", {"assignee": "none", "priority": ["1", "2"], "open": "1"}),
    # "Breaching soon" is what the SLA engine marks `warning` (its threshold, in business time, paused on hold).
    ("breaching-soon", "Breaching soon", {"sla": "warning", "open": "1", "sort": "priority"}),
    ("unclassified", "To classify", {"state": "received", "sort": "oldest"}),
]


FILTER_KEYS = (
    "state", "priority", "domain", "category", "team", "assignee", "sla", "q", "open", "sort", "import_run",
)  # fmt: skip


# The export also takes a period (the report dashboard's "Export CSV" passes its own).
EXPORT_KEYS = (*FILTER_KEYS, "received_after", "received_before")


PAGE_KEYS = ("cursor", "before")  # keyset bounds: rows after the last row shown, or before the first


SLA_FILTERS = [("warning", "Warning: breaching soon"), ("breached", "Breached")]


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
        if sort == "deadline":
            raw_micros, raw_id = cursor.split("_", 1)
            due = dt.datetime.fromtimestamp(int(raw_micros) / 1_000_000, tz=dt.UTC)
            pk = int(raw_id)
            if before:
                return qs.filter(Q(deadline_key__lt=due) | Q(deadline_key=due, id__lt=pk))
            return qs.filter(Q(deadline_key__gt=due) | Q(deadline_key=due, id__gt=pk))
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
    except (ValueError, OverflowError, OSError):
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
    if sort == "deadline" and isinstance(incident, dict):
        due = incident["deadline_key"]
        return f"{int(due.timestamp()) * 1_000_000 + due.microsecond}_{pk}"
    return str(pk)


def filtered_queue(request: HttpRequest, params: QueryDict) -> tuple[QuerySet[Incident], str]:
    """The visible incidents the queue parameters select, in the chosen order (not yet paged).

    The SLA filter passes the engine's clock states (`warning`, `breached`) to the API's filter, so the
    console and the API agree on what "breaching soon" means.
    """
    filterset, sort = _queue_filter(request, params)
    return _open_and_sorted(filterset.qs, params, sort), sort


class _Unfiltered:
    """What IncidentFilter answers when none of its filters is given (every filter skips an empty value):
    the visible incidents as they are. The queue's default view and its 30 s poll ask only for `open` and a
    sort, and building the filter set's form for nothing was a sixth of the page's CPU. The queryset is built
    when first read: a remembered first page (console.queue_page) does not read it."""

    def __init__(self, user: Any) -> None:
        self.user = user

    @cached_property
    def qs(self) -> QuerySet[Incident]:
        return selectors.handled_incident_list(self.user)

    def is_valid(self) -> bool:
        return True


# The queue's parameters that are not filters of IncidentFilter (`open` is applied by _open_and_sorted).
NOT_API_FILTERS = frozenset(("open", "sort", *PAGE_KEYS))


def _queue_filter(request: HttpRequest, params: QueryDict) -> tuple[IncidentFilter | _Unfiltered, str]:
    """The API's filter set over the visible incidents, fed the queue's parameters in the API's terms."""
    sort = params.get("sort") or "newest"
    if sort not in SORTS:
        sort = "newest"
    if all(key in NOT_API_FILTERS for key in params):
        return _Unfiltered(request.user), sort
    api_params = params.copy()
    if api_params.get("assignee") == "me":
        api_params["assignee"] = request.user.get_username()
    return IncidentFilter(
        api_params, queryset=selectors.handled_incident_list(request.user), request=request
    ), sort


def import_run_of(params: QueryDict) -> int | None:
    """The import run the queue is narrowed to (`?import_run=<id>`); ValueError names a bad value."""
    raw = params.get("import_run", "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise ValueError(f"import_run: {raw!r} is not the number of an import run.")
    return int(raw)


def _open_and_sorted(qs: QuerySet[Incident], params: QueryDict, sort: str) -> QuerySet[Incident]:
    if params.get("open") == "1" and not params.getlist("state"):
        qs = qs.filter(state__in=Incident.OPEN_STATES)
    # `import_run` is the API's filter (IncidentFilter), applied with the others.
    if sort == "deadline":
        qs = qs.annotate(deadline_key=DEADLINE_KEY)
    return qs.order_by(*SORTS[sort][1])


def _queue_params(request: HttpRequest) -> QueryDict:
    """The filters, sort and page bound of the request; a blank select means "any"."""
    params = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if key in (*FILTER_KEYS, *PAGE_KEYS) and any(values):
            params.setlist(key, [value for value in values if value])
    if not any(key in params for key in FILTER_KEYS):
        params["open"] = "1"  # the desk's default: what is still open
    return params


def _page_of(
    build: Callable[[], QuerySet[Incident]],
    sort: str,
    params: QueryDict,
    *,
    memo_key: tuple[Any, ...] | None = None,
) -> tuple[list[dict[str, Any]], bool, bool]:
    """One page of rows in either direction, with whether a previous and a next page exist.

    One query whichever way: PAGE_SIZE + 1 rows tell whether there is more beyond this page; the
    other side exists whenever the page was reached through a bound. `build` makes the sorted queryset;
    `memo_key` (first pages only) lets console.queue_page reuse the compiled statement without building it.
    """
    before, after = params.get("before", ""), params.get("cursor", "")
    if before:
        rows = console.queue_page(_keyset(build(), sort, before, before=True).reverse(), PAGE_SIZE + 1)
        has_previous = len(rows) > PAGE_SIZE
        return rows[:PAGE_SIZE][::-1], has_previous, True
    if after:
        rows = console.queue_page(_keyset(build(), sort, after), PAGE_SIZE + 1)
    else:
        rows = console.queue_page(build, PAGE_SIZE + 1, memo_key=memo_key)
    return rows[:PAGE_SIZE], bool(after), len(rows) > PAGE_SIZE


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """The console's incident list: filters, search, sort, saved views, keyset pages, bulk actions."""
    responder_or_404(request)
    params = _queue_params(request)
    try:  # before the filter set reads it: a bad run drops itself, not the other filters
        import_run_of(params)
    except ValueError as exc:
        messages.error(request, str(exc))
        params.pop("import_run")
    filterset, sort = _queue_filter(request, params)
    if not filterset.is_valid():
        messages.error(request, "Some filters were not understood and were ignored.")
        params = QueryDict(mutable=True)
        params["open"] = "1"
        filterset, sort = _queue_filter(request, params)
    memo_key = None
    if isinstance(filterset, _Unfiltered):  # the statement depends on the reach, the sort and `open` only
        me = desk_user(request.user)
        memo_key = ("queue", me.is_superuser, me.is_responder, me.domain_ids, sort, params.get("open") == "1")
    page, has_previous, has_next = _page_of(
        lambda: _open_and_sorted(filterset.qs, params, sort), sort, params, memo_key=memo_key
    )
    # The rows show titles: the restricted ones are audited (the poll too, it shows them again).
    audit.note_viewed_ids(
        request.user, [row["id"] for row in page if row["domain__restricted"]], detail="GET queue"
    )
    # The poll sends the ETag of the rows it shows (static/js/desk.js): unchanged, it keeps them (304, no body).
    etag = console.rows_etag(
        request.user.pk, params.urlencode(), page, has_previous=has_previous, has_next=has_next
    )
    poll = bool(request.htmx and request.htmx.target == "queue-results")  # type: ignore[attr-defined]
    if poll and (not_modified := get_conditional_response(request, etag=etag)) is not None:
        return _poll_headers(not_modified, etag)
    first_query = params.copy()
    for key in PAGE_KEYS:
        first_query.pop(key, None)

    def bound(key: str, row: dict[str, Any]) -> str:
        query = first_query.copy()
        query[key] = _cursor_of(row, sort)
        return query.urlencode()

    rows = console.queue_rows(page)
    context: dict[str, Any] = {
        "rows": rows,
        "rows_html": SafeString("".join(rows)),  # one variable, not a template loop over fifty
        "params": params,
        "sort": sort,
        "sorts": [(key, label) for key, (label, _) in SORTS.items()],
        "next_query": bound("cursor", page[-1]) if has_next and page else None,
        "previous_query": bound("before", page[0]) if has_previous and page else None,
        "first_query": first_query.urlencode(),
        "is_first_page": not has_previous,
        "current_query": first_query.urlencode(),
        "etag": etag,
    }
    if poll:
        return _poll_headers(render(request, "incidents/_queue_results.html", context), etag)  # rows only
    open_title, active_title = console.states_titles(translation.get_language())
    # One reverse() for every saved view's delete URL (a {% url %} in the template's loop was one per view).
    delete_url = reverse("web:queue_delete_view", args=[VIEW_PK]).replace(str(VIEW_PK), "{}")
    context |= {
        "attention": console.attention_counts(request.user, QUEUE_ATTENTION_CAP),
        "attention_cap": QUEUE_ATTENTION_CAP,
        "presets": [(slug, label, _preset_query(p)) for slug, label, p in PRESETS],
        "saved_views": [
            {"name": view.name, "query": view.query, "delete_url": delete_url.format(view.pk)}
            for view in console.saved_views(user_pk(request))
        ],
        "options": console.queue_options(
            console.cached_queue_choices(),
            params,
            sort=sort,
            sorts=context["sorts"],
            sla_filters=SLA_FILTERS,
            bulk_actions=BulkForm.ACTIONS,
        ),
        "filters_active": any(key not in ("open", "sort", *PAGE_KEYS) for key in params),
        # "open" and "active" as the model defines them (Incident.OPEN_STATES, Incident.ACTIVE_STATES).
        "open_states_title": open_title,
        "active_states_title": active_title,
        "active_query": _preset_query({"state": list(Incident.ACTIVE_STATES)}),
    }
    return render(request, "incidents/queue.html", context)


def _poll_headers(response: HttpResponse, etag: str) -> HttpResponse:
    """The poll's answer carries its ETag and stays out of the browser's cache: the page's script holds the
    ETag (data-etag), and a fragment kept under the page's own URL could come back as the page."""
    response["ETag"] = etag
    patch_cache_control(response, no_store=True)
    return response


@login_required
@require_GET
def queue_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The queue's incidents as CSV, with the queue's filters and sort (all visible ones without filters).

    Streamed through a server-side cursor: a million rows never sit in memory. Unlike the queue page,
    a filter that is not understood is a 400 naming it, not silently ignored: an export must not
    quietly contain something else than what was asked for.
    """
    responder_or_404(request)
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
    try:
        import_run_of(params)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    check = IncidentFilter(params, queryset=Incident.objects.none(), request=request)
    if not check.is_valid():
        errors = "; ".join(f"{field}: {' '.join(texts)}" for field, texts in check.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    qs, _ = filtered_queue(request, params)
    audit.note_handled(request.user, qs, detail="GET export.csv")
    response = StreamingHttpResponse(
        export.stream_csv(qs, desk_user(request.user)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="incidents-{stamp}.csv"'
    return response


BULK_DONE = {"assign": "Assigned", "classify": "Classified", "cancel": "Cancelled"}


@login_required
@require_POST
def queue_bulk(request: HttpRequest) -> HttpResponse:
    """One action on many incidents, each through its lifecycle function; refusals are listed, not fatal."""
    responder_or_404(request)
    form = BulkForm(request.POST)
    back = reverse("web:queue") + "?" + request.POST.get("query", "")
    if not form.is_valid():
        for field, errors in form.errors.items():
            text = " ".join(str(error) for error in errors)
            messages.error(request, text if field == "__all__" else f"{field}: {text}")
        return redirect(back)
    data = form.cleaned_data
    incidents = list(selectors.incidents_handled_by(request.user).filter(pk__in=data["ids"]))
    done, refused = [], []
    for incident in incidents:
        try:
            if data["bulk_action"] == "assign":
                lifecycle.assign_incident(
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
        except (InvalidTransition, StaleVersion, PermissionDenied) as exc:
            refused.append(f"{incident.reference}: {exc}")
        except ValidationError as exc:
            refused.append(f"{incident.reference}: {' '.join(exc.messages)}")
    if done:
        messages.success(request, f"{BULK_DONE[data['bulk_action']]} {', '.join(done)}.")
    for line in refused:
        messages.error(request, line)
    return redirect(back)


@login_required
@require_POST
def queue_save_view(request: HttpRequest) -> HttpResponse:
    responder_or_404(request)
    form = SaveViewForm(request.POST)
    if form.is_valid():
        SavedQueueView.objects.update_or_create(
            user_id=user_pk(request),
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
    responder_or_404(request)
    view = get_object_or_404(SavedQueueView, pk=pk, user_id=user_pk(request))
    view.delete()
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("web:queue")
