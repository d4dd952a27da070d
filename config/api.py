"""API plumbing shared by every app: pagination, ordering and the error format of SPEC section 8."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import exceptions, filters, pagination, parsers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from incidents.lifecycle import InvalidTransition, StaleVersion

CODES_BY_STATUS = {404: "not_found", 429: "throttled", 403: "permission_denied", 401: "not_authenticated"}


class CursorPagination(pagination.CursorPagination):
    """`{next, previous, results}` without a COUNT: stays fast at a million rows."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class StrictOrderingFilter(filters.OrderingFilter):
    """DRF's ordering filter, but an unknown field is a 400 naming `ordering` instead of being ignored."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = [param.strip() for param in params.split(",") if param.strip()]
            valid = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
            bad = [f for f in fields if f.lstrip("-") not in valid]
            if bad:
                raise exceptions.ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown ordering {', '.join(bad)}; use one of {', '.join(sorted(valid))}."
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)


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


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that JSON nested thousands deep (Python's json raises RecursionError, which
    DRF lets through as a 500) is a 400 like any other malformed body."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
