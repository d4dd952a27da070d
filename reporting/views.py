"""The report dashboard (/reports/): the figures of SPEC section 6 as charts, cards and tables."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from incidents.models import Category, Domain, Team
from incidents.selectors import desk_user

from . import figures
from .api.serializers import SummaryQuerySerializer

EXPORT_FILTERS = ("domain", "team", "category", "priority")  # the report's filters the export shares
EXPORT_PATH = "/desk/export.csv"  # the incident export (another module of issue 6) takes the same filters


def _hours(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 3600:.1f} h"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def _cards(data: dict[str, Any]) -> list[dict[str, str]]:
    """The headline figures as label, value and a line of detail, formatted once here for the template."""
    rates, sla = data["rates"], data["sla"]
    return [
        {"label": "Incidents", "value": str(data["counts"]["total"]),
         "detail": f"{data['backlog']['open']} open at the end"},
        {"label": "MTTA (median)", "value": _hours(data["mtta"]["median_seconds"]),
         "detail": f"p90 {_hours(data['mtta']['p90_seconds'])} · {data['mtta']['count']} responded"},
        {"label": "MTTR (median)", "value": _hours(data["mttr"]["median_seconds"]),
         "detail": f"p90 {_hours(data['mttr']['p90_seconds'])} · {data['mttr']['count']} resolved"},
        {"label": "Response SLA", "value": _percent(sla["response"]["compliance"]),
         "detail": f"{sla['response']['met']} met, {sla['response']['breached']} breached"
         + (f", {sla['response_cleared']} cleared by monitoring" if sla.get("response_cleared") else "")},
        {"label": "Resolution SLA", "value": _percent(sla["resolution"]["compliance"]),
         "detail": f"{sla['resolution']['met']} met, {sla['resolution']['breached']} breached"},
        {"label": "First-contact resolution", "value": _percent(rates["first_contact_resolution"]["rate"]),
         "detail": f"{rates['first_contact_resolution']['count']} of {rates['first_contact_resolution']['of']}"},
        {"label": "Reopened", "value": _percent(rates["reopen"]["rate"]),
         "detail": f"{rates['reopen']['count']} of {rates['reopen']['of']} resolved"},
        {"label": "Escalated", "value": _percent(rates["escalation"]["rate"]),
         "detail": f"{rates['escalation']['count']} of {rates['escalation']['of']} classified"},
        {"label": "Near-miss ratio", "value": _percent(data["near_miss"]["rate"]),
         "detail": f"{data['near_miss']['count']} of {data['near_miss']['of']} with an outcome"},
        {"label": "Satisfaction", "value": _percent(data["csat"]["rate"]),
         "detail": f"average {data['csat']['average'] or '—'} / 5 · {data['csat']['count']} ratings"},
    ]  # fmt: skip


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Responders and managers only; to anyone else the page does not exist, like the console."""
    if not desk_user(request.user).is_responder:
        raise Http404("No such page.")
    query = SummaryQuerySerializer(data=request.GET)
    valid = query.is_valid()
    filters = query.validated_data["filters"] if valid else figures.default_filters()
    data = figures.summary(request.user, filters)
    # The export takes the incident list's filters; the report's period becomes a range of received_at.
    params: dict[str, Any] = {
        k: v for k, v in request.GET.lists() if k in EXPORT_FILTERS and any(v) and valid
    }
    params["received_after"] = filters.start.isoformat()
    params["received_before"] = filters.end.isoformat()
    context = {
        "data": data,
        "cards": _cards(data),
        "errors": query.errors if not valid else {},
        "params": request.GET,
        "priorities": [str(p) for p in filters.priorities],
        "domains": Domain.objects.order_by("slug"),
        "teams": Team.objects.order_by("name"),
        "categories": Category.objects.order_by("path").values_list("path", flat=True).distinct(),
        "export_url": f"{EXPORT_PATH}?{urlencode(params, doseq=True)}",
        "sla_rows": [
            {
                "priority": row["priority"],
                "response": _percent(row["response"]["compliance"]),
                "resolution": _percent(row["resolution"]["compliance"]),
            }
            for row in data["sla"]["by_priority"]
        ],
        "trend_rows": [
            {"date": p["date"], "received": p["received"], "mttr": _hours(p["mttr_median_seconds"])}
            for p in data["trend"]
        ],
    }
    return render(request, "reporting/dashboard.html", context, status=200 if valid else 400)
