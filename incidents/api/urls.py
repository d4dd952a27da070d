from django.urls import path
from rest_framework.routers import DefaultRouter

from .problems import ProblemViewSet
from .views import IncidentExportView, IncidentViewSet, TeamViewSet

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("teams", TeamViewSet, basename="team")
router.register("problems", ProblemViewSet, basename="problem")

urlpatterns = [
    path("reports/incidents.csv", IncidentExportView.as_view(), name="report-incidents-csv"),
    *router.urls,
]
