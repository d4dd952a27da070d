from django.urls import path
from rest_framework.routers import DefaultRouter

from .categories import CategoryViewSet
from .me import MeView, MyTokensView, MyTokenView
from .problems import ProblemViewSet
from .teams import TeamViewSet
from .users import UserViewSet
from .views import IncidentExportView, IncidentViewSet

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("teams", TeamViewSet, basename="team")
router.register("problems", ProblemViewSet, basename="problem")
router.register("categories", CategoryViewSet, basename="category")
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    path("reports/incidents.csv", IncidentExportView.as_view(), name="report-incidents-csv"),
    path("me/", MeView.as_view(), name="me"),
    path("me/tokens/", MyTokensView.as_view(), name="me-tokens"),
    path("me/tokens/<int:token_id>/", MyTokenView.as_view(), name="me-token"),
    *router.urls,
]
