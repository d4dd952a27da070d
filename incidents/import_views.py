"""Console pages of what came in by ``import_incidents``: each run's summary and the incidents it brought.

Responders only (others get 404, like the rest of the console); the incidents listed are those the user may
see (incidents.selectors.incidents_visible_to), so a run's page never shows a restricted domain's incident.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import ImportRun, Incident
from .selectors import desk_user, incidents_visible_to

RUNS_PAGE_SIZE = 50
INCIDENTS_PAGE_SIZE = 100


def _responder_or_404(request: HttpRequest) -> None:
    if not desk_user(request.user).is_responder:
        raise Http404("No such page.")


@login_required
def import_list(request: HttpRequest) -> HttpResponse:
    """The import runs, newest first."""
    _responder_or_404(request)
    runs = Paginator(ImportRun.objects.select_related("started_by"), RUNS_PAGE_SIZE)
    return render(request, "incidents/imports.html", {"page": runs.get_page(request.GET.get("page"))})


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: who, when, counts, warnings and the mapping; its incidents, filtered by `state`."""
    _responder_or_404(request)
    run = ImportRun.objects.select_related("started_by").filter(pk=pk).first()
    if run is None:
        raise Http404("No such import.")
    incidents = incidents_visible_to(request.user).filter(import_run=run)
    by_state = dict(incidents.order_by().values("state").annotate(n=Count("pk")).values_list("state", "n"))
    state = request.GET.get("state", "")
    if state in Incident.State.values:
        incidents = incidents.filter(state=state)
    else:
        state = ""
    page = Paginator(
        incidents.select_related("team", "domain", "assignee").order_by("received_at", "pk"),
        INCIDENTS_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    context = {
        "run": run,
        "page": page,
        "state": state,
        "states": [(value, label, by_state.get(value, 0)) for value, label in Incident.State.choices],
        "visible": sum(by_state.values()),
        "mapping": json.dumps(run.mapping, indent=2, ensure_ascii=False) if run.mapping else "",
    }
    return render(request, "incidents/import.html", context)
