"""The API's error format (SPEC section 8) for every app: the domain's refusals (incidents.errors) answer
409, a Django ValidationError 400 naming its fields, and every error carries `{"detail", "code"}`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from incidents.errors import InvalidTransition, StaleVersion

CODES_BY_STATUS = {404: "not_found", 429: "throttled", 403: "permission_denied", 401: "not_authenticated"}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Domain errors to 409/400; every other error gets `{"detail", "code"}`."""
    if isinstance(exc, InvalidTransition):
        return Response(
            {"detail": str(exc), "code": "invalid_transition", "allowed_actions": exc.allowed_actions},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, StaleVersion):
        return Response(
            {"detail": str(exc), "code": "stale_version", "version": exc.current_version},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        code = CODES_BY_STATUS.get(response.status_code)
        if code is None and isinstance(exc, exceptions.APIException):
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else exc.default_code
        response.data["code"] = code or "error"
    return response
