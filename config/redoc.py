"""ReDoc at /api/redoc/ under the Content-Security-Policy, with every asset from this server."""

from __future__ import annotations

from typing import Any

from csp.decorators import csp_update
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView

SYSTEM_FONTS = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", Arial, sans-serif'
)

# ReDoc's theme on the system's fonts: the stock template fetches Montserrat and Roboto from Google Fonts.
REDOC_OPTIONS: dict[str, Any] = {
    "theme": {
        "typography": {
            "fontFamily": SYSTEM_FONTS,
            "headings": {"fontFamily": SYSTEM_FONTS},
            "code": {"fontFamily": "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"},
        }
    },
}

# The relaxation on this one route: ReDoc (styled-components) writes <style> elements and style attributes
# at run time, which no nonce covers, and runs its search index in a worker made from a blob: URL.
# Scripts stay 'self' only.
REDOC_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}


class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().get(request, *args, **kwargs)
        response.data["redoc_options"] = REDOC_OPTIONS
        return response


redoc_view = csp_update(REDOC_CSP)(RedocView.as_view(url_name="schema"))
