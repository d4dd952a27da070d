"""/health/: is the engine keeping up? Database reachable, sweeper beating, nothing overdue."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Min
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .engine import db_now
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
