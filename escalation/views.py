"""/health/: is the engine keeping up? Database reachable, sweeper beating, nothing overdue. And the
console's form that files a report for a reporting target (the API's file_report, on the incident page)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from incidents import selectors
from incidents.errors import InvalidTransition
from incidents.forms import FileReportForm
from incidents.permissions import responder_or_404
from incidents.views.common import apply_errors, visible_incident
from incidents.views.incident_page import render_incident

from .engine import db_now
from .filings import file_report
from .models import EngineHeartbeat, Notification, Timer


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    try:
        now = db_now()
        beat = EngineHeartbeat.objects.filter(name="sweeper").values_list("beat_at", flat=True).first()
        oldest_timer = Timer.objects.filter(state=Timer.State.PENDING, due_at__lte=now).aggregate(
            m=Min("due_at")
        )["m"]
        pending = Notification.objects.filter(
            state__in=[Notification.State.PENDING, Notification.State.SENDING]
        )
        oldest_notification = pending.aggregate(m=Min("created_at"))["m"]
        dead = Notification.objects.filter(state=Notification.State.DEAD).count()
    except DatabaseError:
        return JsonResponse({"status": "down", "database": "unreachable"}, status=503)
    limit = settings.HEALTH_MAX_LAG_SECONDS
    timer_lag = (now - oldest_timer).total_seconds() if oldest_timer else 0.0
    outbox_lag = (now - oldest_notification).total_seconds() if oldest_notification else 0.0
    sweep_age = (now - beat).total_seconds() if beat else None
    healthy = timer_lag <= limit and outbox_lag <= limit and sweep_age is not None and sweep_age <= limit
    body = {
        "status": "ok" if healthy else "degraded",
        "database": "ok",
        "sweeper_last_run_seconds_ago": sweep_age,
        "oldest_overdue_timer_seconds": timer_lag,
        "oldest_pending_notification_seconds": outbox_lag,
        "dead_notifications": dead,
    }
    return JsonResponse(body, status=200 if healthy else 503)


@login_required
@require_POST
def incident_file_report(request: HttpRequest, reference: str) -> HttpResponse:
    """File the report of one of the incident's reporting targets (escalation.filings.file_report, the same
    rule as the API): the incident's team and the privacy officer may (403 for other responders, 404 outside
    visibility); a refused field shows on the form (400), a target filed under another reference is a 409."""
    responder_or_404(request)
    incident = visible_incident(request, reference)
    # Every target is a choice here: a report filed meanwhile is the domain's to answer (same reference: done; another: 409).
    targets = [target["name"] for target in selectors.reporting_targets(incident)]
    form = FileReportForm(request.POST, targets=targets, prefix="file_report")
    if not form.is_valid():
        return render_incident(request, incident, status=400, bound={"file_report": form})
    try:
        filing = file_report(incident, actor=request.user, **form.cleaned_data)
    except PermissionDenied as exc:
        return render_incident(request, incident, status=403, error=str(exc))
    except InvalidTransition as exc:
        return render_incident(request, incident, status=409, error=str(exc))
    except ValidationError as exc:
        apply_errors(form, exc)
        return render_incident(request, incident, status=400, bound={"file_report": form})
    messages.success(request, f"{reference}: report for {filing.target} filed ({filing.reference}).")
    return redirect("web:incident", reference=incident.reference)
