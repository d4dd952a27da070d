from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from .views import (
    AutoAssignView,
    CalendarViewSet,
    EscalationPolicyViewSet,
    FileReportView,
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
    path("teams/<slug:slug>/auto-assign/", AutoAssignView.as_view(), name="team-auto-assign"),
    re_path(
        r"^incidents/(?P<reference>[A-Za-z]{3}-\d+)/file_report/$",
        FileReportView.as_view(),
        name="incident-file-report",
    ),
    *router.urls,
]
