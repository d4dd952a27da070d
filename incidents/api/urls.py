from rest_framework.routers import DefaultRouter

from .problems import ProblemViewSet
from .views import IncidentViewSet, TeamViewSet

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("teams", TeamViewSet, basename="team")
router.register("problems", ProblemViewSet, basename="problem")

urlpatterns = router.urls
