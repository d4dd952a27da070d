"""API plumbing shared by every app: pagination, ordering and parsing. The error format of SPEC section 8
(which knows the domain's errors) is incidents.api.handlers.exception_handler."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions, filters, pagination, parsers
from rest_framework.request import Request


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


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that JSON nested thousands deep (Python's json raises RecursionError, which
    DRF lets through as a 500) is a 400 like any other malformed body."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
