from rest_framework.routers import DefaultRouter

from .views import IncidentViewSet, TeamViewSet

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("teams", TeamViewSet, basename="team")

urlpatterns = router.urls
