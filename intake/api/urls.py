from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.routers import DefaultRouter

from .views import AlertmanagerView, EventsView, IntegrationViewSet, events_route

router = DefaultRouter()
router.register("integrations", IntegrationViewSet, basename="integration")


@extend_schema(exclude=True)
class EventsAlias(EventsView):
    """The events endpoint under another URL (documented once, at /api/v1/events/)."""


@extend_schema(exclude=True)
class AlertmanagerAlias(AlertmanagerView):
    """The Alertmanager route without its trailing slash (documented once, with it)."""


# Monitoring tools are configured with a URL typed by hand: each events route answers with or without the
# trailing slash (no redirect, which a POST cannot follow). `events/v2/enqueue` is where PagerDuty's own
# clients post when given the base URL `.../api/v1/events`.
urlpatterns = [
    path("events/", events_route, name="events"),  # EventsView, with a lean route for the plain trigger
    path("events", EventsAlias.as_view()),
    path("events/v2/enqueue", EventsAlias.as_view(), name="events-enqueue"),
    path("events/v2/enqueue/", EventsAlias.as_view()),
    path("events/alertmanager/", AlertmanagerView.as_view(), name="events-alertmanager"),
    path("events/alertmanager", AlertmanagerAlias.as_view()),
    *router.urls,
]
