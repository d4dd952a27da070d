from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AlertmanagerView, EventsView, IntegrationViewSet

router = DefaultRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    path("events/", EventsView.as_view(), name="events"),
    path("events/alertmanager/", AlertmanagerView.as_view(), name="events-alertmanager"),
    *router.urls,
]
