"""What a locked-out sign-in answers (django-axes' AXES_LOCKOUT_CALLABLE): 429, as JSON on the API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Too many failed sign-in attempts; try again later.", "code": "throttled"}, status=429
        )
    return render(request, "registration/locked_out.html", status=429)
