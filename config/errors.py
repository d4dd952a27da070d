"""Error pages: 400, 403, 404 and 500 in the app's layout for people, `{"detail", "code"}` for the API.

Django shows its technical pages when DEBUG is on (the local settings), and the technical 404 lists every URL
pattern. `StaffOnlyTechnicalPages` keeps those pages for staff, who develop and administer the desk; everyone
else gets the same pages as in production, whatever DEBUG is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.template import loader

logger = logging.getLogger("django.request")

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _api_error(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("Bad request.", "bad_request", 400)
    return render(request, "400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("You do not have permission to perform this action.", "permission_denied", 403)
    return render(request, "403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("Not found.", "not_found", 404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered without the request's context: whatever failed (the database, a context processor) may fail
    again, and this page must still answer."""
    if _is_api(request):
        return _api_error("Server error.", "server_error", 500)
    return HttpResponse(loader.get_template("500.html").render({}), status=500)


def _wants_technical_page(request: HttpRequest) -> bool:
    if not settings.DEBUG:
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


class StaffOnlyTechnicalPages:
    """With DEBUG on, only staff see Django's technical 404 and 500 pages; the others get the app's pages.

    Placed after AuthenticationMiddleware. Exceptions raised by a view reach `process_exception`; a URL that
    matches no pattern fails before any view, so its technical 404 is recognised by the missing resolver match.
    With DEBUG off this does nothing: Django calls the handlers in config/urls.py itself.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and request.resolver_match is None
            and not _wants_technical_page(request)
        ):
            return page_not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not settings.DEBUG or _wants_technical_page(request):
            return None
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return None  # Django renders handler403 whatever DEBUG is
        if isinstance(exception, (BadRequest, SuspiciousOperation, MultiPartParserError, RequestDataTooBig)):
            logger.warning("Bad request: %s", request.path, exc_info=exception)
            return bad_request(request, exception)
        logger.error("Internal Server Error: %s", request.path, exc_info=exception)
        return server_error(request)
