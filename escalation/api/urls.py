from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import (
    CalendarViewSet,
    EscalationPolicyViewSet,
    OnCallView,
    ScheduleViewSet,
    SlaPolicyViewSet,
    WebhookViewSet,
)

router = DefaultRouter()
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("sla-policies", SlaPolicyViewSet, basename="sla-policy")
router.register("escalation-policies", EscalationPolicyViewSet, basename="escalation-policy")
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [
    path("teams/<slug:slug>/oncall/", OnCallView.as_view(), name="team-oncall"),
    *router.urls,
]
