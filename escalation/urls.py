"""Console routes of the escalation app (under /desk/, beside the incidents app's own)."""

from django.urls import path

from . import views

app_name = "escalation"

urlpatterns = [
    path(
        "desk/incidents/<str:reference>/reports/file/",
        views.incident_file_report,
        name="incident_file_report",
    ),
]
