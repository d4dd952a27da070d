"""Who may use what, written once for every app: the API's and the pages' responder checks, and the admin's
read-only records.

A responder is a member of a team (incidents.selectors.desk_user); to anyone else the console, its pages and
its API do not exist (404 on pages, 403 on the API, as SPEC section 1 says).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from rest_framework import permissions
from rest_framework.request import Request

from .selectors import desk_user


class IsResponder(permissions.BasePermission):
    """API: responders only."""

    message = "Only responders (members of a team) may use this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        return desk_user(request.user).is_responder


class ResponderReadsStaffWrites(permissions.BasePermission):
    """API configuration: responders read it; administrators (staff) change it."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return IsResponder().has_permission(request, view)
        return bool(request.user and request.user.is_staff)


def responder_or_404(request: HttpRequest) -> None:
    """Pages: the console is for responders; to anyone else it does not exist."""
    if not desk_user(request.user).is_responder:
        raise Http404("No such page.")


class ReadOnlyAdminMixin:
    """Admin: records only the domain functions write (append-only, derived): visible in the admin, never
    added, changed or deleted there."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
