from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import ObtainTokenView
from config.redoc import redoc_view
from escalation.views import health
from incidents.forms import OutboxPasswordResetForm

# The events endpoint first: monitoring tools post there the most, and Django tries the routes in order.
api_v1: list[URLPattern | URLResolver] = [
    path("", include("intake.api.urls")),
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("", include("incidents.api.urls")),
    path("interviews/", include("interviews.api.urls")),
    path("", include("escalation.api.urls")),
    path("", include("reporting.api.urls")),
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"))),
    path("", include("incidents.urls")),
    path("", include("escalation.urls")),
    path("interviews/", include("interviews.urls")),
    path("reports/", include("reporting.urls")),
    # The reset mail goes through the outbox like every other mail (incidents.forms.OutboxPasswordResetForm).
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=OutboxPasswordResetForm),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", redoc_view, name="api-redoc"),
]

# Off unless BENCH_CEILING_VIEWS (bench/suite.py); production forces it off.
if settings.BENCH_CEILING_VIEWS:
    urlpatterns.insert(0, path("", include("config.ceiling")))

# Error pages in the app's layout (and `{"detail", "code"}` under /api/); with DEBUG on,
# config.errors.StaffOnlyTechnicalPages shows them to everyone but staff.
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
